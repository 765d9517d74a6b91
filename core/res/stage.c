/* stage.c - pinned staging lent to a load: slots the device fills the bus from and the hash
 * thread reads in place, each handed out again only once both are done with it. */
#include "res_private.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

/* The most stages one user (not root) holds at once: a quarter of the staging's, one at least. */
static unsigned user_stages(const struct vr_residency *r)
{
	unsigned n = r->cfg.backend->staging.stages / 4;

	return n ? n : 1;
}

/* Takes a place among the stages UID may hold, waiting for one of its own loads to give its
 * stage back when it holds its most (others' loads are not waited for). [T] */
static void stage_place(struct vr_residency *r, uid_t uid)
{
	res_held(r);

	unsigned cap = uid == 0 ? VR_STAGING_STAGES_MAX : user_stages(r);

	/* the device's pool bounds the stages in all: the table only counts them by user */
	while (!res_share_take(r->stage_by, VR_STAGING_STAGES_MAX, UINT_MAX, uid, cap))
		res_wait(r, &r->stage_back);
}

static void stage_leave(struct vr_residency *r, uid_t uid)
{
	res_lock(r);
	res_bg_leave_n(r->stage_by, VR_STAGING_STAGES_MAX, uid);
	pthread_cond_broadcast(&r->stage_back);
	res_unlock(r);
}

int vr_res_stage_open(struct vr_residency *r, struct vr_handle *h, const struct vr_caller *c,
		      struct vr_res_stage **out)
{
	struct vr_node *n = h->node;
	struct vr_res_stage *s;
	int ret;

	if (!n || !h->writer)
		return -EBADF;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->uid = c ? c->uid : 0;
	res_lock(r);
	stage_place(r, s->uid);
	res_unlock(r);
	pthread_rwlock_wrlock(&n->io);
	res_lock(r);
	/* removed (its memory gone with it) or failed while the import began: as a write */
	ret = n->state == ST_REMOVED || !n->dev ? -ESTALE : n->state == ST_FAILED ? n->load_err : 0;
	res_unlock(r);
	if (ret == 0)
		ret = vr_dev_stage_new(n->dev, &s->dev);
	pthread_rwlock_unlock(&n->io);
	if (ret) {
		stage_leave(r, s->uid);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void res_stage_lend(struct vr_node *n, struct vr_res_stage *s, const void *slot, uint64_t ticket)
{
	res_io_held(n);

	int at = -1;

	for (int i = 0; i < RES_STAGE_LENT; i++) {
		if (s->lent[i].buf == slot) {
			at = i;
			break;
		}
		if (!s->lent[i].buf && at < 0)
			at = i;
	}
	if (at < 0) { /* no room to note it (a backend with more slots): hashed now */
		vr_sha256_async_wait(n->wsha, ticket);
		return;
	}
	s->lent[at].buf = slot;
	s->lent[at].ticket = ticket;
	s->lent[at].epoch = n->hash_epoch;
}

/* Waits until N's hasher is done with SLOT (every slot when NULL). IO held exclusively. */
static void hashed(struct vr_node *n, struct vr_res_stage *s, const void *slot)
{
	res_io_held(n);

	for (int i = 0; i < RES_STAGE_LENT; i++) {
		if (!s->lent[i].buf || (slot && s->lent[i].buf != slot))
			continue;
		/* a hasher of an earlier epoch is gone, its thread joined: nothing to wait for */
		if (n->wsha && s->lent[i].epoch == n->hash_epoch)
			vr_sha256_async_wait(n->wsha, s->lent[i].ticket);
		s->lent[i].buf = NULL;
	}
}

int vr_res_stage_buf(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
		     void **buf, size_t *cap, const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	void *slot;
	int ret;

	pthread_rwlock_wrlock(&n->io);
	ret = vr_dev_stage_slot(s->dev, &slot, &s->cap);
	if (ret == 0) {
		hashed(n, s, slot);
		s->cur = slot;
		*buf = slot;
		*cap = s->cap;
	} else {
		res_load_failed(r, n, ret, c);
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

int vr_res_stage_close(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
		       const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret;

	if (!s)
		return 0;
	pthread_rwlock_wrlock(&n->io);
	/* the slots go back to the device's pool: nobody may read them after */
	hashed(n, s, NULL);
	ret = vr_dev_stage_free(s->dev);
	if (ret)
		res_load_failed(r, n, ret, c);
	pthread_rwlock_unlock(&n->io);
	stage_leave(r, s->uid);
	free(s);
	return ret;
}
