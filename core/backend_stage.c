/*
 * backend_stage.c - staging lent to a file's writer (backend.h's struct
 * vr_dev_stage): the backend's own (the CUDA backend's pinned slots, uploads
 * in flight on a stream), or, where a backend lends none (the mock), slots of
 * host memory that a thread of the stage's own writes through the backend's
 * write op while the next slot fills. Either way a writer has one way to
 * load: read into a slot, hash it in place, queue it. Both take their
 * geometry from -o staging (struct vr_staging).
 */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A slot's bytes are a page's multiple: a read straight into it may bypass the page cache. */
#define HOST_ALIGN ((size_t)4096)
/* Whole slots kept zeroed for the next stage, at most: two stages' worth of the default
 * geometry (64 MiB), what two loads at once reuse; more are mapped and unmapped as needed. */
#define POOL_MAX 8

/*
 * The host staging of one backend: slots given back, kept for the next stage
 * (a virtual machine's first touch of fresh memory costs several times the
 * copy into it: a load would pay it for every file), zeroed (a stage scrubs
 * what it wrote before it gives a slot back); and the stages lent, at most
 * the geometry's count (more writers wait for one back).
 */
struct host_pool {
	struct vr_staging g;
	pthread_mutex_t lock;
	pthread_cond_t back;
	void *slot[POOL_MAX]; /* under LOCK: whole slots (G.slot bytes), zeroed */
	int count;	      /* under LOCK */
	unsigned lent;	      /* under LOCK: stages */
};

/*
 * A host stage. The writer's thread gives slots out and queues them; the
 * stage's thread writes what is queued, in order. Queued writes are ordered
 * before the file's other operations: each vr_dev_* call on the file first
 * waits for them (vr_dev_stage_drain).
 */
struct host_stage {
	struct vr_dev_stage hdr; /* first */
	struct host_pool *pool;
	size_t cap;			   /* each slot's bytes */
	int nslots;			   /* slots in turn */
	void *slot[VR_STAGING_SLOTS_MAX];  /* made when first given out */
	size_t used[VR_STAGING_SLOTS_MAX]; /* the most bytes queued from each */
	int next, cur;			   /* the writer's: given next, given last */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t more, done;
	struct {
		int slot;
		uint64_t off;
		size_t len;
	} q[VR_STAGING_SLOTS_MAX];	    /* under LOCK: [head, head + count) queued */
	int head, count;		    /* under LOCK */
	bool pending[VR_STAGING_SLOTS_MAX]; /* under LOCK: queued or being written */
	bool closing;			    /* under LOCK */
	int err;			    /* under LOCK: the first write's error */
};

int vr_host_pool_new(const struct vr_staging *g, struct host_pool **out)
{
	struct host_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->g = *g;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->back, NULL);
	*out = p;
	return 0;
}

void vr_host_pool_free(struct host_pool *p)
{
	if (!p)
		return;
	/* every stage was given back: their writers are gone before the backend closes */
	for (int i = 0; i < p->count; i++)
		munmap(p->slot[i], p->g.slot);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->back);
	free(p);
}

static void *slot_take(struct host_pool *pool, size_t cap)
{
	void *p = NULL;

	if (cap == pool->g.slot) {
		pthread_mutex_lock(&pool->lock);
		if (pool->count > 0)
			p = pool->slot[--pool->count];
		pthread_mutex_unlock(&pool->lock);
		if (p)
			return p;
	}
	/* a mapping of its own: page-aligned, out of core dumps, given back whole */
	p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, cap, MADV_DONTDUMP);
	return p;
}

/* Gives back slot P of CAP bytes whose first WRITTEN bytes may hold file bytes (the rest is
 * zero: never touched, or scrubbed by an earlier holder). */
static void slot_give(struct host_pool *pool, void *p, size_t cap, size_t written)
{
	explicit_bzero(p, written);
	if (cap == pool->g.slot) {
		pthread_mutex_lock(&pool->lock);
		bool kept = pool->count < POOL_MAX;

		if (kept)
			pool->slot[pool->count++] = p;
		pthread_mutex_unlock(&pool->lock);
		if (kept)
			return;
	}
	munmap(p, cap);
}

static struct host_stage *hs(struct vr_dev_stage *s)
{
	return (struct host_stage *)s;
}

static void *host_writer(void *arg)
{
	struct host_stage *s = arg;
	struct vr_backend *b = s->hdr.backend;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->count == 0 && !s->closing)
			pthread_cond_wait(&s->more, &s->lock);
		if (s->count == 0)
			break;
		int i = s->q[s->head].slot, ret = s->err;
		uint64_t off = s->q[s->head].off;
		size_t len = s->q[s->head].len;

		pthread_mutex_unlock(&s->lock);
		/* the op itself: vr_dev_write would wait for this very queue */
		if (ret == 0)
			ret = b->ops->write(b->ctx, s->hdr.file, off, s->slot[i], len);
		pthread_mutex_lock(&s->lock);
		if (ret && !s->err)
			s->err = ret;
		s->head = (s->head + 1) % s->nslots;
		s->count--;
		s->pending[i] = false;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* A host stage for F, once fewer than the geometry's count are lent; its slots no larger than
 * F's memory needs (a small file's load pays no first touch of pages it never fills). */
