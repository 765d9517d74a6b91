/* test_backend.c - the conformance suite every backend passes: test_backend mock|cuda. */
#include "audit.h"
#include "backends.h"
#include "blake3.h"
#include "check.h"
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

/* Built over the CUDA runtime test double (tests/fake), whose launcher calls the seam. */
#ifdef VR_FAKE_CUDA
#include "fake_cuda_driver.h"

#include <cuda.h>
#include <cuda_runtime.h>
static const bool fake_cuda = true;
/* the double's controls (tests/fake/fake_cudart.c) */
void vr_fake_cuda_fail(const char *call, unsigned nth, int make_sticky);
void vr_fake_cuda_fail_code(const char *call, unsigned nth, int code);
unsigned vr_fake_cuda_set_access_calls(void);
void vr_fake_cuda_hog(long long bytes);
unsigned vr_fake_cuda_syncs(void);
void vr_fake_cuda_reset(void);
#else
static const bool fake_cuda = false;
#endif

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = rng();

		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)rng();
}

#ifdef VR_FAKE_CUDA
/*
 * Imports CUDA export E read-only end to end through the driver calls, as a
 * receiving process does (the client library); on the double the device
 * address is host memory this test can read. NULL on failure.
 */
static uint8_t *import_cuda(const struct vr_dev_export *e, uint64_t total)
{
	CUmemAccessDesc ro = {.location = {CU_MEM_LOCATION_TYPE_DEVICE, 0},
			      .flags = CU_MEM_ACCESS_FLAGS_PROT_READ};
	CUdeviceptr base = 0;
	uint64_t off = 0;

	if (cuMemAddressReserve(&base, total, 0, 0, 0) != CUDA_SUCCESS)
		return NULL;
	for (uint32_t i = 0; i < e->count; off += e->lens[i++]) {
		CUmemGenericAllocationHandle h;

		if (cuMemImportFromShareableHandle(&h, (void *)(intptr_t)e->fds[i],
						   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) !=
			CUDA_SUCCESS ||
		    cuMemMap(base + off, e->lens[i], 0, h, 0) != CUDA_SUCCESS)
			return NULL;
		cuMemRelease(h); /* the mapping keeps it */
	}
	if (cuMemSetAccess(base, total, &ro, 1) != CUDA_SUCCESS)
		return NULL;
	fake_vmm_peek(true); /* this test reads the device bytes from the host */
	return (uint8_t *)(uintptr_t)base;
}

static void unimport_cuda(const struct vr_dev_export *e, uint8_t *m, uint64_t total)
{
	uint64_t off = 0;

	for (uint32_t i = 0; i < e->count; off += e->lens[i++])
		cuMemUnmap((CUdeviceptr)(uintptr_t)m + off, e->lens[i]);
	cuMemAddressFree((CUdeviceptr)(uintptr_t)m, total);
}
#endif

/* Maps export E read-only end to end, as a receiving process would; NULL on failure. */
static uint8_t *map_export(const struct vr_dev_export *e, uint64_t *total)
{
	uint64_t len = 0, off = 0;
	uint8_t *base;

	for (uint32_t i = 0; i < e->count; i++)
		len += e->lens[i];
	*total = len;
	if (len == 0)
		return NULL;
	base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	for (uint32_t i = 0; i < e->count; off += e->lens[i++])
		if (mmap(base + off, e->lens[i], PROT_READ, MAP_SHARED | MAP_FIXED, e->fds[i], 0) ==
		    MAP_FAILED) {
			munmap(base, len);
			return NULL;
		}
	return base;
}

/* What a mapping M (TOTAL bytes) of F must show: DATA's SIZE bytes with digest FSV, zeros
 * after, and a change made on the device at once (the same memory, no copy). */
static void check_mapped(struct vr_dev_file *f, const uint8_t *m, const uint8_t *data,
			 uint64_t size, uint64_t total, const uint8_t fsv[32])
{
	struct vr_span span = {.data = size ? m : (const uint8_t *)"", .len = size};
	uint8_t got[32];

	CHECK(memcmp(m, data, size) == 0);
	CHECK_EQ(vr_fsv_digest_spans(&span, 1, 1, got), 0);
	CHECK_MEM(got, fsv, 32);
	for (uint64_t i = size; i < total; i++)
		if (m[i] != 0) {
			CHECK(!"an exported tail past the file's end is not zero");
			break;
		}
	if (size == 0)
		return;
	uint8_t x = (uint8_t)(data[size / 2] ^ 0x5a);

	CHECK_EQ(vr_dev_write(f, size / 2, &x, 1), 0);
	/* the device's queued work done before the look (a real importer synchronizes too) */
	uint8_t back;

	CHECK_EQ(vr_dev_read(f, size / 2, &back, 1), 0);
	CHECK_EQ(m[size / 2], x);
	CHECK_EQ(vr_dev_write(f, size / 2, data + size / 2, 1), 0);
	CHECK_EQ(vr_dev_read(f, size / 2, &back, 1), 0);
	CHECK_EQ(m[size / 2], data[size / 2]);
}

/*
 * The export of F (SIZE bytes of DATA): read-only descriptors whose mapping
 * shows the very bytes (a change made on the device shows through it), that
 * refuse a writable mapping, and that reach this file's memory only.
 */
static void exported(struct vr_backend *b, struct vr_dev_file *f, const uint8_t *data,
		     uint64_t size, const uint8_t fsv[32])
{
	struct vr_dev_export e;
	uint64_t total = 0;
	int ret = vr_dev_export(f, &e);

	if (ret == -EOPNOTSUPP && strcmp(b->ops->name, "mock") != 0)
		return; /* this backend shares no memory yet (stated in docs/socket.md) */
	CHECK_EQ(ret, 0);
	if (ret)
		return;
	uint8_t *m;

	if (e.kind == VR_EXPORT_CUDA_FD) {
		CHECK_STR(b->ops->name, "cuda");
		for (uint32_t i = 0; i < e.count; i++)
			total += e.lens[i];
#ifdef VR_FAKE_CUDA
		m = total ? import_cuda(&e, total) : NULL;
		CHECK(total == 0 || m != NULL);
		if (m)
			check_mapped(f, m, data, size, total, fsv);
		if (m) {
			/* read-only on this side: a store faults */
			int status = 0;
			pid_t pid = fork();

			if (pid == 0) {
				signal(SIGSEGV, SIG_DFL);
				((volatile uint8_t *)m)[0] = 1;
				_exit(0);
			}
			CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
			CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
			unimport_cuda(&e, m, total);
		}
#endif
		/* on a GPU, tools/dev/gpu-check maps them in a second process (vram-map) */
		CHECK(total >= size);
		CHECK(total <= vr_dev_held(f));
		vr_dev_export_clear(&e);
		return;
	}
	CHECK_EQ(e.kind, VR_EXPORT_HOST_FD);
	m = map_export(&e, &total);

	CHECK(total >= size);
	CHECK(total <= vr_dev_held(f)); /* its own chunks, nothing past them */
	CHECK(size == 0 || m != NULL);
	if (m) {
		check_mapped(f, m, data, size, total, fsv);
		for (uint32_t i = 0; i < e.count; i++) {
			void *w =
			    mmap(NULL, e.lens[i], PROT_READ | PROT_WRITE, MAP_SHARED, e.fds[i], 0);

			CHECK(w == MAP_FAILED && errno == EACCES);
			if (w != MAP_FAILED)
				munmap(w, e.lens[i]);
		}
		munmap(m, total);
	}
	vr_dev_export_clear(&e);
}

