/*
 * cuda_io.c - bytes in and out of a CUDA file: the pinned upload ring that
 * writes go through on UPLOAD, the WRITTEN event that orders a file's queued
 * upload work, and reads and digests (fs-verity, BLAKE3) on the calling
 * thread's own stream.
 */
#include "cuda_private.h"

#include <errno.h>
#include <string.h>

/* The upload stream and the ring's pinned staging slots, with their events. */
int cuda_ring_open(struct cuda *c)
{
	int ret;

	ret = cuda_err(c, cudaStreamCreateWithFlags(&c->upload, cudaStreamNonBlocking),
		       "cudaStreamCreate");
	if (ret)
		return ret;
	for (int i = 0; i < RING_SLOTS; i++) {
		ret = cuda_err(c, cudaHostAlloc(&c->slot[i], RING_SLOT, cudaHostAllocDefault),
			       "cudaHostAlloc (staging)");
		if (!ret)
			ret = cuda_err(
			    c, cudaEventCreateWithFlags(&c->slot_done[i], cudaEventDisableTiming),
			    "cudaEventCreate");
		if (ret)
			return ret;
	}
	return 0;
}

/* Waits for UPLOAD, then frees the staging slots (wiped first), their events and the stream. */
void cuda_ring_close(struct cuda *c)
{
	if (c->upload)
		cudaStreamSynchronize(c->upload);
	for (int i = 0; i < RING_SLOTS; i++) {
		if (c->slot[i]) {
			/* staged bytes were file bytes: wipe before giving the pages back */
			explicit_bzero(c->slot[i], RING_SLOT);
			cudaFreeHost(c->slot[i]);
		}
		if (c->slot_done[i])
			cudaEventDestroy(c->slot_done[i]);
	}
	if (c->upload)
		cudaStreamDestroy(c->upload);
}

/* Marks the end of the file's queued upload work, so readers and digests can wait for it. */
int cuda_mark_written(struct cuda *c, struct cuda_file *f)
{
	return cuda_err(c, cudaEventRecord(f->written, c->upload), "cudaEventRecord");
}

/* Makes the calling thread's stream wait for the file's queued uploads. */
static int after_writes(struct cuda *c, struct cuda_file *f)
{
	return cuda_err(c, cudaStreamWaitEvent(cudaStreamPerThread, f->written, 0),
			"cudaStreamWaitEvent");
}

/* Waits for every upload, memset and scrub queued for F. */
int cuda_wait_written(struct cuda *c, struct cuda_file *f)
{
	int ret = cuda_mark_written(c, f);

	return ret ? ret : cuda_err(c, cudaEventSynchronize(f->written), "cudaEventSynchronize");
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

int cuda_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	const uint8_t *p = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = cuda_select_dev(c);
	if (ret)
		return ret;
	pthread_mutex_lock(&c->ring);
	/* the host copy into one slot overlaps the DMA out of the others */
	while (ret == 0 && len > 0) {
		size_t n = len < RING_SLOT ? len : RING_SLOT;
		int s;

		ret = take_slot(c, &s);
		if (ret)
			break;
		memcpy(c->slot[s], p, n);
		ret = cuda_err(c,
			       cudaMemcpyAsync((void *)(uintptr_t)(f->base + off), c->slot[s], n,
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
		ret = cuda_mark_written(c, f);
	pthread_mutex_unlock(&c->ring);
	return ret;
}

int cuda_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	uint8_t *dst = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = cuda_select_dev(c);
	if (ret == 0)
		ret = after_writes(c, f);
	/* straight into the caller's buffer on this thread's stream: no shared staging */
	if (ret == 0 && len > 0)
		ret = cuda_err(c,
			       cudaMemcpyAsync(dst, (const void *)(uintptr_t)(f->base + off), len,
					       cudaMemcpyDeviceToHost, cudaStreamPerThread),
			       "cudaMemcpyAsync (download)");
	if (ret == 0)
		ret = cuda_err(c, cudaStreamSynchronize(cudaStreamPerThread),
			       "cudaStreamSynchronize");
	return ret;
}

/* A digest launcher (fsverity_kernel.h, blake3_kernel.h): extents, scratch, stream, out. */
typedef int (*digest_launch)(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
			     uint64_t size, const struct vr_cuda_scratch *scratch, void *stream,
			     uint8_t out[32]);

/* F's digest by LAUNCH (named WHAT in errors), after its queued writes, on this thread's
 * stream; returns 0 or -errno. */
static int device_digest(struct cuda *c, struct cuda_file *f, digest_launch launch,
			 const char *what, uint8_t out[32])
{
	int ret = cuda_select_dev(c);

	if (ret == 0)
		ret = after_writes(c, f);
	if (ret == 0) {
		/* digests share the scratch; reads, writes and other calls never wait here */
		pthread_mutex_lock(&c->scratch_lock);
		/* one base pointer: the file is one range (a one-entry table, as the levels) */
		const uint8_t *base = (const uint8_t *)(uintptr_t)f->base;

		ret = cuda_err(c,
			       (cudaError_t)launch(&base, f->count ? 1 : 0, UINT64_MAX / 2, f->size,
						   &c->scratch, cudaStreamPerThread, out),
			       what);
		pthread_mutex_unlock(&c->scratch_lock);
	}
	return ret;
}

int cuda_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	return device_digest(ctx, cf(file), vr_cuda_fsverity, "fs-verity kernel", out);
}

int cuda_blake3(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	return device_digest(ctx, cf(file), vr_cuda_blake3, "BLAKE3 kernel", out);
}
