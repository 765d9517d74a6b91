/*
 * cuda_io.c - bytes out of a CUDA file, and the order of its work: the
 * WRITTEN event that ends a file's queued upload work (on a stage's stream or
 * UPLOAD), and reads and digests (fs-verity, BLAKE3) on the calling thread's
 * own stream after it.
 */
#include "cuda_private.h"

#include <errno.h>
#include <string.h>

/* Makes stream S's next work for F follow the file's queued work (none to wait for when S
 * queued it last: a stream runs in order). The caller orders calls on F. */
int cuda_queue_after(struct cuda *c, struct cuda_file *f, cudaStream_t s)
{
	if (!f->written_on || f->written_on == s)
		return 0;
	return cuda_err(c, cudaStreamWaitEvent(s, f->written, 0), "cudaStreamWaitEvent");
}

/* Marks the end of the file's queued upload work (on any stream), so readers and digests can
 * wait for it. */
int cuda_mark_written(struct cuda *c, struct cuda_file *f)
{
	int ret = cuda_queue_after(c, f, c->upload);

	if (ret == 0)
		ret = cuda_err(c, cudaEventRecord(f->written, c->upload), "cudaEventRecord");
	if (ret == 0)
		f->written_on = c->upload;
	return ret;
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