/* Loads SIZE random bytes in random chunks, reads them back and compares both digests with the
 * CPU's. */
static void roundtrip(struct vr_backend *b, uint64_t size)
{
	uint8_t *data = malloc(size ? size : 1), *back = malloc(size ? size : 1);
	uint8_t cpu_fsv[32], cpu_sha[32], dev_fsv[32], dev_sha[32], cpu_b3[32], dev_b3[32];
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	struct vr_dev_file *f;
	int ret;

	if (!data || !back || !st) {
		CHECK(!"out of memory");
		goto out;
	}
	fill(data, size);
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	/* grow as writes arrive, as the filesystem does */
	for (uint64_t off = 0; off < size;) {
		size_t n = (size_t)(rng() % (3u << 20)) + 1;

		if (n > size - off)
			n = (size_t)(size - off);
		ret = vr_dev_resize(f, off + n);
		if (ret == 0)
			ret = vr_dev_write(f, off, data + off, n);
		if (ret) {
			fprintf(stderr, "size %llu: load failed at %llu: %s\n",
				(unsigned long long)size, (unsigned long long)off, strerror(-ret));
			CHECK_EQ(ret, 0);
			break;
		}
		off += n;
	}
	CHECK(vr_dev_held(f) >= size);
	memset(back, 0x5a, size);
	for (uint64_t off = 0; off < size;) {
		size_t n = (size_t)(rng() % (5u << 20)) + 1;

		if (n > size - off)
			n = (size_t)(size - off);
		CHECK_EQ(vr_dev_read(f, off, back + off, n), 0);
		off += n;
	}
	CHECK(memcmp(data, back, size) == 0);
	vr_fsv_init(st);
	vr_fsv_update(st, data, size);
	vr_fsv_final(st, cpu_fsv);
	vr_sha256(data, size, cpu_sha);
	CHECK_EQ(vr_dev_fsverity(f, dev_fsv), 0);
	CHECK_EQ(vr_dev_sha256(f, dev_sha), 0);
	/* BLAKE3 of the device bytes (a host view at once, or read back and streamed) */
	vr_blake3_parallel(data, size, 1, cpu_b3);
	CHECK_EQ(vr_dev_blake3(f, dev_b3), 0);
	CHECK_MEM(cpu_b3, dev_b3, 32);
	if (memcmp(cpu_fsv, dev_fsv, 32) != 0)
		fprintf(stderr, "size %llu: device fs-verity digest differs from the CPU's\n",
			(unsigned long long)size);
	CHECK_MEM(cpu_fsv, dev_fsv, 32);
	CHECK_MEM(cpu_sha, dev_sha, 32);
	memset(dev_fsv, 0, 32);
	CHECK_EQ(vr_dev_fsverity(f, dev_fsv), 0);
	CHECK_MEM(cpu_fsv, dev_fsv, 32);
	/* a resize to the same size (the seal's) gives back the slack kept for growth */
	CHECK_EQ(vr_dev_resize(f, size), 0);
	CHECK(vr_dev_held(f) >= size);
	CHECK(vr_dev_held(f) - size < (16u << 20));
	exported(b, f, data, size, cpu_fsv);
	CHECK_EQ(vr_dev_read(f, 0, back, size), 0);
	CHECK(memcmp(data, back, size) == 0);
	CHECK_EQ(vr_dev_file_free(f), 0);
out:
	free(st);
	free(data);
	free(back);
}

/* A write size from 1 byte to 64 MiB, log-uniform: as many small as large ones. */
static size_t write_size(void)
{
	unsigned bits = (unsigned)(rng() % 27); /* 2^0 .. 2^26 */

	return (size_t)(rng() % ((uint64_t)1 << bits)) + 1;
}

/*
 * Loads one file as the filesystem does (a resize to the write's end, then the
 * write) through a sequence of writes whose sizes, order and gaps are drawn at
 * random: appends, rewrites of what is there, writes past the end over a hole,
 * cuts. A host copy is the oracle: the file reads back the same, its digests
 * equal the CPU's, and it stays so after the sealing resize; then it is freed.
 * The first pattern is the one that crashed the mock (issue 20): a small first
 * write, then 128 KiB pieces past the first reservation.
 */
