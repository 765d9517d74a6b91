/* client_cuda.c - libvram-client's GPU half: the CUDA driver by dlopen, imports and copies. */
#include "client_cuda.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The CUDA driver, opened on first need (dlopen: a client without CUDA links
 * libc only). The few types and values used are the driver ABI's own.
 */
struct cu_loc {
	int type; /* CU_MEM_LOCATION_TYPE_DEVICE = 1 */
	int id;
};
struct cu_access {
	struct cu_loc location;
	int flags; /* CU_MEM_ACCESS_FLAGS_PROT_READ = 1 */
};
#define CU_POSIX_FD 1
static struct {
	pthread_once_t once;
	void *lib;
	int device; /* -1 until found */
	int (*init)(unsigned);
	int (*count)(int *);
	int (*get)(int *, int);
	int (*uuid)(unsigned char *, int);
	int (*retain)(void **, int);
	int (*set_current)(void *);
	int (*import)(unsigned long long *, void *, int);
	int (*reserve)(unsigned long long *, size_t, size_t, unsigned long long,
		       unsigned long long);
	int (*addr_free)(unsigned long long, size_t);
	int (*map)(unsigned long long, size_t, size_t, unsigned long long, unsigned long long);
	int (*unmap)(unsigned long long, size_t);
	int (*set_access)(unsigned long long, size_t, const struct cu_access *, size_t);
	int (*release)(unsigned long long);
	int (*dtoh)(void *, unsigned long long, size_t);
} cu = {.once = PTHREAD_ONCE_INIT};

static void cu_open(void)
{
	const char *name = getenv("VRAM_CLIENT_CUDA_LIB");
	struct {
		const char *sym;
		void **slot;
	} fns[] = {{"cuInit", (void **)&cu.init},
		   {"cuDeviceGetCount", (void **)&cu.count},
		   {"cuDeviceGet", (void **)&cu.get},
		   {"cuDeviceGetUuid_v2", (void **)&cu.uuid},
		   {"cuDevicePrimaryCtxRetain", (void **)&cu.retain},
		   {"cuCtxSetCurrent", (void **)&cu.set_current},
		   {"cuMemImportFromShareableHandle", (void **)&cu.import},
		   {"cuMemAddressReserve", (void **)&cu.reserve},
		   {"cuMemAddressFree", (void **)&cu.addr_free},
		   {"cuMemMap", (void **)&cu.map},
		   {"cuMemUnmap", (void **)&cu.unmap},
		   {"cuMemSetAccess", (void **)&cu.set_access},
		   {"cuMemRelease", (void **)&cu.release},
		   {"cuMemcpyDtoH_v2", (void **)&cu.dtoh}};

	cu.lib = dlopen(name && *name ? name : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	for (size_t i = 0; cu.lib && i < sizeof(fns) / sizeof(fns[0]); i++) {
		*fns[i].slot = dlsym(cu.lib, fns[i].sym);
		if (!*fns[i].slot) {
			dlclose(cu.lib);
			cu.lib = NULL;
		}
	}
	if (cu.lib && cu.init(0) != 0) {
		dlclose(cu.lib);
		cu.lib = NULL;
	}
}

/* Writes why into WHY (CAP bytes); returns ERR. */
static int say(char *why, size_t cap, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return err;
}

/* Makes the device with UUID current in this thread (primary context); 0 or -errno. */
static int cu_device(const unsigned char uuid[16], char *why, size_t cap)
{
	int n = 0;

	pthread_once(&cu.once, cu_open);
	if (!cu.lib)
		return say(why, cap, -EOPNOTSUPP,
			   "the file is in GPU memory and no CUDA driver loads "
			   "here (libcuda.so.1)");
	if (cu.count(&n) != 0)
		n = 0;
	for (int i = 0; i < n; i++) {
		unsigned char u[16];
		int dev;
		void *ctx;

		if (cu.get(&dev, i) != 0 || cu.uuid(u, dev) != 0 || memcmp(u, uuid, 16) != 0)
			continue;
		if (cu.retain(&ctx, dev) != 0 || cu.set_current(ctx) != 0)
			return say(why, cap, -EIO, "cannot use GPU %d's context", i);
		return dev;
	}
	return say(why, cap, -ENODEV,
		   "the daemon's GPU is not visible in this process (CUDA_VISIBLE_DEVICES?)");
}

int client_cuda_map(const unsigned char uuid[16], const int *fds, const uint64_t *lens,
		    uint32_t count, uint64_t total, void **out, char *why, size_t cap)
{
	unsigned long long base = 0, off = 0;
	uint32_t i;
	int dev;

	dev = cu_device(uuid, why, cap);
	if (dev < 0)
		return dev;
	if (cu.reserve(&base, total, 0, 0, 0) != 0)
		return say(why, cap, -ENOMEM, "cannot reserve %llu bytes of GPU address space",
			   (unsigned long long)total);
	for (i = 0; i < count; off += lens[i++]) {
		unsigned long long h;

		if (cu.import(&h, (void *)(intptr_t)fds[i], CU_POSIX_FD) != 0)
			break;
		int e = cu.map(base + off, lens[i], 0, h, 0);

		cu.release(h); /* the mapping keeps the memory */
		if (e != 0)
			break;
	}
	struct cu_access ro = {{1, dev}, 1};

	if (i < count || cu.set_access(base, total, &ro, 1) != 0) {
		off = 0;
		for (uint32_t j = 0; j < i; off += lens[j++])
			cu.unmap(base + off, lens[j]);
		cu.addr_free(base, total);
		return say(why, cap, -EIO, "importing the GPU memory failed");
	}
	*out = (void *)(uintptr_t)base;
	return 0;
}

void client_cuda_unmap(void *ptr, const uint64_t *lens, uint32_t count, uint64_t mapped)
{
	unsigned long long base = (uintptr_t)ptr, off = 0;

	for (uint32_t i = 0; i < count; off += lens[i++])
		cu.unmap(base + off, lens[i]);
	cu.addr_free(base, mapped);
}

int client_cuda_read(void *buf, const void *ptr, uint64_t off, size_t len)
{
	return cu.dtoh(buf, (unsigned long long)(uintptr_t)ptr + off, len);
}
