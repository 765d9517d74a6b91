/* fake_cuda_driver.c - the CUDA driver's VMM calls as a test double: memfd chunks in host memory.
 */
#include "fake_cuda_driver.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * What the CUDA backend and the client library call of the driver's virtual
 * memory management, on host memory, as strict as the real driver where a
 * caller could go wrong:
 *  - a handle (cuMemCreate) is a memfd of a multiple of the granularity
 *    (2 MiB), filled with junk (real VMM memory starts undefined); sizes that
 *    are not multiples, and mappings that are not granularity-aligned, fail
 *    with CUDA_ERROR_INVALID_VALUE;
 *  - a reservation is PROT_NONE address space; cuMemMap maps the memfd there
 *    still inaccessible, and only cuMemSetAccess opens it (read-only or
 *    read-write), so touching memory before setting access faults;
 *  - a handle lives while created or mapped: cuMemRelease of a mapped handle
 *    keeps its memory until the last unmap, as the driver does;
 *  - cuMemExportToShareableHandle gives a descriptor of the same memory, and
 *    cuMemImportFromShareableHandle in another process maps those bytes;
 *  - VR_FAKE_CUDA_NO_VMM=1 makes the device report no VMM support.
 * The runtime double (fake_cudart.c) counts mapped ranges as device memory
 * for its checks (fake_vmm_is_mapped) and VMM memory in cudaMemGetInfo.
 */

#define GRAIN ((size_t)2 << 20)

struct handle {
	int fd;
	size_t size;
	unsigned refs; /* 1 while created (until cuMemRelease), 1 per mapping */
};

struct mapping {
	uintptr_t p;
	size_t size;
	struct handle *h;
	struct mapping *next;
};

/* a range from cuMemAddressReserve: cuMemMap must lie inside one, and cuMemAddressFree
 * name one exactly, as the driver requires */
