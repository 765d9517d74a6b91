/* fake_cudart.c - a CUDA runtime test double in host memory, to run the CUDA backend's host code
 * here. */
#include "blake3.h"
#include "blake3_kernel.h"
#include "digest.h"
#include "fake_cuda_driver.h"
#include "fsverity_kernel.h"

#include <cuda_runtime.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Just the calls cuda/cuda_*.c make, on host memory, and as strict as
 * the real runtime where the backend could go wrong:
 *  - stream work is deferred: an async copy or memset runs only when its
 *    stream is synchronized, an event recorded after it is waited for, or
 *    another stream waits on such an event, and it reads its source then (so
 *    a pinned staging slot reused too early uploads the wrong bytes);
 *  - work that touches device memory must lie inside a live allocation; a
 *    stray access is a sticky error (cudaErrorIllegalAddress), as on a GPU;
 *    cudaFree waits for all work first, as the real one synchronizes;
 *  - each thread has a last error (cudaGetLastError reads and clears it); a
 *    sticky error is returned by every later call, as a broken context does;
 *  - failures can be injected: vr_fake_cuda_fail(), or VR_FAKE_CUDA_FAIL=
 *    "call:nth[:sticky]" read at the first call (the nth call of that name);
 *  - vr_fake_cuda_syncs() counts drains: host waits (a stream or event
 *    synchronize) that leave a stream with queued work idle.
 * Environment: VR_FAKE_CUDA_MEM (bytes, default 2 GiB),
 * VR_FAKE_CUDA_INTEGRATED=1, VR_FAKE_CUDA_CC=major (default 9). The fs-verity
 * and BLAKE3 launchers are replaced by the core's CPU digests over the same
 * extents, after the stream's earlier work: the kernels themselves are covered
 * by test_cuda_emulated and test_cuda_blake3_emulated.
 */

void vr_fake_cuda_fail(const char *call, unsigned nth, int make_sticky);
void vr_fake_cuda_fail_code(const char *call, unsigned nth, int code);
unsigned vr_fake_cuda_syncs(void);
void vr_fake_cuda_reset(void);

/* The conformance suite's seam for holding a digest in flight (see cuda/mock_io.c). */
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

size_t fake_total_mem(void)
{
	return total_mem();
}

/* ---- errors: a last error per thread, a sticky one, injected failures ---- */

static _Thread_local cudaError_t last_error;
static atomic_int sticky; /* a cudaError_t once the "context" is broken */
static atomic_uint syncs;
static pthread_mutex_t inject_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static struct {
	char call[48];
	unsigned left; /* calls of that name to let through first */
	bool sticky, armed;
	int code; /* nonzero: the error to give (a sticky one breaks the context) */
} inject;

void vr_fake_cuda_fail(const char *call, unsigned nth, int make_sticky)
{
	pthread_mutex_lock(&inject_lock);
	snprintf(inject.call, sizeof(inject.call), "%s", call);
	inject.left = nth ? nth - 1 : 0;
	inject.sticky = make_sticky != 0;
	inject.code = 0;
	inject.armed = true;
	pthread_mutex_unlock(&inject_lock);
}

/* The errors after which a context is unusable; the runtime's and the driver's share numbers. */
static bool sticky_code(int code)
{
	switch (code) {
	case 214: /* ECC uncorrectable */
	case 220: /* NVLink uncorrectable */
	case 700: /* illegal address */
	case 702: /* launch timeout */
	case 710: /* assert */
	case 714: /* hardware stack error */
	case 715: /* illegal instruction */
	case 716: /* misaligned address */
	case 717: /* invalid address space */
	case 718: /* invalid PC */
	case 719: /* launch failed */
		return true;
	default:
		return false;
	}
}

/* The nth call of CALL fails with CODE (a runtime or driver error number). */
void vr_fake_cuda_fail_code(const char *call, unsigned nth, int code)
{
	vr_fake_cuda_fail(call, nth, sticky_code(code));
	pthread_mutex_lock(&inject_lock);
	inject.code = code;
	pthread_mutex_unlock(&inject_lock);
}

