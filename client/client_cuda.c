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
	int (*ctx_release)(int);
	int (*push)(void *);
	int (*pop)(void **);
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

/*
 * What each mapping needs for later calls from any thread: its device's
 * primary context (retained once per mapping, released at unmap). Every
 * driver call that needs a context runs between a push of it and a pop, so a
 * read works from any thread and the caller's own current context is
 * left as it was.
 */
struct cu_map {
	uintptr_t base;
	uint64_t len;
	void *ctx;
	int dev;
	struct cu_map *next;
};
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cu_map *maps; /* under MAPS_LOCK */

/* The mapping that holds [P, P+LEN), or NULL. MAPS_LOCK held. */
static struct cu_map *find_map(uintptr_t p, size_t len)
{
	for (struct cu_map *m = maps; m; m = m->next)
		if (p >= m->base && p - m->base <= m->len && len <= m->len - (p - m->base))
			return m;
	return NULL;
}

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
		   {"cuDevicePrimaryCtxRelease_v2", (void **)&cu.ctx_release},
		   {"cuCtxPushCurrent_v2", (void **)&cu.push},
		   {"cuCtxPopCurrent_v2", (void **)&cu.pop},
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

/* The device with UUID (its ordinal: *DEV) and its primary context, retained (*CTX); 0 or
 * -errno. */
static int cu_device(const unsigned char uuid[16], int *dev, void **ctx, char *why, size_t cap)
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

		if (cu.get(dev, i) != 0 || cu.uuid(u, *dev) != 0 || memcmp(u, uuid, 16) != 0)
			continue;
		if (cu.retain(ctx, *dev) != 0)
			return say(why, cap, -EIO, "cannot use GPU %d's context", i);
		return 0;
	}
	return say(why, cap, -ENODEV,
		   "the daemon's GPU is not visible in this process (CUDA_VISIBLE_DEVICES?)");
}

/* Pops what cu.push made current, back to the caller's own context. */
static void cu_pop(void)
{
	void *was;

	cu.pop(&was);
}

/* Reserves TOTAL bytes at *BASE and maps the COUNT chunks end to end, read-only; all or nothing.
 * The context is current. */
static int map_chunks(int dev, const int *fds, const uint64_t *lens, uint32_t count, uint64_t total,
		      unsigned long long *base)
{
	unsigned long long off = 0;
	struct cu_access ro = {{1, dev}, 1};
	uint32_t i;

	if (cu.reserve(base, total, 0, 0, 0) != 0)
		return -ENOMEM;
	for (i = 0; i < count; off += lens[i++]) {
		unsigned long long h;

		if (cu.import(&h, (void *)(intptr_t)fds[i], CU_POSIX_FD) != 0)
			break;
		int e = cu.map(*base + off, lens[i], 0, h, 0);

		cu.release(h); /* the mapping keeps the memory */
		if (e != 0)
			break;
	}
	if (i < count || cu.set_access(*base, total, &ro, 1) != 0) {
		off = 0;
		for (uint32_t j = 0; j < i; off += lens[j++])
			cu.unmap(*base + off, lens[j]);
		cu.addr_free(*base, total);
		return -EIO;
	}
	return 0;
}

int client_cuda_map(const unsigned char uuid[16], const int *fds, const uint64_t *lens,
		    uint32_t count, uint64_t total, void **out, char *why, size_t cap)
{
	unsigned long long base = 0;
	struct cu_map *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return say(why, cap, -ENOMEM, "out of memory");
	ret = cu_device(uuid, &m->dev, &m->ctx, why, cap);
	if (ret) {
		free(m);
		return ret;
	}
	if (cu.push(m->ctx) != 0) {
		cu.ctx_release(m->dev);
		free(m);
		return say(why, cap, -EIO, "cannot make the GPU's context current");
	}
	ret = map_chunks(m->dev, fds, lens, count, total, &base);
	cu_pop();
	if (ret) {
		cu.ctx_release(m->dev);
		free(m);
		return ret == -ENOMEM
			   ? say(why, cap, ret, "cannot reserve %llu bytes of GPU address space",
				 (unsigned long long)total)
			   : say(why, cap, ret, "importing the GPU memory failed");
	}
	m->base = (uintptr_t)base;
	m->len = total;
	pthread_mutex_lock(&maps_lock);
	m->next = maps;
	maps = m;
	pthread_mutex_unlock(&maps_lock);
	*out = (void *)(uintptr_t)base;
	return 0;
}

void client_cuda_unmap(void *ptr, const uint64_t *lens, uint32_t count, uint64_t mapped)
{
	unsigned long long base = (uintptr_t)ptr, off = 0;
	struct cu_map **at, *m = NULL;

	pthread_mutex_lock(&maps_lock);
	for (at = &maps; *at; at = &(*at)->next)
		if ((*at)->base == (uintptr_t)ptr) {
			m = *at;
			*at = m->next;
			break;
		}
	pthread_mutex_unlock(&maps_lock);
	if (!m)
		return; /* not mapped here */
	/* a context that cannot be made current is broken: its mappings went with it */
	if (cu.push(m->ctx) == 0) {
		for (uint32_t i = 0; i < count; off += lens[i++])
			cu.unmap(base + off, lens[i]);
		cu.addr_free(base, mapped);
		cu_pop();
	}
	cu.ctx_release(m->dev);
	free(m);
}

int client_cuda_read(void *buf, const void *ptr, uint64_t off, size_t len)
{
	uintptr_t p = (uintptr_t)ptr + off;
	void *ctx = NULL;
	int ret;

	pthread_mutex_lock(&maps_lock);
	struct cu_map *m = find_map(p, len);

	if (m)
		ctx = m->ctx;
	pthread_mutex_unlock(&maps_lock);
	/* on this thread's behalf, whatever it has current (or not) */
	if (!ctx || cu.push(ctx) != 0)
		return -1;
	ret = cu.dtoh(buf, (unsigned long long)p, len);
	cu_pop();
	return ret;
}