static void write_pattern(struct vr_backend *b, uint64_t seed, uint64_t max_size)
{
	uint64_t size = 0, cap = max_size;
	uint8_t *shadow = calloc(1, max_size), *back = malloc(max_size);
	uint8_t cpu[32], dev[32];
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	struct vr_dev_file *f = NULL;
	unsigned writes = 0;
	int ret = 0;

	if (!shadow || !back || !st) {
		CHECK(!"out of memory");
		goto out;
	}
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	if (!f)
		goto out;
	if (seed == 0)
		cap = (48u << 20) + 4096;
	if (seed == 1)
		cap = 96u << 20;
	if (cap > max_size)
		cap = max_size;
	while (ret == 0 && writes < 400) {
		unsigned what = seed < 2 ? 15 : (unsigned)(rng() % 16);
		uint64_t off = size;
		size_t n = seed > 1 ? write_size()
			   : seed   ? (writes ? 1u << 20 : 6u << 20)
				    : (writes ? 131072 : 4096);

		if (what == 0 && size) /* a rewrite inside */
			off = rng() % size;
		else if (what == 1) /* past the end, over a hole */
			off = size + rng() % (4u << 20);
		else if (what == 2 && size) { /* a cut */
			uint64_t to = rng() % size;

			ret = vr_dev_resize(f, to);
			CHECK_EQ(ret, 0);
			memset(shadow + to, 0, size - to);
			size = to;
			writes++;
			continue;
		}
		if (off >= cap)
			break;
		if (n > cap - off)
			n = (size_t)(cap - off);
		fill(shadow + off, n);
		if (off + n > size)
			ret = vr_dev_resize(f, off + n);
		if (ret == 0)
			ret = vr_dev_write(f, off, shadow + off, n);
		if (ret) {
			fprintf(stderr,
				"pattern %llu: write %u of %zu bytes at %llu (size %llu): %s\n",
				(unsigned long long)seed, writes, n, (unsigned long long)off,
				(unsigned long long)size, strerror(-ret));
			CHECK_EQ(ret, 0);
			break;
		}
		if (off + n > size)
			size = off + n;
		writes++;
		if (size == cap)
			break;
	}
	CHECK(vr_dev_held(f) >= size);
	/* the sealing resize (to the same size) gives back the slack; the bytes stay */
	for (int pass = 0; pass < 2; pass++) {
		memset(back, 0x5a, size);
		CHECK_EQ(vr_dev_read(f, 0, back, size), 0);
		if (memcmp(shadow, back, size) != 0)
			fprintf(stderr, "pattern %llu: bytes differ (size %llu, pass %d)\n",
				(unsigned long long)seed, (unsigned long long)size, pass);
		CHECK_MEM(shadow, back, size);
		vr_fsv_init(st);
		vr_fsv_update(st, shadow, size);
		vr_fsv_final(st, cpu);
		CHECK_EQ(vr_dev_fsverity(f, dev), 0);
		CHECK_MEM(cpu, dev, 32);
		if (pass == 0)
			CHECK_EQ(vr_dev_resize(f, size), 0);
	}
out:
	if (f)
		CHECK_EQ(vr_dev_file_free(f), 0);
	free(st);
	free(shadow);
	free(back);
}

/* VR_PATTERNS=N runs N patterns (default DEFAULT_N), VR_PATTERN_SEED=S only pattern S. */
static void write_patterns(struct vr_backend *b, uint64_t max_size, unsigned default_n)
{
	const char *one = getenv("VR_PATTERN_SEED"), *count = getenv("VR_PATTERNS");
	unsigned n = count ? (unsigned)strtoul(count, NULL, 10) : default_n;
	uint64_t saved = rng_state;

	if (one) {
		write_pattern(b, strtoull(one, NULL, 10), max_size);
	} else {
		for (unsigned i = 0; i < n; i++)
			write_pattern(b, i, max_size);
	}
	if (one)
		printf("write pattern %s done\n", one);
	else
		printf("write patterns: %u done\n", n);
	rng_state = saved;
}

/* Out-of-range I/O is refused; a shrink scrubs, so a regrown tail reads as zeros. */
static void bounds_and_scrub(struct vr_backend *b)
{
	uint8_t buf[8192], zero[8192] = {0};
	struct vr_dev_file *f;

	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 8192), 0);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(vr_dev_write(f, 0, buf, 8192), 0);
	CHECK_EQ(vr_dev_write(f, 8000, buf, 193), -EINVAL);
	CHECK_EQ(vr_dev_read(f, 8193, buf, 1), -EINVAL);
	CHECK_EQ(vr_dev_resize(f, 100), 0);
	CHECK_EQ(vr_dev_resize(f, 8192), 0);
	CHECK_EQ(vr_dev_read(f, 100, buf, 8092), 0);
	CHECK_MEM(buf, zero, 8092);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(vr_dev_write(f, 0, buf, 8192), 0);
	CHECK_EQ(vr_dev_file_free(f), 0);
	/* a cut across chunks: what stays held and what is given back both read as zeros when
	 * the file regrows */
	{
		size_t big = 3u << 20, cut = 100000;
		uint8_t *p = malloc(big), *z = calloc(1, big);

		CHECK(p && z);
		if (p && z) {
			memset(p, 0xee, big);
			CHECK_EQ(vr_dev_file_new(b, &f), 0);
			for (size_t off = 0; off < big; off += 1u << 20) {
				CHECK_EQ(vr_dev_resize(f, off + (1u << 20)), 0);
				CHECK_EQ(vr_dev_write(f, off, p + off, 1u << 20), 0);
			}
			CHECK_EQ(vr_dev_resize(f, cut), 0);
			CHECK_EQ(vr_dev_resize(f, big), 0);
			CHECK_EQ(vr_dev_read(f, 0, p, big), 0);
			CHECK_MEM(p + cut, z, big - cut);
			CHECK_EQ(vr_dev_file_free(f), 0);
		}
		free(p);
		free(z);
	}
	/* the next file (likely given the same memory again: a device, or the mock's pool,
	 * reuses it) reads as zeros: nothing of the last one is left */
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 8192), 0);
	CHECK_EQ(vr_dev_read(f, 0, buf, 8192), 0);
	CHECK_MEM(buf, zero, 8192);
	CHECK_EQ(vr_dev_file_free(f), 0);
}

/* What a receiver of the mock's descriptors cannot do: write through a mapping (it faults),
 * reopen for writing and write, or change the chunk's size. */
static void export_guards(struct vr_backend *b)
{
	uint8_t buf[5000];
	struct vr_dev_file *f;
	struct vr_dev_export e;
	uint64_t total;
	char self[64];
	int status = 0;

	memset(buf, 0x33, sizeof(buf));
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_write(f, 0, buf, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_export(f, &e), 0);
	CHECK_EQ(e.count, 1);
	uint8_t *m = map_export(&e, &total);

	CHECK(m != NULL);
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		((volatile uint8_t *)m)[10] = 1;
		_exit(0); /* reached only if the write went through */
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	CHECK_EQ(mprotect(m, 4096, PROT_READ | PROT_WRITE), -1);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", e.fds[0]);
	int w = open(self, O_RDWR); /* root may reopen it: the seals still hold */

	if (w >= 0) {
		CHECK_EQ(pwrite(w, "x", 1, 0), -1);
		CHECK_EQ(errno, EPERM);
		CHECK(ftruncate(w, 0) != 0);
		CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, w, 0) == MAP_FAILED);
		close(w);
	}
	CHECK_EQ(m[10], 0x33);
	munmap(m, total);
	vr_dev_export_clear(&e);
	CHECK_EQ(vr_dev_file_free(f), 0);
}