unsigned vr_fake_cuda_syncs(void)
{
	return atomic_load(&syncs);
}

void vr_fake_cuda_reset(void)
{
	atomic_store(&sticky, 0);
	pthread_mutex_lock(&inject_lock);
	inject.armed = false;
	pthread_mutex_unlock(&inject_lock);
	last_error = cudaSuccess;
}

static void arm_from_env(void)
{
	const char *v = getenv("VR_FAKE_CUDA_FAIL");
	char call[48];
	unsigned nth = 0;
	char st[16] = "";

	if (v && sscanf(v, "%47[^:]:%u:%15s", call, &nth, st) >= 2)
		vr_fake_cuda_fail(call, nth, strcmp(st, "sticky") == 0);
}

static cudaError_t fail_with(cudaError_t e, bool make_sticky)
{
	if (make_sticky) {
		int none = 0;

		atomic_compare_exchange_strong(&sticky, &none, (int)e);
	}
	last_error = e;
	return e;
}

/*
 * The gate every call passes: a broken context fails it; an armed injection
 * for CALL fails its nth call (with FAILURE, or sticky cudaErrorIllegalAddress).
 */
static cudaError_t enter(const char *call, cudaError_t failure)
{
	int st = atomic_load(&sticky), code = 0;
	bool hit = false, make_sticky = false;

	pthread_once(&env_once, arm_from_env);
	fake_driver_bind(); /* the runtime initializes the driver and binds its context */
	if (st)
		return fail_with((cudaError_t)st, false);
	pthread_mutex_lock(&inject_lock);
	if (inject.armed && strcmp(inject.call, call) == 0) {
		if (inject.left == 0) {
			hit = true;
			make_sticky = inject.sticky;
			code = inject.code;
			inject.armed = false;
		} else {
			inject.left--;
		}
	}
	pthread_mutex_unlock(&inject_lock);
	if (!hit)
		return cudaSuccess;
	if (code)
		return fail_with((cudaError_t)code, make_sticky);
	return fail_with(make_sticky ? cudaErrorIllegalAddress : failure, make_sticky);
}

/* The driver double's gate (fake_cuda_driver.h): the same injections; a broken context fails
 * driver calls with its sticky error, as the driver does. A driver error is not the runtime's
 * last error. */
CUresult fake_driver_enter(const char *call, CUresult dflt)
{
	cudaError_t was = last_error, e = enter(call, cudaErrorUnknown);

	last_error = was;
	if (e == cudaSuccess)
		return CUDA_SUCCESS;
	return e == cudaErrorUnknown ? dflt : (CUresult)e;
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;
	int st = atomic_load(&sticky);

	last_error = cudaSuccess;
	return st ? (cudaError_t)st : e;
}

cudaError_t cudaPeekAtLastError(void)
{
	int st = atomic_load(&sticky);

	return st ? (cudaError_t)st : last_error;
}

/* ---- devices and memory ---- */

cudaError_t cudaGetDeviceCount(int *count)
{
	cudaError_t e = enter("cudaGetDeviceCount", cudaErrorNoDevice);

	if (e == cudaSuccess)
		*count = 1;
	return e;
}

