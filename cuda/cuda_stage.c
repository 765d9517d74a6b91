/*
 * cuda_stage.c - pinned staging for uploads: a pool of stages (slots of
 * pinned memory on a stream of their own), lent whole to one writer so that
 * writers of different files never wait for each other's copies; the write
 * op copies through a stage taken for the call, an importer holds one for a
 * file and reads straight into its slots (backend.h's stage ops).
 */
#include "cuda_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct cuda_stage *cs(struct vr_dev_stage *s)
{
	return (struct cuda_stage *)s;
}

/* Waits for S's copies, then frees its slots (wiped first: staged bytes were file bytes),
 * events and stream. */
static void stage_destroy(struct cuda_stage *s)
{
	if (s->stream)
		cudaStreamSynchronize(s->stream);
	for (int i = 0; i < s->nslots; i++) {
		if (s->slot[i]) {
			explicit_bzero(s->slot[i], s->slot_bytes);
			cudaFreeHost(s->slot[i]);
		}
		if (s->done[i])
			cudaEventDestroy(s->done[i]);
	}
	if (s->stream)
		cudaStreamDestroy(s->stream);
	free(s);
}

/* A new stage: its stream, slots and events; returns 0 or -errno. */
static int stage_make(struct cuda *c, struct cuda_stage **out)
{
	struct cuda_stage *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->nslots = (int)c->g.slots;
	s->slot_bytes = c->g.slot;
	ret = cuda_err(c, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking),
		       "cudaStreamCreate");
	for (int i = 0; i < s->nslots && ret == 0; i++) {
		ret = cuda_err(c, cudaHostAlloc(&s->slot[i], s->slot_bytes, cudaHostAllocDefault),
			       "cudaHostAlloc (staging)");
		if (!ret)
			ret = cuda_err(
			    c, cudaEventCreateWithFlags(&s->done[i], cudaEventDisableTiming),
			    "cudaEventCreate");
	}
	if (ret) {
		stage_destroy(s);
		return ret;
	}
	s->cur = -1;
	*out = s;
	return 0;
}

/* The upload stream and the first stage (the others are made as writers need them). */
int cuda_stages_open(struct cuda *c)
{
	struct cuda_stage *s;
	int ret;

	c->max_stages = c->g.stages;
	ret = cuda_err(c, cudaStreamCreateWithFlags(&c->upload, cudaStreamNonBlocking),
		       "cudaStreamCreate");
	if (ret == 0)
		ret = stage_make(c, &s);
	if (ret)
		return ret;
	c->all[c->nstages++] = s;
	c->idle = s;
	return 0;
}

/* Waits for UPLOAD and every stage, and frees them (their slots wiped first). */
void cuda_stages_close(struct cuda *c)
{
	if (c->upload)
		cudaStreamSynchronize(c->upload);
	for (unsigned i = 0; i < c->nstages; i++)
		stage_destroy(c->all[i]);
	c->nstages = 0;
	c->idle = NULL;
	if (c->upload)
		cudaStreamDestroy(c->upload);
}

/*
 * An idle stage, or a new one while there are fewer than the pool's most;
 * else waits for one to come back (the bounded resource backend.h allows
 * writers to wait for). Pinned memory that runs out caps the pool where it
 * is. Returns 0 or -errno (not even one stage could be made).
 */
static int stage_take(struct cuda *c, struct cuda_stage **out)
{
	struct cuda_stage *s = NULL;
	int ret = 0;

	pthread_mutex_lock(&c->stages);
	while (!c->idle && c->nstages + c->growing >= c->max_stages)
		pthread_cond_wait(&c->stage_back, &c->stages);
	if (c->idle) {
		s = c->idle;
		c->idle = s->idle_next;
	} else {
		c->growing++;
		pthread_mutex_unlock(&c->stages);
		ret = stage_make(c, &s);
		pthread_mutex_lock(&c->stages);
		c->growing--;
		if (ret == 0)
			c->all[c->nstages++] = s;
		else if (c->nstages > 0) {
			c->max_stages = c->nstages; /* no more pinned memory: share these */
			pthread_mutex_unlock(&c->stages);
			return stage_take(c, out);
		}
	}
	pthread_mutex_unlock(&c->stages);
	if (ret == 0)
		*out = s;
	return ret;
}