/* Filling the device gives -ENOSPC before it runs out and leaves the backend usable. */
static void exhaustion(struct vr_backend *b)
{
	struct vr_device_info before, after, full;
	struct vr_dev_file *files[4096];
	int n = 0, ret = 0;
	uint64_t step;

	CHECK_EQ(vr_backend_info(b, &before), 0);
	step = before.total_bytes / 64 + 1;
	/* the allocation unit (an extent): what a one-byte file holds */
	struct vr_dev_file *probe;
	uint64_t unit = 0;

	CHECK_EQ(vr_dev_file_new(b, &probe), 0);
	if (vr_dev_resize(probe, 1) == 0)
		unit = vr_dev_held(probe);
	CHECK(unit > 0);
	vr_dev_file_free(probe);
	while (n < 4096) {
		CHECK_EQ(vr_dev_file_new(b, &files[n]), 0);
		ret = vr_dev_resize(files[n], step);
		n++;
		if (ret)
			break;
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(vr_backend_info(b, &full), 0);
	/* full: what is left cannot hold another step (rounded up to whole units) */
	CHECK(full.free_bytes < (step + unit - 1) / unit * unit);
	/* the failed file holds nothing; one more small file still fits after a free */
	CHECK_EQ(vr_dev_held(files[n - 1]), 0);
	CHECK_EQ(vr_dev_file_free(files[0]), 0);
	files[0] = NULL;
	struct vr_dev_file *g;

	CHECK_EQ(vr_dev_file_new(b, &g), 0);
	CHECK_EQ(vr_dev_resize(g, 4096), 0);
	CHECK_EQ(vr_dev_write(g, 0, "abcd", 4), 0);
	CHECK_EQ(vr_dev_file_free(g), 0);
	for (int i = 0; i < n; i++)
		vr_dev_file_free(files[i]);
	CHECK_EQ(vr_backend_info(b, &after), 0);
	CHECK_EQ(after.free_bytes, before.free_bytes);
}

/* Mock only: each injected fault comes back as the chosen errno, once, and nothing breaks. */
/*
 * The mock's chunks fail under it as files can (issue 25: it reads and writes
 * through their descriptors): a write past RLIMIT_FSIZE fails (EFBIG), a chunk
 * file cut by someone with access to vram=DIR reads short. Each is -EIO from
 * the backend, said in the log, never a crash or a short read taken as bytes;
 * an exported chunk is written and scrubbed through the mapping made before
 * its seals.
 */
static void descriptor_faults(void)
{
	char dir[] = "/tmp/vr-mock-fd.XXXXXX";
	uint8_t buf[8192], back[8192], fsv[32];
	struct rlimit old, lim;
	struct vr_dev_file *f;
	struct vr_dev_export e;
	struct vr_backend b;

	memset(buf, 0x5a, sizeof(buf));
	/* a memfd chunk: a write past the file-size limit, a scrub past it */
	struct vr_backend_opt o[] = {{"capacity", "16M"}};
	struct vr_backend_params p = {.opts = o, .nopts = 1};

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 1 << 20), 0);
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 65536;
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	CHECK_EQ(vr_dev_write(f, 0, buf, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_write(f, 512 << 10, buf, sizeof(buf)), -EIO);
	CHECK_EQ(vr_dev_resize(f, 70000), -EIO); /* the cut tail's scrub fails: no cut */
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
	CHECK_EQ(vr_dev_read(f, 0, back, sizeof(back)), 0);
	CHECK_MEM(back, buf, sizeof(back));
	/* exported: written and scrubbed through its mapping, read through its descriptor */
	CHECK_EQ(vr_dev_export(f, &e), 0);
	vr_dev_export_clear(&e);
	CHECK_EQ(vr_dev_export(f, &e), 0); /* again: the mapping is made once */
	vr_dev_export_clear(&e);
	memset(buf, 0xa5, sizeof(buf));
	CHECK_EQ(vr_dev_write(f, 4096, buf, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_read(f, 4096, back, sizeof(back)), 0);
	CHECK_MEM(back, buf, sizeof(back));
	CHECK_EQ(vr_dev_file_free(f), 0);
	vr_backend_close(&b);

	/* a vram=DIR chunk file cut under the mock: reads and digests fail, not short */
	CHECK(mkdtemp(dir) != NULL);
	struct vr_backend_opt od[] = {{"capacity", "16M"}, {"vram", dir}};
	struct vr_backend_params pd = {.opts = od, .nopts = 2};

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &pd, &b), 0);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_write(f, 0, buf, sizeof(buf)), 0);
	DIR *d = opendir(dir);
	struct dirent *ent;
	int cut = 0;

	while (d && (ent = readdir(d)) != NULL) {
		char path[512];

		if (strncmp(ent->d_name, "chunk-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		cut += truncate(path, 100) == 0;
	}
	if (d)
		closedir(d);
	CHECK_EQ(cut, 1);
	CHECK_EQ(vr_dev_read(f, 0, back, sizeof(back)), -EIO);
	CHECK_EQ(vr_dev_fsverity(f, fsv), -EIO);
	CHECK_EQ(vr_dev_file_free(f), 0);
	vr_backend_close(&b);
	rmdir(dir);
}

static void faults(void)
{
	static const char *const spec[] = {"alloc:2:enomem", "write:2", "read:2:eio", "digest:2"};
	static const int errs[] = {ENOMEM, EIO, EIO, EIO};
	uint8_t buf[4096] = {1};
	uint8_t fsv[32];

	for (int op = 0; op < 4; op++) {
		struct vr_backend_opt o[] = {{"capacity", "16M"}, {"fault", spec[op]}};
		struct vr_backend_params p = {.opts = o, .nopts = 2};
		struct vr_backend b;
		struct vr_dev_file *f;

		CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
		CHECK_EQ(vr_dev_file_new(&b, &f), 0);
		int results[3];

		for (int i = 0; i < 3; i++) {
			switch (op) {
			case 0:
				results[i] = vr_dev_resize(f, (uint64_t)(i + 1) << 20);
				if (results[i])
					vr_dev_resize(f, (uint64_t)i << 20);
				break;
			case 1:
				if (i == 0)
					vr_dev_resize(f, 4096);
				results[i] = vr_dev_write(f, 0, buf, sizeof(buf));
				break;
			case 2:
				if (i == 0)
					vr_dev_resize(f, 4096);
				results[i] = vr_dev_read(f, 0, buf, sizeof(buf));
				break;
			default:
				results[i] = vr_dev_fsverity(f, fsv);
			}
		}
		CHECK_EQ(results[0], 0);
		CHECK_EQ(results[1], -errs[op]);
		CHECK_EQ(results[2], 0);
		CHECK_EQ(vr_dev_file_free(f), 0);
		vr_backend_close(&b);
	}
	/* a malformed fault spec or capacity is refused at open */
	struct vr_backend_opt bad[][1] = {{{"fault", "nosuch:1"}}, {{"capacity", "lots"}}};

	for (int i = 0; i < 2; i++) {
		struct vr_backend_params p = {.opts = bad[i], .nopts = 1};
		struct vr_backend b;

		CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), -EINVAL);
	}
}