cudaError_t cudaSetDevice(int device)
{
	cudaError_t e = enter("cudaSetDevice", cudaErrorInvalidDevice);

	if (e == cudaSuccess && device != 0)
		e = fail_with(cudaErrorInvalidDevice, false);
	return e;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
	if (device != 0)
		return fail_with(cudaErrorInvalidDevice, false);
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

/* Live device allocations, so deferred work can check what it touches. */
struct alloc {
	uint8_t *p;
	size_t size;
	struct alloc *next;
};

static struct alloc *allocs; /* under alloc_lock */
static size_t allocated;     /* under alloc_lock: the backend allocates from many threads */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether [P, P+N) lies inside one live allocation of cudaMalloc. */
static bool is_alloc(const void *p, size_t n)
{
	bool ok = false;

	pthread_mutex_lock(&alloc_lock);
	for (struct alloc *a = allocs; a && !ok; a = a->next)
		ok = (const uint8_t *)p >= a->p && n <= a->size &&
		     (const uint8_t *)p - a->p <= (ptrdiff_t)(a->size - n);
	pthread_mutex_unlock(&alloc_lock);
	return ok;
}

/* Whether [P, P+N) is device memory: an allocation, or VMM memory mapped end to end. */
static bool is_device(const void *p, size_t n)
{
	return is_alloc(p, n) || fake_vmm_is_mapped(p, n);
}

/* Where device work reaches [P, P+N): cudaMalloc memory is the host's own; VMM memory through
 * the driver double's view, with the access the device was given (WRITE: a store). NULL: an
 * illegal address. */
static void *dev_view(const void *p, size_t n, bool write)
{
	return is_alloc(p, n) ? (void *)p : fake_vmm_host(p, n, write);
}

/* Another process takes BYTES of the device's memory (negative: gives them back). */
void vr_fake_cuda_hog(long long bytes);
void vr_fake_cuda_hog(long long bytes)
{
	pthread_mutex_lock(&alloc_lock);
	allocated += (size_t)bytes;
	pthread_mutex_unlock(&alloc_lock);
}

size_t fake_runtime_allocated(void)
{
	pthread_mutex_lock(&alloc_lock);
	size_t n = allocated;
	pthread_mutex_unlock(&alloc_lock);
	return n;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
	cudaError_t e = enter("cudaMemGetInfo", cudaErrorUnknown);

	if (e)
		return e;
	size_t vmm = fake_vmm_allocated(); /* outside ALLOC_LOCK: the driver has its own */

	*total_b = total_mem();
	pthread_mutex_lock(&alloc_lock);
	*free_b = *total_b - allocated - vmm;
	pthread_mutex_unlock(&alloc_lock);
	return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
	cudaError_t e = enter("cudaMalloc", cudaErrorMemoryAllocation);
	struct alloc *a;

	if (e)
		return e;
	a = malloc(sizeof(*a));
	size_t vmm = fake_vmm_allocated();

	pthread_mutex_lock(&alloc_lock);
	if (!a || size > total_mem() - allocated - vmm) {
		pthread_mutex_unlock(&alloc_lock);
		free(a);
		return fail_with(cudaErrorMemoryAllocation, false);
	}
	allocated += size;
	pthread_mutex_unlock(&alloc_lock);
	a->size = size;
	a->p = malloc(size ? size : 1);
	if (!a->p) {
		pthread_mutex_lock(&alloc_lock);
		allocated -= size;
		pthread_mutex_unlock(&alloc_lock);
		free(a);
		return fail_with(cudaErrorMemoryAllocation, false);
	}
	memset(a->p, 0x5c, size); /* device memory starts with junk */
	pthread_mutex_lock(&alloc_lock);
	a->next = allocs;
	allocs = a;
	pthread_mutex_unlock(&alloc_lock);
	*p = a->p;
	return cudaSuccess;
}

static void run_all_streams(void);

cudaError_t cudaFree(void *p)
{
	cudaError_t e = enter("cudaFree", cudaErrorInvalidValue);
	struct alloc **at, *a = NULL;

	if (e || !p)
		return e;
	run_all_streams(); /* cudaFree synchronizes the device */
	pthread_mutex_lock(&alloc_lock);
	for (at = &allocs; *at; at = &(*at)->next)
		if ((*at)->p == p) {
			a = *at;
			*at = a->next;
			allocated -= a->size;
			break;
		}
	pthread_mutex_unlock(&alloc_lock);
	if (!a)
		return fail_with(cudaErrorInvalidValue, false);
	memset(a->p, 0xdd, a->size); /* freed device memory is junk again */
	free(a->p);
	free(a);
	return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p)
{
	memset(a, 0, sizeof(*a));
	a->type = is_device(p, 1) ? cudaMemoryTypeDevice : cudaMemoryTypeHost;
	return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int flags)
{
	cudaError_t e = enter("cudaHostAlloc", cudaErrorMemoryAllocation);

	(void)flags;
	if (e)
		return e;
	/* page-aligned, as the driver's pinned allocations are */
	if (posix_memalign(p, 4096, size ? size : 1))
		*p = NULL;
	return *p ? cudaSuccess : fail_with(cudaErrorMemoryAllocation, false);
}

cudaError_t cudaFreeHost(void *p)
{
	free(p);
	return cudaSuccess;
}

/* ---- streams and events: deferred work ---- */

struct op {
	void *dst;
	const void *src; /* NULL: a memset of VAL */
	int val;
	size_t n;
	enum cudaMemcpyKind kind;
};

struct stream {
	pthread_mutex_t lock;
	struct op *q; /* queued work, oldest first */
	size_t head, len, cap;
	uint64_t done; /* ops run so far */
	uint64_t queued;
	struct stream *next_all;
};

struct event {
	struct stream *s; /* where it was last recorded, or NULL */
	uint64_t at;	  /* it completes once S has run this many ops */
};

static struct stream *all_streams; /* under streams_lock */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local struct stream *per_thread;
static struct stream legacy;

static struct stream *stream_new(void)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_lock(&streams_lock);
	s->next_all = all_streams;
	all_streams = s;
	pthread_mutex_unlock(&streams_lock);
	return s;
}

