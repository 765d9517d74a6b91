/* fake_cuda_driver.c - the CUDA driver's VMM calls as a test double: memfd chunks in host memory.
 */
#include "fake_cuda_driver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * What the CUDA backend and the client library call of the driver's virtual
 * memory management, on host memory, as strict as the real driver where a
 * caller could go wrong (each rule has a check in tests/unit/test_fake_driver.c):
 *  - nothing but cuInit (and cuGetErrorName) before cuInit: CUDA_ERROR_NOT_INITIALIZED;
 *  - contexts: one primary context per device, live while retained (or bound by the
 *    runtime double, as the runtime does); a per-thread stack (cuCtxSetCurrent, push,
 *    pop); a copy on a thread with no live current context is
 *    CUDA_ERROR_INVALID_CONTEXT;
 *  - a handle (cuMemCreate) is a memfd of a multiple of the minimum granularity
 *    (2 MiB; the recommended one is VR_FAKE_CUDA_REC_GRAIN, default the same),
 *    filled with junk; the properties must name device 0, pinned memory, and no
 *    Windows metadata; every flags argument must be 0;
 *  - a reservation is PROT_NONE address space (alignment 0 or a power of two);
 *    cuMemMap maps a whole handle (offset 0, its size) inside one reservation
 *    over nothing mapped yet; cuMemAddressFree names one reservation exactly,
 *    with nothing mapped in it; cuMemUnmap names whole mappings;
 *  - cuMemSetAccess names device 0 and a mapped range; cuMemSetAccess and
 *    cuMemUnmap wait for all device work first, as the driver may;
 *  - device addresses are not host memory: a host load or store there faults
 *    (a test that must read through a mapping peeks: fake_vmm_peek); the
 *    doubles reach the bytes through a private view, with the access the
 *    device was given (a store to a read-only mapping is an illegal address);
 *  - a handle lives while created or mapped; an exported descriptor keeps its
 *    memory counted as used until every process has closed and unmapped it;
 *  - export needs a handle created with the POSIX-descriptor type;
 *  - after a sticky error every call returns that error;
 *  - VR_FAKE_CUDA_NO_VMM=1 makes the device report no VMM support.
 */

#define GRAIN ((size_t)2 << 20)

struct handle {
	int fd;
	size_t size;
	unsigned refs; /* 1 while created (until cuMemRelease), 1 per mapping */
	bool posix;    /* created exportable as a POSIX descriptor */
	bool exported; /* a descriptor went out: the memory lives while one is held */
	bool imported; /* another handle's memory: not counted again */
	char name[64]; /* the memfd's name, to find who still holds it */
};

/* a range from cuMemAddressReserve, and the double's own view of it (SHADOW) */
struct reservation {
	uintptr_t p, shadow;
	size_t size;
	struct reservation *next;
};

struct mapping {
	uintptr_t p;
	size_t size;
	int prot; /* what cuMemSetAccess gave the device */
	struct handle *h;
	struct reservation *r;
	struct mapping *next;
};