/*
 * The concurrency contract across files: while a digest of file A is held in
 * flight (inside the backend, through the vr_test_digest_hook seam), a write
 * and a read of file B and an info call must complete. A backend that
 * serialises every call behind one lock fails here.
 */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_armed, gate_entered, gate_open, other_done;

/* Deadline of SECONDS from now, for the timed waits below. */
static struct timespec deadline(int seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	return ts;
}

void vr_test_digest_hook(void);
void vr_test_digest_hook(void)
{
	pthread_mutex_lock(&gate_lock);
	if (gate_armed) {
		struct timespec until = deadline(20); /* never hang the suite */

		gate_armed = false;
		gate_entered = true;
		pthread_cond_broadcast(&gate_cond);
		while (!gate_open && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&gate_lock);
}

struct cross {
	struct vr_backend *b;
	struct vr_dev_file *a, *other;
	int digest_ret, write_ret, read_ret, info_ret;
};

static void *digest_a(void *arg)
{
	struct cross *x = arg;
	uint8_t fsv[32];

	x->digest_ret = vr_dev_fsverity(x->a, fsv);
	return NULL;
}

static void *use_b(void *arg)
{
	struct cross *x = arg;
	struct vr_device_info info;
	uint8_t buf[8192];

	memset(buf, 0x42, sizeof(buf));
	x->write_ret = vr_dev_write(x->other, 0, buf, sizeof(buf));
	x->read_ret = vr_dev_read(x->other, 0, buf, sizeof(buf));
	x->info_ret = vr_backend_info(x->b, &info);
	pthread_mutex_lock(&gate_lock);
	other_done = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	return NULL;
}

static void cross_file(struct vr_backend *b)
{
	struct cross x = {.b = b};
	pthread_t td, tu;
	struct timespec until;
	bool entered, done;

	CHECK_EQ(vr_dev_file_new(b, &x.a), 0);
	CHECK_EQ(vr_dev_file_new(b, &x.other), 0);
	CHECK_EQ(vr_dev_resize(x.a, 1 << 20), 0);
	CHECK_EQ(vr_dev_resize(x.other, 8192), 0);
	gate_armed = true;
	gate_entered = gate_open = other_done = false;
	CHECK_EQ(pthread_create(&td, NULL, digest_a, &x), 0);
	pthread_mutex_lock(&gate_lock);
	until = deadline(10);
	while (!gate_entered && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
		;
	entered = gate_entered;
	pthread_mutex_unlock(&gate_lock);
	CHECK(entered); /* the backend's digest reached the seam */
	CHECK_EQ(pthread_create(&tu, NULL, use_b, &x), 0);
	pthread_mutex_lock(&gate_lock);
	until = deadline(5);
	while (!other_done && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
		;
	done = other_done;
	gate_open = true;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	if (!done)
		fprintf(stderr, "a digest of one file blocked a write/read/info of another\n");
	CHECK(done);
	pthread_join(td, NULL);
	pthread_join(tu, NULL);
	CHECK_EQ(x.digest_ret, 0);
	CHECK_EQ(x.write_ret, 0);
	CHECK_EQ(x.read_ret, 0);
	CHECK_EQ(x.info_ret, 0);
	CHECK_EQ(vr_dev_file_free(x.a), 0);
	CHECK_EQ(vr_dev_file_free(x.other), 0);
}

/*
 * The VRAM-only policy, over the CUDA runtime test double (tests/fake): an
 * integrated GPU, compute capability 5 and a card under 1 GiB are refused
 * with -ENODEV and a policy_violation record; a good card opens.
 */
static int policy_checks(void)
{
	static const char *const env[][2] = {{"VR_FAKE_CUDA_INTEGRATED", "1"},
					     {"VR_FAKE_CUDA_CC", "5"},
					     {"VR_FAKE_CUDA_MEM", "536870912"}};
	char path[] = "/tmp/vr-policy-XXXXXX";
	int fd = mkstemp(path);
	struct vr_backend b;

	close(fd);
	for (size_t i = 0; i < 3; i++) {
		struct vr_backend_params p = {0};
		struct vr_audit *a;
		char line[4096] = "";
		FILE *f;

		CHECK_EQ(truncate(path, 0), 0);
		CHECK_EQ(vr_audit_open(path, &a), 0);
		p.audit = a;
		setenv(env[i][0], env[i][1], 1);
		CHECK_EQ(vr_backend_open(vr_backend_find("cuda"), &p, &b), -ENODEV);
		unsetenv(env[i][0]);
		vr_audit_close(a);
		f = fopen(path, "r");
		CHECK(f && fgets(line, sizeof(line), f));
		CHECK(strstr(line, "\"event\":\"policy_violation\"") != NULL);
		if (f)
			fclose(f);
	}
	struct vr_backend_params ok = {0};

	CHECK_EQ(vr_backend_open(vr_backend_find("cuda"), &ok, &b), 0);
	vr_backend_close(&b);
	unlink(path);
	return check_summary();
}

#ifdef VR_FAKE_CUDA
/*
 * The CUDA backend over the strict double: a failed call that leaves the
 * context usable changes nothing for good; a sticky error marks the device
 * failed (every later operation refuses with EIO, info says so); a load that
 * grows in 1 MiB writes does not drain the upload stream at each write (it
 * once synchronized 277 times for 256 writes).
 */
static void strict_cuda(const struct vr_backend_ops *ops, const struct vr_backend_params *p)
{
	static uint8_t buf[1 << 20];
	struct vr_device_info info;
	struct vr_dev_file *f = NULL;
	struct vr_backend b;
	uint8_t d[32];

	fill(buf, sizeof(buf));
	vr_fake_cuda_reset();
	CHECK_EQ(vr_backend_open(ops, p, &b), 0);

	/* growing in FUSE-sized writes: a drain per new extent at most, not per write */
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	unsigned before = vr_fake_cuda_syncs();

	for (uint64_t off = 0; off < (256u << 20); off += sizeof(buf)) {
		CHECK_EQ(vr_dev_resize(f, off + sizeof(buf)), 0);
		CHECK_EQ(vr_dev_write(f, off, buf, sizeof(buf)), 0);
	}
	unsigned drains = vr_fake_cuda_syncs() - before;

	printf("256 growing 1 MiB writes: %u stream drains\n", drains);
	CHECK(drains <= 16);
	CHECK_EQ(vr_dev_file_free(f), 0);

	/* an ordinary failure (the card is full): ENOSPC, and the device stays usable */
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	vr_fake_cuda_fail("cuMemCreate", 1, 0);
	CHECK_EQ(vr_dev_resize(f, 100), -ENOSPC);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(!info.failed);
	CHECK_EQ(vr_dev_resize(f, 100), 0);
	CHECK_EQ(vr_dev_write(f, 0, buf, 100), 0);
	/* BLAKE3 runs on the device after the file's queued upload (which nothing else ran
	 * yet); its launch failing is EIO (the host's hash does not stand in), and the device
	 * stays usable */
	uint8_t b3[32], b3_cpu[32];

	vr_blake3_parallel(buf, 100, 1, b3_cpu);
	CHECK_EQ(vr_dev_blake3(f, b3), 0);
	CHECK_MEM(b3, b3_cpu, 32);
	vr_fake_cuda_fail_code("vr_cuda_blake3", 1, cudaErrorInvalidValue);
	CHECK_EQ(vr_dev_blake3(f, b3), -EIO);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(!info.failed);
	CHECK_EQ(vr_dev_blake3(f, b3), 0);
	CHECK_MEM(b3, b3_cpu, 32);
	CHECK_EQ(vr_dev_fsverity(f, d), 0);

	/* a sticky error (an illegal address in an upload): the device is failed for good */
	vr_fake_cuda_fail("cudaMemcpyAsync", 1, 1);
	CHECK_EQ(vr_dev_write(f, 0, buf, 100), -EIO);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(info.failed);
	CHECK_EQ(vr_dev_fsverity(f, d), -EIO);
	CHECK_EQ(vr_dev_blake3(f, d), -EIO);
	CHECK_EQ(vr_dev_resize(f, 200), -EIO);
	CHECK_EQ(vr_dev_read(f, 0, buf, 10), -EIO);
	vr_dev_file_free(f);
	vr_backend_close(&b);
	vr_fake_cuda_reset();

	/* a fresh open (a restart) works again */
	CHECK_EQ(vr_backend_open(ops, p, &b), 0);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(!info.failed);
	vr_backend_close(&b);
}

/*
 * The seal-time trim under a refused map: whichever cuMemMap fails, the file
 * keeps every byte and its size (it once released the old tail before mapping
 * the exact one, and lost the file).
 */
static void trim_keeps_file(const struct vr_backend_ops *ops, const struct vr_backend_params *p)
{
	static uint8_t data[5 << 20], back[5 << 20];
	struct vr_backend b;

	fill(data, sizeof(data));
	vr_fake_cuda_reset();
	CHECK_EQ(vr_backend_open(ops, p, &b), 0);
	for (unsigned nth = 1; nth <= 4; nth++) {
		struct vr_dev_file *f;
		struct vr_device_info info;

		CHECK_EQ(vr_dev_file_new(&b, &f), 0);
		/* 2 + 2 + 4 MiB chunks: the last one has 3 MiB of slack at 5 MiB */
		CHECK_EQ(vr_dev_resize(f, 1 << 20), 0);
		CHECK_EQ(vr_dev_resize(f, 3 << 20), 0);
		CHECK_EQ(vr_dev_resize(f, sizeof(data)), 0);
		CHECK_EQ(vr_dev_write(f, 0, data, sizeof(data)), 0);
		CHECK(vr_dev_held(f) > (6u << 20));
		vr_fake_cuda_fail("cuMemMap", nth, 0);
		CHECK_EQ(vr_dev_resize(f, sizeof(data)), 0); /* keeping the slack is no error */
		vr_fake_cuda_reset();
		memset(back, 0, sizeof(back));
		CHECK_EQ(vr_dev_read(f, 0, back, sizeof(back)), 0);
		CHECK_MEM(back, data, sizeof(data));
		CHECK_EQ(vr_backend_info(&b, &info), 0);
		CHECK(!info.failed);
		CHECK_EQ(vr_dev_file_free(f), 0);
	}
	vr_backend_close(&b);
}

/*
 * Refusals the card gives: the driver refusing a large chunk while the
 * smallest would fit (the load goes on with it); a sticky error from any VMM
 * call (the device is failed); and the cost of growth in cuMemSetAccess
 * calls (one per new chunk or new reservation, not one per chunk remapped).
 */
static void driver_refusals(const struct vr_backend_ops *ops, const struct vr_backend_params *p)
{
	static uint8_t buf[1 << 20];
	struct vr_device_info info;
	struct vr_dev_file *f;
	struct vr_backend b;

	fill(buf, sizeof(buf));
	vr_fake_cuda_reset();
	CHECK_EQ(vr_backend_open(ops, p, &b), 0);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 8u << 20), 0);
	vr_fake_cuda_fail("cuMemCreate", 1, 0); /* the 8 MiB chunk of slack: refused */
	CHECK_EQ(vr_dev_resize(f, 9u << 20), 0);
	CHECK_EQ(vr_dev_held(f), 10u << 20);
	CHECK_EQ(vr_dev_write(f, (9u << 20) - sizeof(buf), buf, sizeof(buf)), 0);
	CHECK_EQ(vr_dev_file_free(f), 0);

	unsigned before = vr_fake_cuda_set_access_calls();

	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	for (uint64_t off = 0; off < (256u << 20); off += sizeof(buf))
		CHECK_EQ(vr_dev_resize(f, off + sizeof(buf)), 0);
	unsigned calls = vr_fake_cuda_set_access_calls() - before;

	printf("a 256 MiB load in 1 MiB steps: %u cuMemSetAccess calls\n", calls);
	CHECK(calls <= 12);
	CHECK_EQ(vr_dev_file_free(f), 0);

	/* another process takes all but 64 MiB of the device (the headroom too: 1 GiB on the
	 * double's sizes): the driver refuses, the budget follows the device down (to what the
	 * headroom leaves: nothing), and back up once the memory is free again */
	struct vr_device_info was;
	long long hog;

	CHECK_EQ(vr_backend_info(&b, &was), 0);
	hog = (long long)was.total_bytes + (1LL << 30) - (64LL << 20);
	vr_fake_cuda_hog(hog);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 200u << 20), -ENOSPC);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK_EQ(info.total_bytes, 0);
	CHECK(!info.failed);
	vr_fake_cuda_hog(-hog);
	CHECK_EQ(vr_dev_resize(f, 200u << 20), 0);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK_EQ(info.total_bytes, was.total_bytes);
	CHECK_EQ(vr_dev_file_free(f), 0);

	/* a sticky error other than the first three the backend knew */
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	vr_fake_cuda_fail_code("cuMemMap", 1, CUDA_ERROR_MISALIGNED_ADDRESS);
	CHECK_EQ(vr_dev_resize(f, 100), -EIO);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(info.failed);
	/* and the driver repeats it, as a broken context does */
	CUmemGenericAllocationHandle h;
	CUmemAllocationProp pr = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
				  .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0}};

	CHECK_EQ(cuMemCreate(&h, 2u << 20, &pr, 0), CUDA_ERROR_MISALIGNED_ADDRESS);
	vr_dev_file_free(f);
	vr_backend_close(&b);
	vr_fake_cuda_reset();
}