static void legacy_init(void)
{
	pthread_mutex_init(&legacy.lock, NULL);
	pthread_mutex_lock(&streams_lock);
	legacy.next_all = all_streams;
	all_streams = &legacy;
	pthread_mutex_unlock(&streams_lock);
}

/* The stream a handle names: cudaStreamPerThread is this thread's own; 0 the legacy one. */
static struct stream *stream_of(cudaStream_t h)
{
	static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;

	if (h == cudaStreamPerThread) {
		if (!per_thread)
			per_thread = stream_new(); /* kept for the process: threads are few */
		return per_thread;
	}
	if (!h) {
		pthread_once(&legacy_once, legacy_init);
		return &legacy;
	}
	return (struct stream *)h;
}

/* Runs one op, checking the device side is live memory; a stray access breaks the context. */
static void run_op(const struct op *o)
{
	bool dst_dev =
	    !o->src || o->kind == cudaMemcpyHostToDevice || o->kind == cudaMemcpyDeviceToDevice;
	bool src_dev =
	    o->src && (o->kind == cudaMemcpyDeviceToHost || o->kind == cudaMemcpyDeviceToDevice);
	void *dst = dst_dev ? dev_view(o->dst, o->n, true) : o->dst;
	const void *src = src_dev ? dev_view(o->src, o->n, false) : o->src;

	if (!dst || (o->src && !src)) {
		fprintf(stderr, "fake cuda: deferred work touches memory that is not (or no "
				"longer) allocated, or not writable: illegal address\n");
		fail_with(cudaErrorIllegalAddress, true);
		return;
	}
	if (o->src)
		memcpy(dst, src, o->n);
	else
		memset(dst, o->val, o->n);
}

/* A host wait for S up to UPTO: counted as a drain when it empties a stream that had work. */
static void count_drain(struct stream *s, uint64_t upto)
{
	pthread_mutex_lock(&s->lock);
	if (s->len > 0 && upto >= s->queued)
		atomic_fetch_add(&syncs, 1);
	pthread_mutex_unlock(&s->lock);
}

/* Runs S's queued work until it has run UPTO ops. */
static void run_until(struct stream *s, uint64_t upto)
{
	pthread_mutex_lock(&s->lock);
	while (s->done < upto && s->len > 0) {
		run_op(&s->q[s->head]);
		s->head = (s->head + 1) % s->cap;
		s->len--;
		s->done++;
	}
	pthread_mutex_unlock(&s->lock);
}

