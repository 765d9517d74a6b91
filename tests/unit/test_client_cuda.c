/*
 * test_client_cuda.c - the client's CUDA half (client/client_cuda.c) on the driver double
 * (VRAM_CLIENT_CUDA_LIB): a mapping made on one thread reads from another (a loader thread, a
 * Python thread pool), and the caller's own current context is left as it was.
 */
#include "check.h"
#include "client_cuda.h"

#include <cuda.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define G ((size_t)2 << 20)

static struct {
	CUresult (*init)(unsigned);
	CUresult (*create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
			   unsigned long long);
	CUresult (*export_fd)(void *, CUmemGenericAllocationHandle, CUmemAllocationHandleType,
			      unsigned long long);
	CUresult (*release)(CUmemGenericAllocationHandle);
	CUresult (*current)(CUcontext *);
} drv;

static void *mapped;

/* Reads the mapping's first bytes from this thread: 0 when they came back (junk 0x5c). */
static void *reader(void *arg)
{
	uint8_t buf[64] = {0};
	int ret = client_cuda_read(buf, mapped, 4096, sizeof(buf));

	(void)arg;
	for (size_t i = 0; ret == 0 && i < sizeof(buf); i++)
		if (buf[i] != 0x5c)
			ret = 2;
	return (void *)(intptr_t)ret;
}

int main(void)
{
	const char *lib = getenv("VRAM_CLIENT_CUDA_LIB");
	void *dl = lib ? dlopen(lib, RTLD_NOW | RTLD_LOCAL) : NULL;
	CUmemAllocationProp p = {0};
	CUmemGenericAllocationHandle h = 0;
	unsigned char uuid[16];
	uint64_t len = 2 * G;
	CUcontext cur = (CUcontext)1;
	char why[256] = "";
	int fd = -1;
	void *res = (void *)1;
	pthread_t t;

	if (!dl) {
		fprintf(stderr,
			"test_client_cuda: set VRAM_CLIENT_CUDA_LIB to the driver double\n");
		return 1;
	}
	*(void **)&drv.init = dlsym(dl, "cuInit");
	*(void **)&drv.create = dlsym(dl, "cuMemCreate");
	*(void **)&drv.export_fd = dlsym(dl, "cuMemExportToShareableHandle");
	*(void **)&drv.release = dlsym(dl, "cuMemRelease");
	*(void **)&drv.current = dlsym(dl, "cuCtxGetCurrent");
	CHECK(drv.init && drv.create && drv.export_fd && drv.release && drv.current);
	if (!drv.init || !drv.create || !drv.export_fd || !drv.release || !drv.current)
		return check_summary();
	/* the daemon's side: one exportable chunk of the double's device (UUID 10 11 .. 1f) */
	CHECK_EQ(drv.init(0), CUDA_SUCCESS);
	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	CHECK_EQ(drv.create(&h, len, &p, 0), CUDA_SUCCESS);
	CHECK_EQ(drv.export_fd(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0), CUDA_SUCCESS);
	for (int i = 0; i < 16; i++)
		uuid[i] = (unsigned char)(0x10 + i);

	CHECK_EQ(client_cuda_map(uuid, &fd, &len, 1, len, &mapped, why, sizeof(why)), 0);
	if (why[0])
		fprintf(stderr, "map: %s\n", why);
	/* the caller had no current context, and still has none */
	CHECK_EQ(drv.current(&cur), CUDA_SUCCESS);
	CHECK(cur == NULL);
	/* a read from a thread that never mapped, then from this one */
	CHECK_EQ(pthread_create(&t, NULL, reader, NULL), 0);
	CHECK_EQ(pthread_join(t, &res), 0);
	CHECK_EQ((intptr_t)res, 0);
	CHECK_EQ((intptr_t)reader(NULL), 0);
	CHECK_EQ(drv.current(&cur), CUDA_SUCCESS);
	CHECK(cur == NULL);
	client_cuda_unmap(mapped, &len, 1, len);
	CHECK(client_cuda_read(why, mapped, 0, 1) != 0); /* unmapped: refused, not a fault */
	close(fd);
	CHECK_EQ(drv.release(h), CUDA_SUCCESS);
	return check_summary();
}