static int host_new(struct vr_backend *b, struct vr_dev_file *f, struct vr_dev_stage **out)
{
	struct host_pool *pool = b->pool;
	struct host_stage *s;
	uint64_t held = vr_dev_held(f);

	if (!pool)
		return -EOPNOTSUPP; /* a backend not opened by vr_backend_open */
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&pool->lock);
	while (pool->lent >= pool->g.stages)
		pthread_cond_wait(&pool->back, &pool->lock);
	pool->lent++;
	pthread_mutex_unlock(&pool->lock);
	s->pool = pool;
	s->nslots = (int)pool->g.slots;
	s->cap = held < pool->g.slot ? ((size_t)held + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN
				     : pool->g.slot;
	if (s->cap == 0)
		s->cap = HOST_ALIGN;
	s->cur = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->more, NULL);
	pthread_cond_init(&s->done, NULL);
	*out = &s->hdr;
	return 0;
}

/* Waits until S's writes are done (those of slot I only, when I >= 0); returns their first
 * error. */
static int host_wait(struct host_stage *s, int i)
{
	pthread_mutex_lock(&s->lock);
	while (i >= 0 ? s->pending[i] : s->count > 0)
		pthread_cond_wait(&s->done, &s->lock);
	int ret = s->err;

	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int host_slot(struct host_stage *s, void **buf, size_t *cap)
{
	int i = s->next, ret = host_wait(s, i);

	if (ret)
		return ret;
	if (!s->slot[i] && !(s->slot[i] = slot_take(s->pool, s->cap)))
		return -ENOMEM;
	s->next = (i + 1) % s->nslots;
	s->cur = i;
	*buf = s->slot[i];
	*cap = s->cap;
	return 0;
}

/* Queues the current slot's first LEN bytes to be written at OFF by S's thread. */
static int host_write(struct host_stage *s, uint64_t off, size_t len)
{
	int i = s->cur, ret = 0;

	if (i < 0 || len > s->cap)
		return -EINVAL;
	if (!s->hdr.file)
		return -ESTALE;
	s->cur = -1;
	if (len > s->used[i])
		s->used[i] = len;
	if (!s->started) {
		ret = -pthread_create(&s->thread, NULL, host_writer, s);
		if (ret)
			return ret;
		s->started = true;
	}
	pthread_mutex_lock(&s->lock);
	ret = s->err;
	if (ret == 0) {
		int at = (s->head + s->count) % s->nslots;

		s->q[at].slot = i;
		s->q[at].off = off;
		s->q[at].len = len;
		s->count++;
		s->pending[i] = true;
		pthread_cond_signal(&s->more);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Waits for S's writes, ends its thread, gives its slots and its place back and frees it;
 * returns the writes' first error. */
static int host_free(struct host_stage *s)
{
	struct host_pool *pool = s->pool;
	int ret = host_wait(s, -1);

	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->closing = true;
		pthread_cond_signal(&s->more);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	for (int i = 0; i < s->nslots; i++) {
		if (!s->slot[i])
			continue;
		/* what was queued from a slot is all it held, but the one given out last and
		 * never queued (a read that failed partway, a write refused) may hold anything;
		 * the rest is scrubbed already (a scrub would cost untouched pages a touch) */
		slot_give(pool, s->slot[i], s->cap, i == s->cur ? s->cap : s->used[i]);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->more);
	pthread_cond_destroy(&s->done);
	free(s);
	pthread_mutex_lock(&pool->lock);
	pool->lent--;
	pthread_cond_signal(&pool->back);
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

int vr_dev_stage_new(struct vr_dev_file *f, struct vr_dev_stage **out)
{
	struct vr_backend *b = f->backend;
	struct vr_dev_stage *s;
	int ret;

	if (!b->ops->stage_new && f->lent)
		return -EBUSY; /* one writer's host stage at a time */
	ret = b->ops->stage_new ? b->ops->stage_new(b->ctx, f, &s) : host_new(b, f, &s);
	if (ret)
		return ret;
	s->file = f;
	s->backend = b;
	if (!b->ops->stage_new)
		f->lent = s; /* its queued writes come before the file's other operations */
	*out = s;
	return 0;
}

int vr_dev_stage_slot(struct vr_dev_stage *s, void **buf, size_t *cap)
{
	struct vr_backend *b = s->backend;

	return b->ops->stage_new ? b->ops->stage_slot(b->ctx, s, buf, cap)
				 : host_slot(hs(s), buf, cap);
}

int vr_dev_stage_write(struct vr_dev_stage *s, uint64_t off, size_t len)
{
	struct vr_backend *b = s->backend;

	return b->ops->stage_new ? b->ops->stage_write(b->ctx, s, off, len)
				 : host_write(hs(s), off, len);
}

int vr_dev_stage_free(struct vr_dev_stage *s)
{
	if (!s)
		return 0;
	struct vr_backend *b = s->backend;

	if (b->ops->stage_new)
		return b->ops->stage_free(b->ctx, s);
	if (s->file)
		s->file->lent = NULL;
	return host_free(hs(s));
}

void vr_dev_stage_drain(struct vr_dev_file *f)
{
	if (f->lent)
		host_wait(hs(f->lent), -1); /* its error is the stage's holder's to see */
}

void vr_dev_stage_detach(struct vr_dev_file *f)
{
	if (!f->lent)
		return;
	host_wait(hs(f->lent), -1);
	f->lent->file = NULL; /* its later writes: -ESTALE */
	f->lent = NULL;
}