/* The driver double's wait (cuMemSetAccess, cuMemUnmap): all device work done first. */
void fake_device_wait(void)
{
	pthread_mutex_lock(&streams_lock);
	struct stream *s = all_streams;

	pthread_mutex_unlock(&streams_lock);
	for (; s; s = s->next_all) {
		count_drain(s, UINT64_MAX); /* a host wait like a synchronize: counted alike */
		run_until(s, UINT64_MAX);
	}
}

static void run_all_streams(void)
{
	pthread_mutex_lock(&streams_lock);
	struct stream *s = all_streams;

	pthread_mutex_unlock(&streams_lock);
	/* streams are never freed while the process runs (destroy only empties them) */
	for (; s; s = s->next_all)
		run_until(s, UINT64_MAX);
}

static cudaError_t enqueue(cudaStream_t h, const struct op *o)
{
	struct stream *s = stream_of(h);

	if (!s)
		return fail_with(cudaErrorMemoryAllocation, false);
	pthread_mutex_lock(&s->lock);
	if (s->len == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 64;
		struct op *nq = malloc(ncap * sizeof(*nq));

		if (!nq) {
			pthread_mutex_unlock(&s->lock);
			return fail_with(cudaErrorMemoryAllocation, false);
		}
		for (size_t i = 0; i < s->len; i++)
			nq[i] = s->q[(s->head + i) % s->cap];
		free(s->q);
		s->q = nq;
		s->head = 0;
		s->cap = ncap;
	}
	s->q[(s->head + s->len) % s->cap] = *o;
	s->len++;
	s->queued++;
	pthread_mutex_unlock(&s->lock);
	return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *h, unsigned int flags)
{
	cudaError_t e = enter("cudaStreamCreateWithFlags", cudaErrorMemoryAllocation);
	struct stream *s;

	(void)flags;
	if (e)
		return e;
	s = stream_new();
	if (!s)
		return fail_with(cudaErrorMemoryAllocation, false);
	*h = (cudaStream_t)s;
	return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t h)
{
	/* pending work still completes, as CUDA's does */
	run_until(stream_of(h), UINT64_MAX);
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t h)
{
	cudaError_t e = enter("cudaStreamSynchronize", cudaErrorUnknown);

	if (e)
		return e;
	count_drain(stream_of(h), UINT64_MAX);
	run_until(stream_of(h), UINT64_MAX);
	return atomic_load(&sticky) ? fail_with((cudaError_t)atomic_load(&sticky), false)
				    : cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned int flags)
{
	cudaError_t e = enter("cudaEventCreateWithFlags", cudaErrorMemoryAllocation);
	struct event *v;

	(void)flags;
	if (e)
		return e;
	v = calloc(1, sizeof(*v));
	if (!v)
		return fail_with(cudaErrorMemoryAllocation, false);
	*ev = (cudaEvent_t)v;
	return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t ev)
{
	free(ev);
	return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t h)
{
	cudaError_t e = enter("cudaEventRecord", cudaErrorUnknown);
	struct event *v = (struct event *)ev;
	struct stream *s = stream_of(h);

	if (e)
		return e;
	pthread_mutex_lock(&s->lock);
	v->s = s;
	v->at = s->queued;
	pthread_mutex_unlock(&s->lock);
	return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t ev)
{
	cudaError_t e = enter("cudaEventSynchronize", cudaErrorUnknown);
	struct event *v = (struct event *)ev;

	if (e)
		return e;
	if (v->s) {
		count_drain(v->s, v->at);
		run_until(v->s, v->at);
	}
	return atomic_load(&sticky) ? fail_with((cudaError_t)atomic_load(&sticky), false)
				    : cudaSuccess;
}

