/*
 * gpu-probe.cu - what the real driver answers about the VMM hand-off, in seconds, as a table
 * (built and run by tools/dev/gpu-check). The main process never touches CUDA; its children
 * do, and pass descriptors over a socket (SCM_RIGHTS), as the daemon and a client do:
 *   E (exporter): attributes, granularities, a non-zero map offset, cudaPointerGetAttributes on
 *      a VMM address, map / set-access / unmap while another stream is busy; exports a chunk
 *      with a pattern, reports free memory before and after it releases the chunk that I
 *      still holds, then exits;
 *   I (importer): maps it read-only, reads it, reads from a thread with no context, then holds
 *      the descriptor past E's exit and hands it to N;
 *   N (new process): imports what E created after E is gone and checks the pattern; then a
 *      kernel store through its read-only mapping, and whether the context is dead after.
 * Exit status 0 when every row could be asked (the answers are for reading, not judged).
 */
#include <cuda.h>
#include <cuda_runtime.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_SZ ((size_t)64 << 20)

static const char *nm(CUresult r)
{
	const char *s = NULL;

	return cuGetErrorName(r, &s) == CUDA_SUCCESS && s ? s : "?";
}

static void row(const char *who, const char *what, const char *fmt, ...)
{
	char v[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	printf("| %-2s | %-58s | %s\n", who, what, v);
	fflush(stdout);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int send_fd(int sock, int fd)
{
	char c = 0, buf[CMSG_SPACE(sizeof(int))];
	struct iovec io = {&c, 1};
	struct msghdr m = {};

	memset(buf, 0, sizeof(buf));
	m.msg_iov = &io;
	m.msg_iovlen = 1;
	m.msg_control = buf;
	m.msg_controllen = sizeof(buf);
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c, buf[CMSG_SPACE(sizeof(int))];
	struct iovec io = {&c, 1};
	struct msghdr m = {};
	int fd = -1;

	m.msg_iov = &io;
	m.msg_iovlen = 1;
	m.msg_control = buf;
	m.msg_controllen = sizeof(buf);
	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	if (h && h->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

__global__ void spin(long long cycles)
{
	long long t0 = clock64();

	while (clock64() - t0 < cycles) {
	}
}

__global__ void store(unsigned char *p)
{
	p[0] ^= 0xff;
}

static CUmemAllocationProp prop_of(int dev)
{
	CUmemAllocationProp p;

	memset(&p, 0, sizeof(p));
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p.location.id = dev;
	p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	return p;
}

/* Reserves LEN bytes and maps handle H there with access FLAGS; the address or 0. */
static CUdeviceptr map_at(CUmemGenericAllocationHandle h, size_t len, CUmemAccess_flags flags)
{
	CUmemAccessDesc d = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, flags};
	CUdeviceptr p = 0;

	if (cuMemAddressReserve(&p, len, 0, 0, 0) != CUDA_SUCCESS)
		return 0;
	if (cuMemMap(p, len, 0, h, 0) != CUDA_SUCCESS || cuMemSetAccess(p, len, &d, 1)) {
		cuMemAddressFree(p, len);
		return 0;
	}
	return p;
}

/* The exporter's rows, then the hand-off to the importer on SOCK. */
static int exporter(int sock)
{
	int vmm = 0, posix = 0, fd = -1, drv = 0, rt = 0;
	size_t gmin = 0, grec = 0, fr0 = 0, fr1 = 0, fr2 = 0, tot = 0;
	CUmemGenericAllocationHandle h, h2;
	CUdeviceptr p = 0;
	CUresult r;

	cudaSetDevice(0);
	cudaFree(0);
	cudaDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rt);
	row("E", "driver API / runtime", "%d / %d", drv, rt);
	cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, 0);
	cuDeviceGetAttribute(&posix,
			     CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, 0);
	row("E", "VMM / POSIX-fd supported", "%d / %d", vmm, posix);
	CUmemAllocationProp pr = prop_of(0);

	cuMemGetAllocationGranularity(&gmin, &pr, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
	cuMemGetAllocationGranularity(&grec, &pr, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
	row("E", "granularity minimum / recommended", "%zu / %zu", gmin, grec);
	r = cuMemCreate(&h, CHUNK_SZ, &pr, 0);
	if (r != CUDA_SUCCESS) {
		row("E", "cuMemCreate 64 MiB", "%s", nm(r));
		return 1;
	}
	cuMemAddressReserve(&p, CHUNK_SZ, 0, 0, 0);
	r = cuMemMap(p, CHUNK_SZ - gmin, gmin, h, 0);
	row("E", "cuMemMap at a non-zero offset", "%s", nm(r));
	if (r == CUDA_SUCCESS)
		cuMemUnmap(p, CHUNK_SZ - gmin);
	cuMemAddressFree(p, CHUNK_SZ);
	p = map_at(h, CHUNK_SZ, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
	struct cudaPointerAttributes a;
	cudaError_t e = cudaPointerGetAttributes(&a, (void *)p);

	row("E", "cudaPointerGetAttributes on a VMM address", "%s, type %d (2 = device)",
	    cudaGetErrorName(e), (int)a.type);
	cudaMemset((void *)p, 0xa5, CHUNK_SZ);
	cudaDeviceSynchronize();

	/* the cost of map, set-access and unmap while another stream is busy (~300 ms) */
	cudaStream_t busy;
	cudaStreamCreateWithFlags(&busy, cudaStreamNonBlocking);
	cuMemCreate(&h2, CHUNK_SZ, &pr, 0);
	spin<<<1, 1, 0, busy>>>(600000000LL);
	CUdeviceptr q = 0;
	CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
	cuMemAddressReserve(&q, CHUNK_SZ, 0, 0, 0);
	double t0 = now_ms();
	CUresult rm = cuMemMap(q, CHUNK_SZ, 0, h2, 0);
	double t1 = now_ms();
	CUresult rs = cuMemSetAccess(q, CHUNK_SZ, &rw, 1);
	double t2 = now_ms();
	CUresult ru = cuMemUnmap(q, CHUNK_SZ);
	double t3 = now_ms();
	cudaError_t busy_done = cudaStreamQuery(busy);

	row("E", "map / set-access / unmap while a stream spins (ms)",
	    "%.2f (%s) / %.2f (%s) / %.2f (%s); spinner %s after", t1 - t0, nm(rm), t2 - t1, nm(rs),
	    t3 - t2, nm(ru), busy_done == cudaSuccess ? "done" : "still running");
	cudaStreamSynchronize(busy);
	cuMemAddressFree(q, CHUNK_SZ);
	cuMemRelease(h2);

	r = cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
	row("E", "cuMemExportToShareableHandle", "%s", nm(r));
	if (r != CUDA_SUCCESS || send_fd(sock, fd) != 0)
		return 1;
	char ack;
	if (read(sock, &ack, 1) != 1) /* the importer holds it now */
		return 1;
	cudaMemGetInfo(&fr0, &tot);
	cuMemUnmap(p, CHUNK_SZ);
	cuMemAddressFree(p, CHUNK_SZ);
	cuMemRelease(h);
	cudaMemGetInfo(&fr1, &tot);
	close(fd);
	cudaMemGetInfo(&fr2, &tot);
	row("E", "free MiB: held / released (importer holds) / fd closed", "%zu / %zu / %zu",
	    fr0 >> 20, fr1 >> 20, fr2 >> 20);
	return 0;
}

static CUdeviceptr ro_base;

static void *no_ctx_read(void *arg)
{
	unsigned char b = 0;
	CUresult r = cuMemcpyDtoH(&b, ro_base, 1);

	(void)arg;
	row("I", "read from a thread with no current context", "%s", nm(r));
	return NULL;
}

/* Imports FD read-only on device 0, on this thread's primary context; the address or 0. */
static CUdeviceptr import_ro(int fd, const char *who)
{
	CUmemGenericAllocationHandle h;
	CUcontext ctx;
	CUresult r;

	cuInit(0);
	cuDevicePrimaryCtxRetain(&ctx, 0);
	cuCtxSetCurrent(ctx);
	r = cuMemImportFromShareableHandle(&h, (void *)(long)fd,
					   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
	row(who, "cuMemImportFromShareableHandle", "%s", nm(r));
	if (r != CUDA_SUCCESS)
		return 0;
	CUdeviceptr p = map_at(h, CHUNK_SZ, CU_MEM_ACCESS_FLAGS_PROT_READ);
	cuMemRelease(h);
	return p;
}

static int importer(int from_e, int to_n)
{
	int fd = recv_fd(from_e);
	unsigned char b = 0;
	pthread_t t;

	ro_base = import_ro(fd, "I");
	if (!ro_base)
		return 1;
	CUresult r = cuMemcpyDtoH(&b, ro_base, 1);
	row("I", "read-only importer reads (0xa5 expected)", "%s, 0x%02x", nm(r), b);
	pthread_create(&t, NULL, no_ctx_read, NULL);
	pthread_join(t, NULL);
	if (write(from_e, "k", 1) != 1)
		return 1;
	char done;
	if (read(from_e, &done, 1) != 0) { /* E closed its end: it has exited */
	}
	sleep(1);
	return send_fd(to_n, fd) == 0 ? (read(to_n, &done, 1), 0) : 1;
}

static int newcomer(int from_i)
{
	int fd = recv_fd(from_i);
	unsigned char b = 0;
	CUdeviceptr p = import_ro(fd, "N");

	if (!p)
		return 1;
	CUresult r = cuMemcpyDtoH(&b, p, 1);
	row("N", "bytes after their creator exited (0xa5 expected)", "%s, 0x%02x", nm(r), b);
	store<<<1, 1>>>((unsigned char *)p);
	cudaError_t le = cudaGetLastError(), se = cudaDeviceSynchronize();
	row("N", "kernel store through the read-only mapping", "launch %s, then %s",
	    cudaGetErrorName(le), cudaGetErrorName(se));
	void *x = NULL;
	cudaError_t after = cudaMalloc(&x, 1);
	row("N", "context after that (cudaMalloc)", "%s", cudaGetErrorName(after));
	(void)!write(from_i, "d", 1);
	return 0;
}

/* The bus's rate for the load paths' bound: pinned host memory to the device, 1 GiB, the best
 * of 3 copies (tools/dev/bench-load reads the line). Its own process: a context of its own. */
static int h2d_rate(void)
{
	const size_t len = (size_t)1 << 30;
	void *host = NULL, *dev = NULL;
	double best = 0;

	if (cudaMallocHost(&host, len) != cudaSuccess || cudaMalloc(&dev, len) != cudaSuccess) {
		printf(
		    "pinned host-to-device: not measured (no 1 GiB of pinned or device memory)\n");
		return 1;
	}
	memset(host, 1, len);
	for (int i = 0; i < 4; i++) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		if (cudaMemcpy(dev, host, len, cudaMemcpyHostToDevice) != cudaSuccess)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
		double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;

		if (i > 0 && (best == 0 || (double)len / s / 1e9 > best)) /* the first warms up */
			best = (double)len / s / 1e9;
	}
	printf("pinned host-to-device: %.1f GB/s\n", best);
	cudaFree(dev);
	cudaFreeHost(host);
	return 0;
}

int main(void)
{
	int ei[2], in_[2], st = 0, bad = 0;
	pid_t pe, pi, pn;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, ei) || socketpair(AF_UNIX, SOCK_STREAM, 0, in_))
		return 2;
	printf("| who | question | answer\n");
	fflush(stdout);
	/* each child keeps only its own ends: I sees E's exit as the end of their socket */
	if ((pn = fork()) == 0) {
		close(ei[0]);
		close(ei[1]);
		_exit(newcomer(in_[1]));
	}
	if ((pi = fork()) == 0) {
		close(ei[0]);
		_exit(importer(ei[1], in_[0]));
	}
	if ((pe = fork()) == 0)
		_exit(exporter(ei[0]));
	close(ei[0]);
	close(ei[1]);
	waitpid(pe, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	waitpid(pi, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	waitpid(pn, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	fflush(stdout);
	if ((pe = fork()) == 0)
		_exit(h2d_rate());
	waitpid(pe, &st, 0);
	bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	return bad ? 1 : 0;
}