/* Gives S back to the pool; its copies may still run (each slot's event guards it). */
static void stage_give(struct cuda *c, struct cuda_stage *s)
{
	s->cur = -1;
	pthread_mutex_lock(&c->stages);
	s->idle_next = c->idle;
	c->idle = s;
	pthread_cond_signal(&c->stage_back);
	pthread_mutex_unlock(&c->stages);
}

/* S's next slot, once its last upload is done; returns 0 or -errno (that upload failed). */
static int slot_next(struct cuda *c, struct cuda_stage *s, void **buf)
{
	int i = s->next;

	if (s->busy[i]) {
		int ret = cuda_err(c, cudaEventSynchronize(s->done[i]), "cudaEventSynchronize");

		if (ret)
			return ret;
		s->busy[i] = false;
	}
	s->next = (i + 1) % s->nslots;
	s->cur = i;
	*buf = s->slot[i];
	return 0;
}

/* Queues the upload of LEN bytes of S's current slot to OFF of F, after F's earlier work. */
static int slot_upload(struct cuda *c, struct cuda_stage *s, struct cuda_file *f, uint64_t off,
		       size_t len)
{
	int i = s->cur, ret;

	if (i < 0 || len > s->slot_bytes || off > f->size || len > f->size - off)
		return -EINVAL;
	s->cur = -1;
	ret = cuda_queue_after(c, f, s->stream);
	if (ret == 0)
		ret = cuda_err(c,
			       cudaMemcpyAsync((void *)(uintptr_t)(f->base + off), s->slot[i], len,
					       cudaMemcpyHostToDevice, s->stream),
			       "cudaMemcpyAsync (upload)");
	bool queued = ret == 0;

	if (ret == 0)
		ret = cuda_err(c, cudaEventRecord(s->done[i], s->stream), "cudaEventRecord");
	s->busy[i] = ret == 0;
	if (ret && queued)
		cudaStreamSynchronize(s->stream); /* no event guards the slot: never reused under
						     its copy */
	if (ret == 0)
		ret = cuda_err(c, cudaEventRecord(f->written, s->stream), "cudaEventRecord");
	if (ret == 0)
		f->written_on = s->stream;
	return ret;
}

int cuda_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	const uint8_t *p = buf;
	struct cuda_stage *s;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = cuda_select_dev(c);
	if (ret == 0)
		ret = stage_take(c, &s);
	if (ret)
		return ret;
	/* the host copy into one slot overlaps the DMA out of the others */
	while (ret == 0 && len > 0) {
		size_t n = len < s->slot_bytes ? len : s->slot_bytes;
		void *slot;

		ret = slot_next(c, s, &slot);
		if (ret)
			break;
		memcpy(slot, p, n);
		ret = slot_upload(c, s, f, off, n);
		p += n;
		off += n;
		len -= n;
	}
	stage_give(c, s);
	return ret;
}

int cuda_stage_new(void *ctx, struct vr_dev_file *file, struct vr_dev_stage **out)
{
	struct cuda_stage *s;
	int ret;

	(void)file;
	ret = cuda_select_dev(ctx);
	if (ret == 0)
		ret = stage_take(ctx, &s);
	if (ret == 0)
		*out = &s->hdr;
	return ret;
}

int cuda_stage_slot(void *ctx, struct vr_dev_stage *stage, void **buf, size_t *cap)
{
	int ret = cuda_select_dev(ctx);

	if (ret == 0)
		ret = slot_next(ctx, cs(stage), buf);
	if (ret == 0)
		*cap = cs(stage)->slot_bytes;
	return ret;
}

int cuda_stage_write(void *ctx, struct vr_dev_stage *stage, uint64_t off, size_t len)
{
	int ret = cuda_select_dev(ctx);

	return ret ? ret : slot_upload(ctx, cs(stage), cf(stage->file), off, len);
}

int cuda_stage_free(void *ctx, struct vr_dev_stage *stage)
{
	struct cuda_stage *s = cs(stage);
	int ret = cuda_select_dev(ctx);

	/* every upload done, or its error seen, before the holder settles the file */
	for (int i = 0; i < s->nslots; i++) {
		if (!s->busy[i])
			continue;
		int e =
		    ret ? 0
			: cuda_err(ctx, cudaEventSynchronize(s->done[i]), "cudaEventSynchronize");

		if (e && !ret)
			ret = e;
		if (e == 0)
			s->busy[i] = false;
	}
	stage_give(ctx, s);
	return ret;
}