/* The waiting stream's later work must follow the event: run what precedes it now. */
cudaError_t cudaStreamWaitEvent(cudaStream_t h, cudaEvent_t ev, unsigned int flags)
{
	cudaError_t e = enter("cudaStreamWaitEvent", cudaErrorUnknown);
	struct event *v = (struct event *)ev;

	(void)flags;
	if (e)
		return e;
	run_until(stream_of(h), UINT64_MAX);
	if (v->s)
		run_until(v->s, v->at);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
			    cudaStream_t h)
{
	cudaError_t e = enter("cudaMemcpyAsync", cudaErrorInvalidValue);
	struct op o = {.dst = dst, .src = src, .n = n, .kind = kind};

	return e ? e : enqueue(h, &o);
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t h)
{
	cudaError_t e = enter("cudaMemsetAsync", cudaErrorInvalidValue);
	struct op o = {.dst = p, .val = v, .n = n};

	return e ? e : enqueue(h, &o);
}

/* The driver's entry points, as the runtime hands them out: the driver double's. */
cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **fn, unsigned int version,
					     unsigned long long flags,
					     enum cudaDriverEntryPointQueryResult *status)
{
	static const struct {
		const char *name;
		void *fn;
	} table[] = {
	    {"cuMemCreate", (void *)cuMemCreate},
	    {"cuMemRelease", (void *)cuMemRelease},
	    {"cuMemAddressReserve", (void *)cuMemAddressReserve},
	    {"cuMemAddressFree", (void *)cuMemAddressFree},
	    {"cuMemMap", (void *)cuMemMap},
	    {"cuMemUnmap", (void *)cuMemUnmap},
	    {"cuMemSetAccess", (void *)cuMemSetAccess},
	    {"cuMemGetAllocationGranularity", (void *)cuMemGetAllocationGranularity},
	    {"cuMemExportToShareableHandle", (void *)cuMemExportToShareableHandle},
	    {"cuMemImportFromShareableHandle", (void *)cuMemImportFromShareableHandle},
	    {"cuDeviceGetAttribute", (void *)cuDeviceGetAttribute},
	    {"cuGetErrorName", (void *)cuGetErrorName},
	};
	cudaError_t e = enter("cudaGetDriverEntryPointByVersion", cudaErrorUnknown);

	(void)flags;
	if (e)
		return e;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(symbol, table[i].name) == 0 && version >= 12000) {
			*fn = table[i].fn;
			if (status)
				*status = cudaDriverEntryPointSuccess;
			return cudaSuccess;
		}
	*fn = NULL;
	if (status)
		*status = cudaDriverEntryPointSymbolNotFound;
	return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
	*v = CUDART_VERSION;
	return cudaSuccess;
}

const char *cudaGetErrorName(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "cudaSuccess";
	case cudaErrorMemoryAllocation:
		return "cudaErrorMemoryAllocation";
	case cudaErrorIllegalAddress:
		return "cudaErrorIllegalAddress";
	default:
		return "cudaErrorFake";
	}
}

const char *cudaGetErrorString(cudaError_t e)
{
	return e == cudaSuccess ? "no error" : "fake CUDA error";
}

/* One launcher stand-in at a time: the scratch serves one digest. */
static atomic_int kernel_in_use;

/*
 * What both launcher stand-ins share, as their launchers' rules: the file
 * FITS what the scratch serves; the scratch must be live device memory
 * (A_BYTES of its level buffer A) and the extents 16-byte aligned (the kernels
 * load 16 bytes at a time); one digest at a time uses the scratch; the
 * stream's earlier work runs first. Then the extents as host views (*SPANS,
 * NEXT of them, at least one), to be given back with kernel_leave. Returns
 * cudaSuccess or the launch's error.
 */
static cudaError_t kernel_enter(const char *name, bool fits, const uint8_t *const *extents,
				uint32_t next, uint64_t extent_size, uint64_t size,
				const struct vr_cuda_scratch *sc, uint64_t a_bytes, void *stream,
				struct vr_span **spans)
{
	cudaError_t e = enter(name, cudaErrorLaunchFailure);
	struct vr_span *sp;

