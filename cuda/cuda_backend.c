/* cuda_backend.c - the CUDA backend: file bytes in VRAM extents, uploads through a pinned ring. */
#include "audit.h"
#include "backends.h"
#include "digest.h"
#include "fsverity_kernel.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

#define CUDA_EXTENT  ((uint64_t)16 << 20) /* whole fs-verity units; few cudaMalloc calls */
#define RING_SLOTS   4
#define RING_SLOT    ((size_t)8 << 20) /* 32 MiB of pinned staging in all */
#define MIN_CC_MAJOR 6
#define MIN_TOTAL    ((uint64_t)1 << 30)

/*
 * Locking, narrowed to what is truly shared (backend.h's contract):
 *  - ACCT guards USED against BUDGET; info takes only this, briefly.
 *  - RING guards the pinned staging slots, their events and NEXT_SLOT: the one
 *    resource writers of different files share. Uploads go through the ring
 *    on UPLOAD, in order.
 *  - Nothing else is locked: a file's extents and its WRITTEN event belong to
 *    the caller, who orders calls on one file. Reads and digests run on the
 *    calling thread's own stream (cudaStreamPerThread) after waiting for the
 *    file's WRITTEN event, so they never hold a lock a writer needs.
 */
struct cuda {
	int device;
	atomic_bool failed; /* a sticky error broke the context: nothing more until a restart */
	struct vr_device_info info; /* constant after open */
	struct vr_audit *audit;
	pthread_mutex_t acct;
	uint64_t budget, used; /* used: under ACCT */
	pthread_mutex_t ring;
	cudaStream_t upload;
	void *slot[RING_SLOTS];		   /* under RING */
	cudaEvent_t slot_done[RING_SLOTS]; /* under RING */
	bool slot_busy[RING_SLOTS];	   /* under RING */
	int next_slot;			   /* under RING */
	pthread_mutex_t scratch_lock;	   /* one digest at a time uses the scratch */
	struct vr_cuda_scratch scratch;	   /* under SCRATCH_LOCK; allocated at open */
	void *scratch_mem;		   /* the one allocation behind it */
};

struct cuda_file {
	struct vr_dev_file hdr; /* first: the file knows its device */
	uint64_t size;
	uint32_t count, cap;
	uint8_t **ext;
	/* recorded on UPLOAD after the file's last queued copy, memset or scrub */
	cudaEvent_t written;
};

static struct cuda_file *cf(struct vr_dev_file *f)
{
	return (struct cuda_file *)f;
}

/* Errors after which the CUDA context is unusable: every later call fails too. */
static bool sticky(cudaError_t e)
{
	switch (e) {
	case cudaErrorIllegalAddress:
	case cudaErrorLaunchFailure:
	case cudaErrorHardwareStackError:
	case cudaErrorIllegalInstruction:
	case cudaErrorMisalignedAddress:
	case cudaErrorInvalidAddressSpace:
	case cudaErrorInvalidPc:
	case cudaErrorECCUncorrectable:
	case cudaErrorAssert:
	case cudaErrorLaunchTimeout:
		return true;
	default:
		return false;
	}
}

static void device_failed(struct cuda *c, cudaError_t e, const char *what);

/*
 * Maps a CUDA error to an errno, logging its name; the one place that does.
 * A sticky error marks the device failed (C may be NULL before it exists).
 */
static int cuda_err(struct cuda *c, cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	vr_log(LOG_ERR, "cuda: %s failed: %s (%s)", what, cudaGetErrorName(e),
	       cudaGetErrorString(e));
	if (c && sticky(e))
		device_failed(c, e, what);
	switch (e) {
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
	case cudaErrorDevicesUnavailable:
		return -ENODEV;
	default:
		return -EIO;
	}
}

static int cuda_errno(cudaError_t e, const char *what)
{
	return cuda_err(NULL, e, what);
}

/*
 * Marks the device failed after sticky error E: loads are refused and checks
 * say they could not run (nothing is quarantined for it); status shows it.
 * Audited once.
 */
static void device_failed(struct cuda *c, cudaError_t e, const char *what)
{
	char why[256];

	if (atomic_exchange(&c->failed, true))
		return;
	snprintf(why, sizeof(why),
		 "%s: %s: the GPU context is unusable; loads are refused and checks cannot run "
		 "until the daemon restarts",
		 what, cudaGetErrorName(e));
	vr_log(LOG_ERR, "cuda: device %d failed: %s", c->device, why);
	if (c->audit) {
		struct vr_audit_rec rec = {.event = "device_failed",
					   .uid = getuid(),
					   .pid = getpid(),
					   .outcome = "failed",
					   .detail = why};

		vr_audit_log(c->audit, &rec);
	}
}