/* cuMemSetAccess waits for device work queued before it, as the driver may. */
static void set_access_waits(void)
{
	CUmemAllocationProp pr = {.type = CU_MEM_ALLOCATION_TYPE_PINNED,
				  .location = {CU_MEM_LOCATION_TYPE_DEVICE, 0}};
	CUmemAccessDesc rw = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
	CUmemAccessDesc ro = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READ};
	CUmemGenericAllocationHandle h;
	CUdeviceptr base = 0;
	cudaStream_t s;

	vr_fake_cuda_reset();
	CHECK_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
	CHECK_EQ(cuMemCreate(&h, 2u << 20, &pr, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressReserve(&base, 2u << 20, 0, 0, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, 2u << 20, 0, h, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemSetAccess(base, 2u << 20, &rw, 1), CUDA_SUCCESS);
	CHECK_EQ(cudaMemsetAsync((void *)(uintptr_t)base, 7, 4096, s), cudaSuccess);
	CHECK_EQ(cuMemSetAccess(base, 2u << 20, &ro, 1), CUDA_SUCCESS);
	fake_vmm_peek(true);
	CHECK_EQ(((volatile uint8_t *)(uintptr_t)base)[4095], 7); /* done, with no synchronize */
	CHECK_EQ(cuMemUnmap(base, 2u << 20), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressFree(base, 2u << 20), CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(h), CUDA_SUCCESS);
	cudaStreamDestroy(s);
}
#endif

/*
 * The staging a backend lends a writer (its own, or host slots where it lends
 * none): a file of SIZE bytes loaded through slots in pieces of every slot's
 * size but the last, read back equal; slots page-aligned (a read bypassing
 * the page cache lands in them) and given out in turn; a queue with no slot
 * given, or past the slot, refused.
 */
static void staging(struct vr_backend *b, uint64_t size)
{
	uint8_t *data = malloc(size ? size : 1), *back = malloc(size ? size : 1);
	void *seen[64] = {NULL};
	struct vr_dev_stage *s;
	struct vr_dev_file *f;
	size_t nseen = 0;

	if (!data || !back) {
		CHECK(!"out of memory");
		goto out;
	}
	fill(data, size);
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, size), 0);
	CHECK_EQ(vr_dev_stage_new(f, &s), 0);
	CHECK_EQ(vr_dev_stage_write(s, 0, 1), -EINVAL); /* no slot given yet */
	for (uint64_t off = 0; off < size;) {
		void *slot;
		size_t cap, n;

		CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
		CHECK(cap >= 4096 && cap % 4096 == 0);
		CHECK(((uintptr_t)slot & 4095) == 0);
		if (nseen < 64)
			seen[nseen++] = slot;
		n = size - off < cap ? (size_t)(size - off) : cap;
		memcpy(slot, data + off, n);
		if (off == 0)
			CHECK_EQ(vr_dev_stage_write(s, 0, cap + 1), -EINVAL);
		CHECK_EQ(vr_dev_stage_write(s, off, n), 0);
		off += n;
	}
	CHECK_EQ(vr_dev_stage_free(s), 0);
	CHECK_EQ(vr_dev_stage_free(NULL), 0);
	/* at least two slots in turn: one fills while the other is hashed or on the bus */
	if (nseen >= 2)
		CHECK(seen[0] != seen[1]);
	memset(back, 0x5a, size);
	if (size)
		CHECK_EQ(vr_dev_read(f, 0, back, size), 0);
	CHECK(memcmp(data, back, size) == 0);
	CHECK_EQ(vr_dev_file_free(f), 0);