/* exported memory whose handle is gone, counted until no process holds it */
struct zombie {
	size_t size;
	char name[64];
	struct zombie *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapping *maps;		 /* under LOCK */
static struct reservation *reservations; /* under LOCK */
static struct zombie *zombies;		 /* under LOCK */
static size_t in_use;			 /* under LOCK: bytes of live handles and zombies */
static atomic_bool initialized, peek_on;
static atomic_uint serial;
static atomic_uint set_access_calls;
static atomic_int primary_refs;
static atomic_bool runtime_bound;

#define PRIMARY ((CUcontext)(uintptr_t)0x7c0de)
static _Thread_local CUcontext ctx_stack[8];
static _Thread_local int ctx_depth;

/* The gate of every call but cuInit: CUDA_ERROR_NOT_INITIALIZED before it. */
#define NEED_INIT()                                                                                \
	do {                                                                                       \
		if (!atomic_load(&initialized))                                                    \
			return CUDA_ERROR_NOT_INITIALIZED;                                         \
	} while (0)

static size_t rec_grain(void)
{
	const char *v = getenv("VR_FAKE_CUDA_REC_GRAIN");
	size_t g = v ? (size_t)strtoull(v, NULL, 0) : GRAIN;

	return g && g % GRAIN == 0 ? g : GRAIN;
}

static bool pow2(size_t v)
{
	return (v & (v - 1)) == 0;
}

static bool ctx_live(CUcontext c)
{
	return c == PRIMARY && (atomic_load(&primary_refs) > 0 || atomic_load(&runtime_bound));
}

/* The calls that run device work need a live current context on the calling thread. */
static CUresult need_ctx(void)
{
	if (!atomic_load(&initialized))
		return CUDA_ERROR_NOT_INITIALIZED;
	return ctx_depth > 0 && ctx_live(ctx_stack[ctx_depth - 1]) ? CUDA_SUCCESS
								   : CUDA_ERROR_INVALID_CONTEXT;
}

unsigned vr_fake_cuda_set_access_calls(void);
unsigned vr_fake_cuda_set_access_calls(void)
{
	return atomic_load(&set_access_calls);
}

static void put(struct handle *h) /* LOCK held */
{
	if (--h->refs)
		return;
	if (h->exported) {
		struct zombie *z = calloc(1, sizeof(*z));

		if (z) { /* else counted free early: only a test double's accounting */
			z->size = h->size;
			memcpy(z->name, h->name, sizeof(z->name));
			z->next = zombies;
			zombies = z;
		} else {
			in_use -= h->size;
		}
	} else if (!h->imported) {
		in_use -= h->size;
	}
	close(h->fd);
	free(h);
}

/* Whether process PID ("self", or digits) holds the memfd WANT names ("/memfd:NAME "): a
 * descriptor or a mapping of it. */
static bool held_by(const char *pid, const char *want)
{
	char path[600], buf[600];
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	DIR *fds = opendir(path);
	struct dirent *e;

	while (fds && !found && (e = readdir(fds)) != NULL) {
		char link[600];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/%s/fd/%s", pid, e->d_name);
		n = readlink(link, buf, sizeof(buf) - 2);
		if (n > 0) {
			buf[n] = ' ';
			buf[n + 1] = '\0';
			found = strncmp(buf, want, strlen(want)) == 0;
		}
	}
	if (fds)
		closedir(fds);
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	FILE *m = found ? NULL : fopen(path, "r");

	while (m && !found && fgets(buf, sizeof(buf), m)) {
		buf[strcspn(buf, "\n")] = ' ';
		found = strstr(buf, want) != NULL;
	}
	if (m)
		fclose(m);
	return found;
}

/* Whether a process of this machine holds memfd NAME: this one first (the tests' usual
 * holder, found without walking every process), then the others. */
static bool held_anywhere(const char *name)
{
	char want[96];
	DIR *proc;
	struct dirent *d;
	bool found;

	snprintf(want, sizeof(want), "/memfd:%s ", name);
	found = held_by("self", want);
	proc = found ? NULL : opendir("/proc");
	while (proc && !found && (d = readdir(proc)) != NULL) {
		if (d->d_name[0] >= '0' && d->d_name[0] <= '9')
			found = held_by(d->d_name, want);
	}
	if (proc)
		closedir(proc);
	return found;
}

/* Stops counting exported memory no process holds any more. LOCK held. */
static void reap(void)
{
	for (struct zombie **at = &zombies; *at;) {
		struct zombie *z = *at;

		if (held_anywhere(z->name)) {
			at = &z->next;
			continue;
		}
		*at = z->next;
		in_use -= z->size;
		free(z);
	}
}

/* Whether [P, P+N) lies inside one reserved range; that range. LOCK held. */
static struct reservation *reserved(uintptr_t p, size_t n)
{
	for (struct reservation *r = reservations; r; r = r->next)
		if (p >= r->p && p - r->p <= r->size && n <= r->size - (p - r->p))
			return r;
	return NULL;
}

/* The mapping that holds address A. LOCK held. */
static struct mapping *mapping_at(uintptr_t a)
{
	for (struct mapping *m = maps; m; m = m->next)
		if (a >= m->p && a - m->p < m->size)
			return m;
	return NULL;
}

/* Whether anything is mapped in [P, P+N). LOCK held. */
static bool overlaps(uintptr_t p, size_t n)
{
	for (struct mapping *m = maps; m; m = m->next)
		if (m->p < p + n && p < m->p + m->size)
			return true;
	return false;
}

size_t fake_vmm_allocated(void)
{
	pthread_mutex_lock(&lock);
	if (zombies)
		reap();
	size_t n = in_use;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Walks [P, P+N) through adjacent mappings; with NEED_PROT, each must grant it. LOCK held. */
static bool covered(uintptr_t a, size_t n, int need_prot)
{
	uintptr_t end = a + (n ? n : 1);

	while (a < end) {
		struct mapping *m = mapping_at(a);

		if (!m || (m->prot & need_prot) != need_prot)
			return false;
		a = m->p + m->size;
	}
	return true;
}

bool fake_vmm_is_mapped(const void *p, size_t n)
{
	pthread_mutex_lock(&lock);
	bool ok = covered((uintptr_t)p, n, 0);
	pthread_mutex_unlock(&lock);
	return ok;
}

void *fake_vmm_host(const void *p, size_t n, bool write)
{
	uintptr_t a = (uintptr_t)p;
	void *view = NULL;

	pthread_mutex_lock(&lock);
	struct reservation *r = reserved(a, n ? n : 1);

	if (r && covered(a, n, write ? PROT_READ | PROT_WRITE : PROT_READ))
		view = (void *)(r->shadow + (a - r->p));
	pthread_mutex_unlock(&lock);
	return view;
}

/* What the host sees at a mapping's device address: nothing, unless a test peeks. LOCK held. */
static void show(const struct mapping *m)
{
	mprotect((void *)m->p, m->size, atomic_load(&peek_on) ? m->prot : PROT_NONE);
}

void fake_vmm_peek(bool on)
{
	atomic_store(&peek_on, on);
	pthread_mutex_lock(&lock);
	for (struct mapping *m = maps; m; m = m->next)
		show(m);
	pthread_mutex_unlock(&lock);
}

void fake_driver_bind(void)
{
	if (!atomic_load(&initialized)) {
		const char *v = getenv("VR_FAKE_CUDA_PEEK");

		atomic_store(&peek_on, v && *v == '1');
		atomic_store(&initialized, true);
	}
	atomic_store(&runtime_bound, true);
	if (ctx_depth == 0)
		ctx_stack[ctx_depth++] = PRIMARY;
}

CUresult cuInit(unsigned int flags)
{
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (!atomic_load(&initialized)) {
		const char *v = getenv("VR_FAKE_CUDA_PEEK");

		atomic_store(&peek_on, v && *v == '1');
		atomic_store(&initialized, true);
	}
	return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v)
{
	*v = 13000;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	NEED_INIT();
	*count = 1;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	NEED_INIT();
	if (ordinal != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*dev = 0;
	return CUDA_SUCCESS;
}

/* The same UUID the runtime double reports (fake_cudart.c's cudaGetDeviceProperties). */
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	NEED_INIT();
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	for (int i = 0; i < 16; i++)
		uuid->bytes[i] = (char)(0x10 + i);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
	NEED_INIT();
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	atomic_fetch_add(&primary_refs, 1);
	*ctx = PRIMARY;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
	NEED_INIT();
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	if (atomic_fetch_sub(&primary_refs, 1) <= 0) {
		atomic_fetch_add(&primary_refs, 1);
		return CUDA_ERROR_INVALID_CONTEXT;
	}
	return CUDA_SUCCESS;
}

/* Replaces the top of this thread's stack; NULL pops it. */
CUresult cuCtxSetCurrent(CUcontext ctx)
{
	NEED_INIT();
	if (!ctx) {
		if (ctx_depth)
			ctx_depth--;
		return CUDA_SUCCESS;
	}
	if (!ctx_live(ctx))
		return CUDA_ERROR_INVALID_CONTEXT;
	if (ctx_depth == 0)
		ctx_depth = 1;
	ctx_stack[ctx_depth - 1] = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *ctx)
{
	NEED_INIT();
	*ctx = ctx_depth ? ctx_stack[ctx_depth - 1] : NULL;
	return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent(CUcontext ctx)
{
	NEED_INIT();
	if (!ctx || !ctx_live(ctx))
		return CUDA_ERROR_INVALID_CONTEXT;
	if (ctx_depth == (int)(sizeof(ctx_stack) / sizeof(ctx_stack[0])))
		return CUDA_ERROR_OUT_OF_MEMORY;
	ctx_stack[ctx_depth++] = ctx;
	return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent(CUcontext *ctx)
{
	NEED_INIT();
	if (ctx_depth == 0)
		return CUDA_ERROR_INVALID_CONTEXT;
	ctx_depth--;
	if (ctx)
		*ctx = ctx_stack[ctx_depth];
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice dev)
{
	const char *no = getenv("VR_FAKE_CUDA_NO_VMM");

	NEED_INIT();
	if (dev != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	if (attr == CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED ||
	    attr == CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED) {
		*v = !(no && *no == '1');
		return CUDA_SUCCESS;
	}
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult e, const char **name)
{
	switch (e) {
	case CUDA_SUCCESS:
		*name = "CUDA_SUCCESS";
		break;
	case CUDA_ERROR_OUT_OF_MEMORY:
		*name = "CUDA_ERROR_OUT_OF_MEMORY";
		break;
	case CUDA_ERROR_INVALID_VALUE:
		*name = "CUDA_ERROR_INVALID_VALUE";
		break;
	case CUDA_ERROR_NOT_SUPPORTED:
		*name = "CUDA_ERROR_NOT_SUPPORTED";
		break;
	case CUDA_ERROR_INVALID_HANDLE:
		*name = "CUDA_ERROR_INVALID_HANDLE";
		break;
	case CUDA_ERROR_INVALID_CONTEXT:
		*name = "CUDA_ERROR_INVALID_CONTEXT";
		break;
	case CUDA_ERROR_NOT_INITIALIZED:
		*name = "CUDA_ERROR_NOT_INITIALIZED";
		break;
	case CUDA_ERROR_ILLEGAL_ADDRESS:
		*name = "CUDA_ERROR_ILLEGAL_ADDRESS";
		break;
	case CUDA_ERROR_MISALIGNED_ADDRESS:
		*name = "CUDA_ERROR_MISALIGNED_ADDRESS";
		break;
	default:
		*name = "CUDA_ERROR_UNKNOWN (fake)";
	}
	return CUDA_SUCCESS;
}

/* Device 0's pinned memory, nothing else; no Windows metadata on Linux. */
static bool prop_ok(const CUmemAllocationProp *prop)
{
	return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
	       prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE && prop->location.id == 0 &&
	       !prop->win32HandleMetaData;
}

CUresult cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *prop,
				       CUmemAllocationGranularity_flags option)
{
	NEED_INIT();
	if (!prop_ok(prop))
		return CUDA_ERROR_INVALID_VALUE;
	if (option == CU_MEM_ALLOC_GRANULARITY_MINIMUM)
		*g = GRAIN;
	else if (option == CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
		*g = rec_grain();
	else
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

/* Counts SIZE more bytes of VMM memory if the device has them. */
static bool take_mem(size_t size)
{
	size_t others = fake_runtime_allocated(); /* outside LOCK: the runtime has its own */

	pthread_mutex_lock(&lock);
	bool room = size <= fake_total_mem() - others - in_use;

	if (!room && zombies) {
		reap();
		room = size <= fake_total_mem() - others - in_use;
	}
	if (room)
		in_use += size;
	pthread_mutex_unlock(&lock);
	return room;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *out, size_t size,
		     const CUmemAllocationProp *prop, unsigned long long flags)
{
	CUresult r = fake_driver_enter("cuMemCreate", CUDA_ERROR_OUT_OF_MEMORY);
	struct handle *h;
	uint8_t *p;

	NEED_INIT();
	if (r)
		return r;
	if (!size || size % GRAIN || flags || !prop_ok(prop))
		return CUDA_ERROR_INVALID_VALUE;
	if (!take_mem(size))
		return CUDA_ERROR_OUT_OF_MEMORY;
	h = calloc(1, sizeof(*h));
	if (h) {
		snprintf(h->name, sizeof(h->name), "fake-cuda-vmm-%d-%u", (int)getpid(),
			 atomic_fetch_add(&serial, 1));
		h->fd = memfd_create(h->name, MFD_CLOEXEC);
	}
	if (!h || h->fd < 0 || ftruncate(h->fd, (off_t)size) != 0) {
		if (h && h->fd >= 0)
			close(h->fd);
		free(h);
		pthread_mutex_lock(&lock);
		in_use -= size;
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	/* new VMM memory holds whatever was there: junk, so nothing relies on zeros */
	p = mmap(NULL, size, PROT_WRITE, MAP_SHARED, h->fd, 0);
	if (p != MAP_FAILED) {
		memset(p, 0x5c, size);
		munmap(p, size);
	}
	h->size = size;
	h->refs = 1;
	h->posix = (prop->requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) != 0;
	*out = (CUmemGenericAllocationHandle)(uintptr_t)h;
	return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;
	CUresult r = fake_driver_enter("cuMemRelease", CUDA_ERROR_INVALID_VALUE);

	NEED_INIT();
	if (r)
		return r;
	if (!h)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	put(h);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

/* PROT_NONE address space of SIZE bytes aligned to ALIGN; 0 on failure. */
static uintptr_t reserve_space(size_t size, size_t align)
{
	void *p =
	    mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return 0;
	uintptr_t a = ((uintptr_t)p + align - 1) & ~(align - 1);

	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + size), (uintptr_t)p + size + align - (a + size));
	return a;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
			     unsigned long long flags)
{
	CUresult r = fake_driver_enter("cuMemAddressReserve", CUDA_ERROR_OUT_OF_MEMORY);
	struct reservation *res;

	NEED_INIT();
	if (r)
		return r;
	(void)addr; /* a hint only */
	if (!size || size % GRAIN || flags || !pow2(align))
		return CUDA_ERROR_INVALID_VALUE;
	if (align < GRAIN)
		align = GRAIN;
	res = calloc(1, sizeof(*res));
	if (!res)
		return CUDA_ERROR_OUT_OF_MEMORY;
	res->p = reserve_space(size, align);
	res->shadow = res->p ? reserve_space(size, GRAIN) : 0;
	if (!res->shadow) {
		if (res->p)
			munmap((void *)res->p, size);
		free(res);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	res->size = size;
	pthread_mutex_lock(&lock);
	res->next = reservations;
	reservations = res;
	pthread_mutex_unlock(&lock);
	*ptr = (CUdeviceptr)res->p;
	return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	CUresult r = fake_driver_enter("cuMemAddressFree", CUDA_ERROR_INVALID_VALUE);
	struct reservation **at, *res = NULL;

	NEED_INIT();
	if (r)
		return r;
	/* the driver refuses to free a range that still has mappings, or that is not one
	 * reservation exactly */
	pthread_mutex_lock(&lock);
	if (overlaps(ptr, size)) {
		pthread_mutex_unlock(&lock);
		return CUDA_ERROR_INVALID_VALUE;
	}
	for (at = &reservations; *at; at = &(*at)->next)
		if ((*at)->p == ptr && (*at)->size == size) {
			res = *at;
			*at = res->next;
			break;
		}
	pthread_mutex_unlock(&lock);
	if (!res)
		return CUDA_ERROR_INVALID_VALUE;
	munmap((void *)res->p, size);
	munmap((void *)res->shadow, size);
	free(res);
	return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		  unsigned long long flags)
{
	CUresult r = fake_driver_enter("cuMemMap", CUDA_ERROR_INVALID_VALUE);
	struct handle *h = (struct handle *)(uintptr_t)handle;
	struct mapping *m;

	NEED_INIT();
	if (r)
		return r;
	/* a whole handle at offset 0 (the driver allows nothing else), unflagged, aligned */
	if (!h || ptr % GRAIN || size != h->size || offset != 0 || flags)
		return CUDA_ERROR_INVALID_VALUE;
	m = calloc(1, sizeof(*m));
	if (!m)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lock);
	/* only inside one reservation, over nothing mapped yet anywhere in the range */
	m->r = reserved(ptr, size);
	if (!m->r || overlaps(ptr, size)) {
		pthread_mutex_unlock(&lock);
		free(m);
		return CUDA_ERROR_INVALID_VALUE;
	}
	/* mapped, but inaccessible until cuMemSetAccess; the double's view reads and writes */
	uintptr_t view = m->r->shadow + (ptr - m->r->p);

	if (mmap((void *)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, h->fd, 0) == MAP_FAILED ||
	    mmap((void *)view, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->fd, 0) ==
		MAP_FAILED) {
		pthread_mutex_unlock(&lock);
		free(m);
		return CUDA_ERROR_INVALID_VALUE;
	}
	m->p = ptr;
	m->size = size;
	m->prot = PROT_NONE;
	m->h = h;
	h->refs++;
	m->next = maps;
	maps = m;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	CUresult r = fake_driver_enter("cuMemUnmap", CUDA_ERROR_INVALID_VALUE);
	struct mapping **at, *m = NULL;

	NEED_INIT();
	if (r)
		return r;
	fake_device_wait(); /* the driver may wait for work in flight */
	pthread_mutex_lock(&lock);
	for (at = &maps; *at; at = &(*at)->next)
		if ((*at)->p == ptr && (*at)->size == size) {
			m = *at;
			*at = m->next;
			break;
		}
	if (m) {
		/* back to reserved address space, in both views */
		uintptr_t view = m->r->shadow + (ptr - m->r->p);
		int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED;

		mmap((void *)ptr, size, PROT_NONE, fl, -1, 0);
		mmap((void *)view, size, PROT_NONE, fl, -1, 0);
		put(m->h);
	}
	pthread_mutex_unlock(&lock);
	if (!m)
		return CUDA_ERROR_INVALID_VALUE; /* the driver unmaps whole mappings only */
	free(m);
	return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	CUresult r = fake_driver_enter("cuMemSetAccess", CUDA_ERROR_INVALID_VALUE);
	int prot;

	NEED_INIT();
	if (r)
		return r;
	atomic_fetch_add(&set_access_calls, 1);
	/* one device: device 0 */
	if (count != 1 || desc->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
	    desc->location.id != 0 || !size)
		return CUDA_ERROR_INVALID_VALUE;
	prot = desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? PROT_READ | PROT_WRITE
	       : desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READ	 ? PROT_READ
	       : desc->flags == CU_MEM_ACCESS_FLAGS_PROT_NONE	 ? PROT_NONE
								 : -1;
	if (prot < 0)
		return CUDA_ERROR_INVALID_VALUE;
	fake_device_wait(); /* the driver may wait for work in flight */
	pthread_mutex_lock(&lock);
	/* every byte of the range must be mapped, by whole mappings */
	bool ok = covered(ptr, size, 0) && mapping_at(ptr)->p == ptr &&
		  mapping_at(ptr + size - 1)->p + mapping_at(ptr + size - 1)->size == ptr + size;

	for (uintptr_t a = ptr; ok && a < ptr + size;) {
		struct mapping *m = mapping_at(a);

		m->prot = prot;
		show(m);
		a = m->p + m->size;
	}
	pthread_mutex_unlock(&lock);
	return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemExportToShareableHandle(void *out, CUmemGenericAllocationHandle handle,
				      CUmemAllocationHandleType type, unsigned long long flags)
{
	CUresult r = fake_driver_enter("cuMemExportToShareableHandle", CUDA_ERROR_OUT_OF_MEMORY);
	struct handle *h = (struct handle *)(uintptr_t)handle;
	int fd;

	NEED_INIT();
	if (r)
		return r;
	if (!h || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || flags)
		return CUDA_ERROR_INVALID_VALUE;
	/* only what was created to be shared that way */
	if (!h->posix)
		return CUDA_ERROR_INVALID_VALUE;
	fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	pthread_mutex_lock(&lock);
	h->exported = true;
	pthread_mutex_unlock(&lock);
	*(int *)out = fd;
	return CUDA_SUCCESS;
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *out, void *os_handle,
					CUmemAllocationHandleType type)
{
	int fd = (int)(intptr_t)os_handle;
	struct handle *h;
	off_t size;

	NEED_INIT();
	if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
		return CUDA_ERROR_INVALID_VALUE;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || (size_t)size % GRAIN)
		return CUDA_ERROR_INVALID_VALUE;
	h = calloc(1, sizeof(*h));
	if (!h)
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* the driver keeps its own reference: the caller may close its descriptor */
	h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (h->fd < 0) {
		free(h);
		return CUDA_ERROR_INVALID_VALUE;
	}
	h->size = (size_t)size;
	h->refs = 1;
	h->posix = true;
	h->imported = true; /* the exporter's memory, counted there */
	*out = (CUmemGenericAllocationHandle)(uintptr_t)h;
	return CUDA_SUCCESS;
}

/* Device to host, on this thread's current context, from memory the device may read. */
CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n)
{
	CUresult r = fake_driver_enter("cuMemcpyDtoH", CUDA_ERROR_INVALID_VALUE);
	const void *view;

	if (r)
		return r;
	r = need_ctx();
	if (r)
		return r;
	view = fake_vmm_host((const void *)(uintptr_t)src, n, false);
	if (!view)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(dst, view, n);
	return CUDA_SUCCESS;
}

/* The runtime double's totals and gates; a library of this file alone (the client's fake
 * driver) has no runtime: unlimited, nothing allocated, no injections, no streams. */
__attribute__((weak)) size_t fake_total_mem(void)
{
	return SIZE_MAX / 2;
}

__attribute__((weak)) size_t fake_runtime_allocated(void)
{
	return 0;
}

__attribute__((weak)) CUresult fake_driver_enter(const char *call, CUresult dflt)
{
	(void)call;
	(void)dflt;
	return CUDA_SUCCESS;
}

__attribute__((weak)) void fake_device_wait(void)
{
}