static void policy_violation(struct cuda *c, const char *why)
{
	struct vr_audit_rec rec = {.event = "policy_violation",
				   .uid = getuid(),
				   .pid = getpid(),
				   .outcome = "denied",
				   .detail = why};

	vr_log(LOG_ERR, "cuda: device %d refused by the VRAM-only policy: %s", c->device, why);
	if (c->audit)
		vr_audit_log(c->audit, &rec);
}

/* cudaSetDevice is per thread: every entry point selects the device first, and a failed
 * device refuses here. */
static int select_dev(struct cuda *c)
{
	if (atomic_load(&c->failed))
		return -EIO;
	return cuda_err(c, cudaSetDevice(c->device), "cudaSetDevice");
}

static void format_uuid(const cudaUUID_t *u, char *out, size_t cap)
{
	const unsigned char *b = (const unsigned char *)u->bytes;

	snprintf(out, cap,
		 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

static void cuda_close(void *ctx);

/*
 * Allocates the digest scratch once, for the largest file FREE_B bytes could
 * hold (about 0.8 % of it): the level buffers, the extent table and the digest,
 * carved from one cudaMalloc. Returns 0 or -errno.
 */
static int alloc_scratch(struct cuda *c, size_t free_b)
{
	struct vr_cuda_scratch *sc = &c->scratch;
	uint64_t level_bytes;
	uint8_t *p;
	int ret;

	vr_cuda_scratch_size(free_b, CUDA_EXTENT, &sc->max_blocks, &sc->max_extents, &level_bytes);
	/* rounded to 256 bytes: the kernel reads the level buffers 16 bytes at a time, and a
	 * misaligned vector load is a sticky error (compute-sanitizer found it on an H200) */
	uint64_t table_bytes = (((uint64_t)sc->max_extents + 2) * sizeof(void *) + 255) & ~255ULL;
	uint64_t total = table_bytes + level_bytes + 256;

	ret = cuda_err(c, cudaMalloc(&c->scratch_mem, total), "cudaMalloc (digest scratch)");
	if (ret)
		return ret;
	p = c->scratch_mem;
	sc->ext = (const uint8_t **)p;
	sc->lvl = sc->ext + sc->max_extents;
	sc->out = p + table_bytes;
	sc->a = sc->out + 256; /* 256: keeps the level buffers aligned */
	sc->b = sc->a + sc->max_blocks * VR_DIGEST_SIZE;
	return 0;
}

static int cuda_open(const struct vr_backend_params *p, void **ctx)
{
	struct cudaDeviceProp prop;
	struct cuda *c;
	size_t free_b, total_b;
	int count = 0, ret;
	char why[512];

	cudaError_t e = cudaGetDeviceCount(&count);

	if (e != cudaSuccess) {
		/* under backend=auto a machine without a GPU is ordinary: said, not as an error */
		if (p->probe)
			vr_log(LOG_INFO, "cuda: no GPU usable here: %s (%s)", cudaGetErrorName(e),
			       cudaGetErrorString(e));
		else
			cuda_errno(e, "cudaGetDeviceCount");
		return -ENODEV;
	}
	if (p->device >= count) {
		vr_log(LOG_ERR, "cuda: device=%d but %d GPU(s) present", p->device, count);
		return -ENODEV;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->device = p->device;
	c->audit = p->audit;
	pthread_mutex_init(&c->acct, NULL);
	pthread_mutex_init(&c->ring, NULL);
	pthread_mutex_init(&c->scratch_lock, NULL);
	ret = select_dev(c);
	if (ret)
		goto fail;
	ret = cuda_err(c, cudaGetDeviceProperties(&prop, c->device), "cudaGetDeviceProperties");
	if (ret)
		goto fail;
	/* VRAM-only policy: file bytes never in host-shared, managed or mapped memory */
	why[0] = '\0';
	if (prop.integrated)
		snprintf(why, sizeof(why), "%s is integrated (shares host memory)", prop.name);
	else if (prop.major < MIN_CC_MAJOR)
		snprintf(why, sizeof(why), "%s has compute capability %d.%d, below 6.0", prop.name,
			 prop.major, prop.minor);
	else if ((uint64_t)prop.totalGlobalMem < MIN_TOTAL)
		snprintf(why, sizeof(why), "%s has %zu bytes of memory, below 1 GiB", prop.name,
			 prop.totalGlobalMem);
	if (why[0]) {
		policy_violation(c, why);
		ret = -ENODEV;
		goto fail;
	}
	ret = cuda_err(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
	if (ret)
		goto fail;
	ret = alloc_scratch(c, free_b);
	if (ret)
		goto fail;
	ret = cuda_err(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
	if (ret)
		goto fail;
	/* headroom for digest scratch (0.8% of a file) and other users of the GPU */
	uint64_t headroom = (uint64_t)total_b / 50 > MIN_TOTAL ? (uint64_t)total_b / 50 : MIN_TOTAL;

	c->budget = free_b > headroom ? (uint64_t)free_b - headroom : 0;
	strcpy(c->info.backend, "cuda");
	c->info.index = c->device;
	snprintf(c->info.name, sizeof(c->info.name), "%s", prop.name);
	format_uuid(&prop.uuid, c->info.uuid, sizeof(c->info.uuid));
	c->info.cc_major = prop.major;
	c->info.cc_minor = prop.minor;
	c->info.integrated = false;
	ret = cuda_err(c, cudaStreamCreateWithFlags(&c->upload, cudaStreamNonBlocking),
		       "cudaStreamCreate");
	if (ret)
		goto fail;
	for (int i = 0; i < RING_SLOTS; i++) {
		ret = cuda_err(c, cudaHostAlloc(&c->slot[i], RING_SLOT, cudaHostAllocDefault),
			       "cudaHostAlloc (staging)");
		if (!ret)
			ret = cuda_err(
			    c, cudaEventCreateWithFlags(&c->slot_done[i], cudaEventDisableTiming),
			    "cudaEventCreate");
		if (ret)
			goto fail;
	}
	vr_log(LOG_INFO, "cuda: device %d %s (%s), cc %d.%d, %llu bytes usable", c->device,
	       prop.name, c->info.uuid, prop.major, prop.minor, (unsigned long long)c->budget);
	*ctx = c;
	return 0;
fail:
	cuda_close(c);
	return ret ? ret : -ENODEV;
}

static void cuda_close(void *ctx)
{
	struct cuda *c = ctx;

	if (select_dev(c) == 0) {
		if (c->upload)
			cudaStreamSynchronize(c->upload);
		for (int i = 0; i < RING_SLOTS; i++) {
			if (c->slot[i]) {
				/* staged bytes were file bytes: wipe before giving the pages back
				 */
				explicit_bzero(c->slot[i], RING_SLOT);
				cudaFreeHost(c->slot[i]);
			}
			if (c->slot_done[i])
				cudaEventDestroy(c->slot_done[i]);
		}
		if (c->upload)
			cudaStreamDestroy(c->upload);
		if (c->scratch_mem)
			cudaFree(c->scratch_mem);
	}
	pthread_mutex_destroy(&c->acct);
	pthread_mutex_destroy(&c->ring);
	pthread_mutex_destroy(&c->scratch_lock);
	free(c);
}

static int cuda_info(void *ctx, struct vr_device_info *out)
{
	struct cuda *c = ctx;

	*out = c->info;
	out->failed = atomic_load(&c->failed);
	out->total_bytes = c->budget;
	pthread_mutex_lock(&c->acct);
	out->free_bytes = c->budget - c->used;
	pthread_mutex_unlock(&c->acct);
	return 0;
}

static int cuda_file_new(void *ctx, struct vr_dev_file **out)
{
	struct cuda *c = ctx;
	struct cuda_file *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	ret = select_dev(c);
	if (ret == 0)
		ret = cuda_err(c, cudaEventCreateWithFlags(&f->written, cudaEventDisableTiming),
			       "cudaEventCreate");
	if (ret) {
		free(f);
		return ret;
	}
	*out = &f->hdr;
	return 0;
}

/* Marks the end of the file's queued upload work, so readers and digests can wait for it. */
static int mark_written(struct cuda *c, struct cuda_file *f)
{
	return cuda_err(c, cudaEventRecord(f->written, c->upload), "cudaEventRecord");
}

/* Makes the calling thread's stream wait for the file's queued uploads. */
static int after_writes(struct cuda *c, struct cuda_file *f)
{
	return cuda_err(c, cudaStreamWaitEvent(cudaStreamPerThread, f->written, 0),
			"cudaStreamWaitEvent");
}

/* Takes an extent from the budget and the device, zeroed on UPLOAD; returns 0 or -errno. */
static int alloc_extent(struct cuda *c, uint8_t **out)
{
	struct cudaPointerAttributes attr;
	void *p = NULL;
	int ret;

	pthread_mutex_lock(&c->acct);
	ret = c->budget - c->used < CUDA_EXTENT ? -ENOSPC : 0;
	if (ret == 0)
		c->used += CUDA_EXTENT;
	pthread_mutex_unlock(&c->acct);
	if (ret)
		return ret;
	ret = cuda_err(c, cudaMalloc(&p, CUDA_EXTENT), "cudaMalloc");
	if (ret == -ENOMEM)
		ret = -ENOSPC;
	if (ret == 0) {
		ret = cuda_err(c, cudaPointerGetAttributes(&attr, p), "cudaPointerGetAttributes");
		if (!ret && attr.type != cudaMemoryTypeDevice) {
			policy_violation(c, "an allocation is not device memory");
			ret = -EIO;
		}
	}
	/* fresh extents read as zeros, like a hole */
	if (ret == 0)
		ret = cuda_err(c, cudaMemsetAsync(p, 0, CUDA_EXTENT, c->upload), "cudaMemset");
	if (ret) {
		if (p)
			cudaFree(p);
		pthread_mutex_lock(&c->acct);
		c->used -= CUDA_EXTENT;
		pthread_mutex_unlock(&c->acct);
		return ret;
	}
	*out = p;
	return 0;
}

/* Scrubs extents from the end down to WANT, waits for that, then frees them. */
static int drop_extents(struct cuda *c, struct cuda_file *f, uint32_t want)
{
	uint32_t had = f->count;
	int ret = 0;

	for (uint32_t i = want; i < had; i++) {
		int e = cuda_err(c, cudaMemsetAsync(f->ext[i], 0, CUDA_EXTENT, c->upload),
				 "cudaMemset (scrub)");

		if (e && !ret)
			ret = e;
	}
	/* the scrub, and every upload queued before it, must be done before the memory goes */
	int e = mark_written(c, f);

	if (e == 0)
		e = cuda_err(c, cudaEventSynchronize(f->written), "cudaEventSynchronize");
	if (e && !ret)
		ret = e;
	while (f->count > want)
		cudaFree(f->ext[--f->count]);
	pthread_mutex_lock(&c->acct);
	c->used -= (uint64_t)(had - want) * CUDA_EXTENT;
	pthread_mutex_unlock(&c->acct);
	return ret;
}

static int cuda_resize(void *ctx, struct vr_dev_file *file, uint64_t size)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	uint64_t want = size / CUDA_EXTENT + (size % CUDA_EXTENT != 0);
	int ret;

	if (want > UINT32_MAX)
		return -ENOSPC;
	if (atomic_load(&c->failed))
		return -EIO;
	/* growing inside the last extent: its tail is zero already, no device work at all */
	if (want == f->count && size >= f->size) {
		f->size = size;
		return 0;
	}
	ret = select_dev(c);
	if (ret)
		return ret;
	if (want > f->count) {
		uint32_t had = f->count;

		if (want > f->cap) {
			uint8_t **n = realloc(f->ext, sizeof(*n) * want);

			if (!n)
				return -ENOMEM;
			f->ext = n;
			f->cap = (uint32_t)want;
		}
		while (f->count < want && ret == 0) {
			ret = alloc_extent(c, &f->ext[f->count]);
			if (ret == 0)
				f->count++;
		}
		/* all or nothing: a grow that fails gives back what it took */
		if (ret)
			drop_extents(c, f, had);
		else
			ret = mark_written(c, f);
	} else {
		/* scrub what a cut leaves in the last kept extent, then free whole extents */
		if (size % CUDA_EXTENT && want > 0)
			ret = cuda_err(c,
				       cudaMemsetAsync(f->ext[want - 1] + size % CUDA_EXTENT, 0,
						       CUDA_EXTENT - size % CUDA_EXTENT, c->upload),
				       "cudaMemset (scrub)");
		int e = drop_extents(c, f, (uint32_t)want);

		if (e && !ret)
			ret = e;
	}
	if (ret == 0)
		f->size = size;
	return ret;
}

/* A free staging slot, waiting for its last copy if needed. RING held. */
static int take_slot(struct cuda *c, int *out)
{
	int s = c->next_slot;

	if (c->slot_busy[s]) {
		int ret =
		    cuda_err(c, cudaEventSynchronize(c->slot_done[s]), "cudaEventSynchronize");

		if (ret)
			return ret;
		c->slot_busy[s] = false;
	}
	c->next_slot = (s + 1) % RING_SLOTS;
	*out = s;
	return 0;
}

static int cuda_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf,
		      size_t len)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	const uint8_t *p = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = select_dev(c);
	if (ret)
		return ret;
	pthread_mutex_lock(&c->ring);
	/* the host copy into one slot overlaps the DMA out of the others */
	while (ret == 0 && len > 0) {
		uint64_t in = off % CUDA_EXTENT;
		size_t n = len < RING_SLOT ? len : RING_SLOT;
		int s;

		if (n > CUDA_EXTENT - in)
			n = (size_t)(CUDA_EXTENT - in);
		ret = take_slot(c, &s);
		if (ret)
			break;
		memcpy(c->slot[s], p, n);
		ret = cuda_err(c,
			       cudaMemcpyAsync(f->ext[off / CUDA_EXTENT] + in, c->slot[s], n,
					       cudaMemcpyHostToDevice, c->upload),
			       "cudaMemcpyAsync (upload)");
		if (ret == 0)
			ret = cuda_err(c, cudaEventRecord(c->slot_done[s], c->upload),
				       "cudaEventRecord");
		c->slot_busy[s] = ret == 0;
		p += n;
		off += n;
		len -= n;
	}
	if (ret == 0)
		ret = mark_written(c, f);
	pthread_mutex_unlock(&c->ring);
	return ret;
}

static int cuda_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	uint8_t *dst = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = select_dev(c);
	if (ret == 0)
		ret = after_writes(c, f);
	/* straight into the caller's buffer on this thread's stream: no shared staging */
	while (ret == 0 && len > 0) {
		uint64_t in = off % CUDA_EXTENT;
		size_t n = len < CUDA_EXTENT - in ? len : (size_t)(CUDA_EXTENT - in);

		ret = cuda_err(c,
			       cudaMemcpyAsync(dst, f->ext[off / CUDA_EXTENT] + in, n,
					       cudaMemcpyDeviceToHost, cudaStreamPerThread),
			       "cudaMemcpyAsync (download)");
		dst += n;
		off += n;
		len -= n;
	}
	if (ret == 0)
		ret = cuda_err(c, cudaStreamSynchronize(cudaStreamPerThread),
			       "cudaStreamSynchronize");
	return ret;
}

static int cuda_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	int ret = select_dev(c);

	if (ret == 0)
		ret = after_writes(c, f);
	if (ret == 0) {
		/* digests share the scratch; reads, writes and other calls never wait here */
		pthread_mutex_lock(&c->scratch_lock);
		ret = cuda_err(c,
			       (cudaError_t)vr_cuda_fsverity((const uint8_t *const *)f->ext,
							     f->count, CUDA_EXTENT, f->size,
							     &c->scratch, cudaStreamPerThread, out),
			       "fs-verity kernel");
		pthread_mutex_unlock(&c->scratch_lock);
	}
	return ret;
}

static uint64_t cuda_held(void *ctx, const struct vr_dev_file *file)
{
	(void)ctx;
	return (uint64_t)((const struct cuda_file *)file)->count * CUDA_EXTENT;
}

static int cuda_file_free(void *ctx, struct vr_dev_file *file)
{
	struct cuda_file *f = cf(file);
	int ret = cuda_resize(ctx, file, 0);

	/* the resize waited for the file's last upload work: the event is idle */
	cudaEventDestroy(f->written);
	free(f->ext);
	free(f);
	return ret;
}

const struct vr_backend_ops vr_cuda_ops = {
    .name = "cuda",
    .open = cuda_open,
    .close = cuda_close,
    .info = cuda_info,
    .file_new = cuda_file_new,
    .resize = cuda_resize,
    .write = cuda_write,
    .read = cuda_read,
    .fsverity = cuda_fsverity,
    .held = cuda_held,
    .file_free = cuda_file_free,
};
