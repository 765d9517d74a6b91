/* fake_cudart.c - a CUDA runtime test double in host memory, to run the CUDA backend's host code
 * here. */
#include "digest.h"

#include <cuda_runtime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * Just the calls cuda/cuda_backend.c makes, executed synchronously on host
 * memory. Environment: VR_FAKE_CUDA_MEM (bytes, default 2 GiB),
 * VR_FAKE_CUDA_INTEGRATED=1, VR_FAKE_CUDA_CC=major (default 9). The fs-verity
 * launcher is replaced by the core's CPU digest over the same extents: the
 * kernel itself is covered by test_cuda_emulated.
 */

#define MAGIC 0x7646616b65637564ULL

struct header {
	uint64_t magic, size;
};

static size_t allocated; /* under alloc_lock: the backend allocates from many threads */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;

/* The conformance suite's seam for holding a digest in flight (see cuda/mock.c). */
void vr_test_digest_hook(void) __attribute__((weak));

static size_t env_size(const char *name, size_t dflt)
{
	const char *v = getenv(name);

	return v ? (size_t)strtoull(v, NULL, 0) : dflt;
}

static size_t total_mem(void)
{
	return env_size("VR_FAKE_CUDA_MEM", (size_t)2 << 30);
}

cudaError_t cudaGetDeviceCount(int *count)
{
	*count = 1;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int device)
{
	return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
	if (device != 0)
		return cudaErrorInvalidDevice;
	memset(prop, 0, sizeof(*prop));
	strcpy(prop->name, "Fake CUDA device (host memory test double)");
	for (int i = 0; i < 16; i++)
		prop->uuid.bytes[i] = (char)(0x10 + i);
	prop->major = (int)env_size("VR_FAKE_CUDA_CC", 9);
	prop->minor = 0;
	prop->totalGlobalMem = total_mem();
	prop->integrated = (int)env_size("VR_FAKE_CUDA_INTEGRATED", 0);
	return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
	*total_b = total_mem();
	pthread_mutex_lock(&alloc_lock);
	*free_b = *total_b - allocated;
	pthread_mutex_unlock(&alloc_lock);
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
	struct header *h;

	pthread_mutex_lock(&alloc_lock);
	if (size > total_mem() - allocated) {
		pthread_mutex_unlock(&alloc_lock);
		return cudaErrorMemoryAllocation;
	}
	allocated += size;
	pthread_mutex_unlock(&alloc_lock);
	h = malloc(sizeof(*h) + size);
	if (!h) {
		pthread_mutex_lock(&alloc_lock);
		allocated -= size;
		pthread_mutex_unlock(&alloc_lock);
		return cudaErrorMemoryAllocation;
	}
	memset(h + 1, 0x5c, size); /* device memory starts with junk */
	h->magic = MAGIC;
	h->size = size;
	*p = h + 1;
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	struct header *h;

	if (!p)
		return cudaSuccess;
	h = (struct header *)p - 1;
	if (h->magic != MAGIC)
		return cudaErrorInvalidValue;
	pthread_mutex_lock(&alloc_lock);
	allocated -= h->size;
	pthread_mutex_unlock(&alloc_lock);
	h->magic = 0;
	free(h);
	return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p)
{
	const struct header *h = (const struct header *)p - 1;

	memset(a, 0, sizeof(*a));
	a->type = h->magic == MAGIC ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
	return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int flags)
{
	(void)flags;
	*p = malloc(size);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *p)
{
	free(p);
	return cudaSuccess;
}

/* Work runs synchronously, so streams and events are mere tokens. */
static char token;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
	(void)flags;
	*s = (cudaStream_t)&token;
	return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
	(void)flags;
	*e = (cudaEvent_t)&token;
	return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
	(void)e;
	return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	(void)e;
	(void)s;
	return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
	(void)e;
	return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags)
{
	(void)s;
	(void)e;
	(void)flags;
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
			    cudaStream_t s)
{
	(void)kind;
	(void)s;
	memcpy(dst, src, n);
	return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s)
{
	(void)s;
	memset(p, v, n);
	return cudaSuccess;
}

const char *cudaGetErrorName(cudaError_t e)
{
	return e == cudaSuccess ? "cudaSuccess" : "cudaErrorFake";
}

const char *cudaGetErrorString(cudaError_t e)
{
	return e == cudaSuccess ? "no error" : "fake CUDA error";
}

int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		     uint64_t size, void *stream, uint8_t out[32]);

int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		     uint64_t size, void *stream, uint8_t out[32])
{
	struct vr_span *spans = calloc(next ? next : 1, sizeof(*spans));
	int ret;

	(void)stream;
	if (vr_test_digest_hook)
		vr_test_digest_hook();
	if (!spans)
		return cudaErrorMemoryAllocation;
	for (uint32_t i = 0; i < next; i++) {
		spans[i].data = extents[i];
		spans[i].len =
		    (size_t)(size - i * extent_size < extent_size ? size - i * extent_size
								  : extent_size);
	}
	if (!next)
		spans[0].data = "";
	ret = vr_fsv_digest_spans(spans, next ? next : 1, 1, out);
	free(spans);
	return ret ? cudaErrorUnknown : cudaSuccess;
}