struct reservation {
	uintptr_t p;
	size_t size;
	struct reservation *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mapping *maps;		 /* under LOCK */
static struct reservation *reservations; /* under LOCK */
static size_t in_use;			 /* under LOCK: bytes of live handles */

static void put(struct handle *h) /* LOCK held */
{
	if (--h->refs == 0) {
		in_use -= h->size;
		close(h->fd);
		free(h);
	}
}

/* Whether [P, P+N) lies inside one reserved range. LOCK held. */
static bool reserved(uintptr_t p, size_t n)
{
	for (struct reservation *r = reservations; r; r = r->next)
		if (p >= r->p && p - r->p <= r->size && n <= r->size - (p - r->p))
			return true;
	return false;
}

size_t fake_vmm_allocated(void)
{
	pthread_mutex_lock(&lock);
	size_t n = in_use;
	pthread_mutex_unlock(&lock);
	return n;
}

bool fake_vmm_is_mapped(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, end = a + (n ? n : 1);
	bool progress = true;

	pthread_mutex_lock(&lock);
	/* walk the range through adjacent mappings (chunks mapped end to end) */
	while (a < end && progress) {
		progress = false;
		for (struct mapping *m = maps; m; m = m->next)
			if (a >= m->p && a - m->p < m->size) {
				a = m->p + m->size;
				progress = true;
				break;
			}
	}
	pthread_mutex_unlock(&lock);
	return a >= end;
}

CUresult cuInit(unsigned int flags)
{
	(void)flags;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count)
{
	*count = 1;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	if (ordinal != 0)
		return CUDA_ERROR_INVALID_DEVICE;
	*dev = 0;
	return CUDA_SUCCESS;
}

/* The same UUID the runtime double reports (fake_cudart.c's cudaGetDeviceProperties). */
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	(void)dev;
	for (int i = 0; i < 16; i++)
		uuid->bytes[i] = (char)(0x10 + i);
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
	(void)dev;
	*ctx = (CUcontext)(uintptr_t)0x1;
	return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
	(void)dev;
	return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	(void)ctx;
	return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice dev)
{
	const char *no = getenv("VR_FAKE_CUDA_NO_VMM");

	(void)dev;
	if (attr == CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED ||
	    attr == CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED) {
		*v = !(no && *no == '1');
		return CUDA_SUCCESS;
	}
	return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult e, const char **name)
{
	*name = e == CUDA_SUCCESS		 ? "CUDA_SUCCESS"
		: e == CUDA_ERROR_OUT_OF_MEMORY	 ? "CUDA_ERROR_OUT_OF_MEMORY"
		: e == CUDA_ERROR_INVALID_VALUE	 ? "CUDA_ERROR_INVALID_VALUE"
		: e == CUDA_ERROR_NOT_SUPPORTED	 ? "CUDA_ERROR_NOT_SUPPORTED"
		: e == CUDA_ERROR_INVALID_HANDLE ? "CUDA_ERROR_INVALID_HANDLE"
						 : "CUDA_ERROR_UNKNOWN (fake)";
	return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationGranularity(size_t *g, const CUmemAllocationProp *prop,
				       CUmemAllocationGranularity_flags option)
{
	(void)prop;
	(void)option;
	*g = GRAIN;
	return CUDA_SUCCESS;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle *out, size_t size,
		     const CUmemAllocationProp *prop, unsigned long long flags)
{
	struct handle *h;
	uint8_t *p;

	if (fake_driver_enter("cuMemCreate"))
		return CUDA_ERROR_OUT_OF_MEMORY;
	(void)flags;
	if (!size || size % GRAIN || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
	    prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
		return CUDA_ERROR_INVALID_VALUE;
	size_t others = fake_runtime_allocated(); /* outside LOCK: the runtime has its own */

	pthread_mutex_lock(&lock);
	bool room = size <= fake_total_mem() - others - in_use;

	if (room)
		in_use += size;
	pthread_mutex_unlock(&lock);
	if (!room)
		return CUDA_ERROR_OUT_OF_MEMORY;
	h = calloc(1, sizeof(*h));
	if (h)
		h->fd = memfd_create("fake-cuda-vmm", MFD_CLOEXEC);
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
	*out = (CUmemGenericAllocationHandle)(uintptr_t)h;
	return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;

	if (!h)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&lock);
	put(h);
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
			     unsigned long long flags)
{
	void *p;

	if (fake_driver_enter("cuMemAddressReserve"))
		return CUDA_ERROR_OUT_OF_MEMORY;
	(void)addr; /* a hint only */
	(void)flags;
	if (!size || size % GRAIN || (align && align % GRAIN))
		return CUDA_ERROR_INVALID_VALUE;
	/* over-reserve so the range can start on a grain, then give back the ends */
	p = mmap(NULL, size + GRAIN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return CUDA_ERROR_OUT_OF_MEMORY;
	uintptr_t a = ((uintptr_t)p + GRAIN - 1) & ~(GRAIN - 1);

	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + size), (uintptr_t)p + size + GRAIN - (a + size));
	struct reservation *r = calloc(1, sizeof(*r));

	if (!r) {
		munmap((void *)a, size);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	r->p = a;
	r->size = size;
	pthread_mutex_lock(&lock);
	r->next = reservations;
	reservations = r;
	pthread_mutex_unlock(&lock);
	*ptr = (CUdeviceptr)a;
	return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
	struct reservation **at, *r = NULL;

	/* the driver refuses to free a range that still has mappings, or that is not one
	 * reservation exactly */
	pthread_mutex_lock(&lock);
	for (struct mapping *m = maps; m; m = m->next)
		if (m->p < ptr + size && ptr < m->p + m->size) {
			pthread_mutex_unlock(&lock);
			return CUDA_ERROR_INVALID_VALUE;
		}
	for (at = &reservations; *at; at = &(*at)->next)
		if ((*at)->p == ptr && (*at)->size == size) {
			r = *at;
			*at = r->next;
			break;
		}
	pthread_mutex_unlock(&lock);
	if (!r)
		return CUDA_ERROR_INVALID_VALUE;
	free(r);
	munmap((void *)(uintptr_t)ptr, size);
	return CUDA_SUCCESS;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
		  unsigned long long flags)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;
	struct mapping *m;

	if (fake_driver_enter("cuMemMap"))
		return CUDA_ERROR_INVALID_VALUE;
	(void)flags;
	if (!h || ptr % GRAIN || !size || size % GRAIN || offset % GRAIN ||
	    offset + size > h->size || fake_vmm_is_mapped((void *)(uintptr_t)ptr, 1) ||
	    fake_vmm_is_mapped((void *)(uintptr_t)(ptr + size - 1), 1))
		return CUDA_ERROR_INVALID_VALUE;
	/* only inside reserved address space: a MAP_FIXED elsewhere would replace whatever
	 * the process has there */
	pthread_mutex_lock(&lock);
	bool inside = reserved(ptr, size);

	pthread_mutex_unlock(&lock);
	if (!inside)
		return CUDA_ERROR_INVALID_VALUE;
	m = calloc(1, sizeof(*m));
	if (!m)
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* mapped, but inaccessible until cuMemSetAccess */
	if (mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, h->fd,
		 (off_t)offset) == MAP_FAILED) {
		free(m);
		return CUDA_ERROR_INVALID_VALUE;
	}
	m->p = ptr;
	m->size = size;
	m->h = h;
	pthread_mutex_lock(&lock);
	h->refs++;
	m->next = maps;
	maps = m;
	pthread_mutex_unlock(&lock);
	return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
	struct mapping **at, *m = NULL;

	pthread_mutex_lock(&lock);
	for (at = &maps; *at; at = &(*at)->next)
		if ((*at)->p == ptr && (*at)->size == size) {
			m = *at;
			*at = m->next;
			break;
		}
	if (m)
		put(m->h);
	pthread_mutex_unlock(&lock);
	if (!m)
		return CUDA_ERROR_INVALID_VALUE; /* the driver unmaps whole mappings only */
	/* back to reserved address space */
	mmap((void *)(uintptr_t)ptr, size, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	free(m);
	return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
	int prot;

	if (fake_driver_enter("cuMemSetAccess"))
		return CUDA_ERROR_INVALID_VALUE;
	if (count != 1 || desc->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
		return CUDA_ERROR_INVALID_VALUE;
	prot = desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? PROT_READ | PROT_WRITE
	       : desc->flags == CU_MEM_ACCESS_FLAGS_PROT_READ	 ? PROT_READ
								 : PROT_NONE;
	/* every byte of the range must be mapped */
	for (size_t off = 0; off < size; off += GRAIN)
		if (!fake_vmm_is_mapped((void *)(uintptr_t)(ptr + off), 1))
			return CUDA_ERROR_INVALID_VALUE;
	return mprotect((void *)(uintptr_t)ptr, size, prot) == 0 ? CUDA_SUCCESS
								 : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemExportToShareableHandle(void *out, CUmemGenericAllocationHandle handle,
				      CUmemAllocationHandleType type, unsigned long long flags)
{
	struct handle *h = (struct handle *)(uintptr_t)handle;
	int fd;

	if (fake_driver_enter("cuMemExportToShareableHandle"))
		return CUDA_ERROR_OUT_OF_MEMORY;
	(void)flags;
	if (!h || type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
		return CUDA_ERROR_INVALID_VALUE;
	fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*(int *)out = fd;
	return CUDA_SUCCESS;
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *out, void *os_handle,
					CUmemAllocationHandleType type)
{
	int fd = (int)(intptr_t)os_handle;
	struct handle *h;
	off_t size;

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
	pthread_mutex_lock(&lock);
	in_use += h->size;
	pthread_mutex_unlock(&lock);
	*out = (CUmemGenericAllocationHandle)(uintptr_t)h;
	return CUDA_SUCCESS;
}

/* Device to host: the double's device memory is host memory (mapped readable). */
CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t n)
{
	if (!fake_vmm_is_mapped((const void *)(uintptr_t)src, n))
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return CUDA_SUCCESS;
}

/* The runtime double's totals; a library of this file alone (the client's fake driver) has
 * no runtime: unlimited, nothing allocated. */
__attribute__((weak)) size_t fake_total_mem(void)
{
	return SIZE_MAX / 2;
}

__attribute__((weak)) size_t fake_runtime_allocated(void)
{
	return 0;
}

__attribute__((weak)) int fake_driver_enter(const char *call)
{
	(void)call;
	return 0;
}