	if (e)
		return e;
	if (!fits)
		return fail_with(cudaErrorInvalidValue, false);
	if (!is_device(sc->a, a_bytes ? a_bytes : 1) || !is_device(sc->out, 32) ||
	    !is_device(sc->ext, next * sizeof(void *)))
		return fail_with(cudaErrorIllegalAddress, true);
	for (uint32_t i = 0; i < next; i++)
		if ((uintptr_t)extents[i] % 16)
			return fail_with(cudaErrorMisalignedAddress, true);
	if ((uintptr_t)sc->a % 16 || (uintptr_t)sc->b % 16)
		return fail_with(cudaErrorMisalignedAddress, true);
	if (atomic_fetch_add(&kernel_in_use, 1) != 0) {
		fprintf(stderr, "fake cuda: two digests share the scratch at once\n");
		atomic_fetch_sub(&kernel_in_use, 1);
		return fail_with(cudaErrorIllegalAddress, true);
	}
	run_until(stream_of((cudaStream_t)stream), UINT64_MAX);
	if (vr_test_digest_hook)
		vr_test_digest_hook();
	sp = calloc(next ? next : 1, sizeof(*sp));
	if (!sp || atomic_load(&sticky)) {
		free(sp);
		atomic_fetch_sub(&kernel_in_use, 1);
		return sp ? atomic_load(&sticky) : cudaErrorMemoryAllocation;
	}
	for (uint32_t i = 0; i < next; i++) {
		sp[i].len = (size_t)(size - i * extent_size < extent_size ? size - i * extent_size
									  : extent_size);
		/* the kernel reads the extents on the device: through the double's view */
		sp[i].data = dev_view(extents[i], sp[i].len ? sp[i].len : 1, false);
		if (!sp[i].data) {
			free(sp);
			atomic_fetch_sub(&kernel_in_use, 1);
			return fail_with(cudaErrorIllegalAddress, true);
		}
	}
	if (!next)
		sp[0].data = "";
	*spans = sp;
	return cudaSuccess;
}

static void kernel_leave(struct vr_span *spans)
{
	free(spans);
	atomic_fetch_sub(&kernel_in_use, 1);
}

/*
 * The launcher's stand-in: the core's digest of the extents once the stream's
 * work ran. It keeps the launcher's rules: the scratch must be live device
 * memory big enough for the file, and one digest at a time may use it.
 */
int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		     uint64_t size, const struct vr_cuda_scratch *sc, void *stream, uint8_t out[32])
{
	struct vr_span *spans;
	cudaError_t e;
	int ret;

	bool fits = vr_fsv_blocks(size) <= sc->max_blocks && next <= sc->max_extents;

	e = kernel_enter("vr_cuda_fsverity", fits, extents, next, extent_size, size, sc,
			 sc->max_blocks * VR_DIGEST_SIZE, stream, &spans);
	if (e)
		return e;
	ret = vr_fsv_digest_spans(spans, next ? next : 1, 1, out);
	kernel_leave(spans);
	return ret ? cudaErrorUnknown : cudaSuccess;
}

/*
 * The BLAKE3 launcher's stand-in: core/blake3.c over the extents, with the
 * launcher's rules (as vr_cuda_fsverity's), and its own: the tree's nodes fit
 * the scratch's level buffer A, and the extents are whole chunks (or one).
 */
int vr_cuda_blake3(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		   uint64_t size, const struct vr_cuda_scratch *sc, void *stream, uint8_t out[32])
{
	uint64_t n = vr_b3_chunks(size), nodes = n > 1 ? vr_b3_scratch_nodes(n) : 0;
	bool fits = nodes <= sc->max_blocks && next <= sc->max_extents &&
		    (extent_size % VR_B3_CHUNK == 0 || extent_size >= size);
	struct vr_span *spans;
	struct vr_blake3 h;
	cudaError_t e;

	e = kernel_enter("vr_cuda_blake3", fits, extents, next, extent_size, size, sc,
			 nodes * VR_DIGEST_SIZE, stream, &spans);
	if (e)
		return e;
	vr_blake3_init(&h);
	for (uint32_t i = 0; i < next; i++)
		vr_blake3_update(&h, spans[i].data, spans[i].len);
	vr_blake3_final(&h, out, VR_BLAKE3_LEN);
	kernel_leave(spans);
	return cudaSuccess;
}