out:
	free(data);
	free(back);
}

/*
 * The mock's host staging, beyond the conformance above: a queued write comes
 * before the file's next read (no free between), one host stage per file at a
 * time, a file freed under its stage cuts it (later writes -ESTALE), and a
 * write that fails is the stage's error (at the next slot, write or free).
 */
static void host_staging(void)
{
	struct vr_backend_opt o[] = {{"capacity", "64M"}, {"fault", "write:3"}};
	struct vr_backend_params p = {.opts = o, .nopts = 1};
	uint8_t back[8192];
	struct vr_dev_stage *s, *s2;
	struct vr_dev_file *f;
	struct vr_backend b;
	void *slot;
	size_t cap;

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 16u << 20), 0);
	CHECK_EQ(vr_dev_stage_new(f, &s), 0);
	CHECK_EQ(vr_dev_stage_new(f, &s2), -EBUSY);
	for (int round = 0; round < 200; round++) {
		CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
		CHECK_EQ(cap, 8u << 20); /* the default staging's slot */
		memset(slot, round + 1, cap);
		CHECK_EQ(vr_dev_stage_write(s, (uint64_t)(round % 4) << 20, cap - (3u << 20)), 0);
		CHECK_EQ(vr_dev_read(f, (uint64_t)(round % 4) << 20, back, sizeof(back)), 0);
		CHECK(back[0] == (uint8_t)(round + 1) && back[8191] == (uint8_t)(round + 1));
	}
	CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
	CHECK_EQ(vr_dev_file_free(f), 0); /* with a slot given out and never queued */
	CHECK_EQ(vr_dev_stage_write(s, 0, 4096), -ESTALE);
	CHECK_EQ(vr_dev_stage_free(s), 0);
	vr_backend_close(&b);

	/* the third write fails: seen by the stage, never taken as written */
	p.nopts = 2;
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	CHECK_EQ(vr_dev_file_new(&b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, 16u << 20), 0);
	CHECK_EQ(vr_dev_stage_new(f, &s), 0);
	int first = 0;

	for (int i = 0; i < 8 && first == 0; i++) {
		first = vr_dev_stage_slot(s, &slot, &cap);
		if (first == 0)
			first = vr_dev_stage_write(s, (uint64_t)(i % 4) << 20, 4096);
	}
	CHECK_EQ(first, -EIO);
	CHECK_EQ(vr_dev_stage_free(s), -EIO);
	CHECK_EQ(vr_dev_file_free(f), 0);
	vr_backend_close(&b);
}

/* -o staging's values: the geometry each gives, or the refusal. */
static void staging_values(void)
{
	static const struct {
		const char *text;
		size_t slot;
		unsigned slots, stages;
	} good[] = {{"8Mx4x16", 8u << 20, 4, 16},
		    {"64Kx2x1", 64u << 10, 2, 1},
		    {"256Mx16x4", 256u << 20, 16, 4},
		    {"1mx3x64", 1u << 20, 3, 64},
		    {"69632x2x2", 69632, 2, 2}};
	static const char *const bad[] = {
	    "",		"8M",	     "8Mx4",	 "8Mx4x16x", "8Mx4x16 ", " 8Mx4x16", "8Mx-4x16",
	    "8Mx4x-1",	"8Mx1x16",   "8Mx17x16", "8Mx4x0",   "8Mx4x65",	 "4Kx2x2",   "65537x2x2",
	    "512Mx2x2", "256Mx16x5", "x4x16",	 "8Px4x16",  "8Mx+4x16", "0x2x2"};
	struct vr_staging g;
	char why[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(vr_staging_parse(good[i].text, &g, why, sizeof(why)), 0);
		CHECK_EQ(g.slot, good[i].slot);
		CHECK_EQ(g.slots, good[i].slots);
		CHECK_EQ(g.stages, good[i].stages);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CHECK_EQ(vr_staging_parse(bad[i], &g, why, sizeof(why)), -EINVAL);
		CHECK(strstr(why, "staging=") != NULL);
	}
}

/* The smallest slots, three of them, one stage: every size still loads whole; a geometry the
 * parse refuses fails the open. */
static void small_staging(const struct vr_backend_ops *ops, const struct vr_backend_params *p,
			  const uint64_t *sizes, size_t n)
{
	struct vr_backend_opt small_opts[] = {{"capacity", "256M"}, {"staging", "64Kx3x1"}};
	struct vr_backend_params sp = *p;
	struct vr_backend sb;

	sp.opts = small_opts;
	sp.nopts = 2;
	CHECK_EQ(vr_backend_open(ops, &sp, &sb), 0);
	CHECK_EQ(sb.staging.slot, 64u << 10);
	for (size_t i = 0; i < n; i++)
		staging(&sb, sizes[i]);
	vr_backend_close(&sb);
	small_opts[1].value = "8Mx1x1";
	CHECK_EQ(vr_backend_open(ops, &sp, &sb), -EINVAL);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "mock";

	if (strcmp(name, "cuda-policy") == 0)
		return policy_checks();
	const struct vr_backend_ops *ops = vr_backend_find(name);
	struct vr_backend_opt mock_opts[] = {{"capacity", "256M"}};
	struct vr_backend_params p = {.opts = mock_opts, .nopts = 1};
	struct vr_device_info info;
	struct vr_backend b;
	int ret;

	if (!ops) {
		printf("backend %s is not in this build: skipped\n", name);
		return 77;
	}
	ret = vr_backend_open(ops, &p, &b);
	if (ret == -ENODEV && strcmp(name, "mock") != 0) {
		printf("backend %s: no usable device here: skipped\n", name);
		return 77;
	}
	CHECK_EQ(ret, 0);
	if (ret)
		return check_summary();
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	printf("backend %s: %s (%s), %llu bytes free of %llu\n", info.backend, info.name, info.uuid,
	       (unsigned long long)info.free_bytes, (unsigned long long)info.total_bytes);
	CHECK_STR(info.backend, name);
	CHECK(info.free_bytes <= info.total_bytes);
	CHECK(strlen(info.uuid) > 0);
	CHECK(!info.integrated);
	if (strcmp(name, "mock") == 0)
		CHECK_EQ(info.total_bytes, 256u << 20);

	const uint64_t sizes[] = {
	    0, 1, 4095, 4096, 4097, 524288, 524289, 3 << 20, (5 << 20) + 12345, 40u << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(&b, sizes[i]);
	/* VR_CONFORMANCE_QUICK (under compute-sanitizer): no 1 GiB file, no filling the card */
	bool quick = getenv("VR_CONFORMANCE_QUICK") != NULL;

	if (!quick && strcmp(name, "mock") != 0 && info.free_bytes > (3ULL << 30))
		roundtrip(&b, 1ULL << 30);
	/* files to a few hundred MiB where the device holds them (the mock here: 256 MiB); the
	 * CUDA double is slower per write, so fewer there (VR_PATTERNS=N for more) */
	if (strcmp(name, "mock") == 0)
		write_patterns(&b, 96u << 20, 12);
	else
		write_patterns(&b, 256u << 20, 4);
	bounds_and_scrub(&b);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		staging(&b, sizes[i]);
	staging_values();
	small_staging(ops, &p, sizes, sizeof(sizes) / sizeof(sizes[0]));
	if (strcmp(name, "mock") == 0)
		export_guards(&b);
	/* needs the seam, which only the mock and the fake runtime call */
	if (strcmp(name, "mock") == 0 || fake_cuda)
		cross_file(&b);
	if (!quick)
		exhaustion(&b);
	roundtrip(&b, 777777); /* still usable after exhaustion */
	vr_backend_close(&b);
	if (strcmp(name, "mock") == 0) {
		faults();
		descriptor_faults();
		host_staging();
		/* as a backend whose memory is not the host's (CUDA): the same bytes back */
		struct vr_backend_ops readback = *ops;

		readback.host_memory = false;
		CHECK_EQ(vr_backend_open(&readback, &p, &b), 0);
		roundtrip(&b, 0);
		roundtrip(&b, (3 << 20) + 5);
		vr_backend_close(&b);
	}
#ifdef VR_FAKE_CUDA
	if (strcmp(name, "cuda") == 0) {
		strict_cuda(ops, &p);
		trim_keeps_file(ops, &p);
		driver_refusals(ops, &p);
		set_access_waits();
	}
#endif
	return check_summary();
}
