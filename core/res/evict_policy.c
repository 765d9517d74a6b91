/* evict_policy.c - who evicts: an operator's request (the socket's, vram-evict) and the
 * policy that gives device memory back while other processes need it (-o evict=). */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Files referenced for a run of moves, with what decided their order. */
struct move_list {
	struct vr_node **v;
	size_t n, cap;
};

/* Adds N, referenced; returns 0 or -ENOMEM. [T] */
static int list_add(struct move_list *l, struct vr_node *n)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		/* an array of pointers: its element is rightly a pointer's size */
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		struct vr_node **nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	n->refs++;
	l->v[l->n++] = n;
	return 0;
}

static void list_put(struct vr_residency *r, struct move_list *l)
{
	res_lock(r);
	for (size_t i = 0; i < l->n; i++)
		res_node_put(r, l->v[i]);
	res_unlock(r);
	free(l->v);
}

/* Whether P may evict N: its owner, root, or the mount's owner. [T] */
static bool may_evict(const struct vr_residency *r, const struct vr_node *n,
		      const struct vr_peer *p)
{
	return p->uid == 0 || p->uid == r->cfg.root_uid || p->uid == n->uid;
}

/* The files at or below N that P may move (evict: P's own; restore: those P may read), the
 * others counted in *NOT_YOURS. [T] */
static int gather(struct vr_residency *r, struct vr_node *n, const struct vr_peer *p, bool restore,
		  struct move_list *l, unsigned *not_yours)
{
	if (n->is_dir) {
		for (struct vr_node *c = n->children; c; c = c->next) {
			int ret = gather(r, c, p, restore, l, not_yours);

			if (ret)
				return ret;
		}
		return 0;
	}
	if (n->target || n->state != ST_SEALED || n->evicted != restore)
		return 0;
	if (restore ? !res_may_read(n, p) : !may_evict(r, n, p)) {
		(*not_yours)++;
		return 0;
	}
	return list_add(l, n);
}

/* The files PATH names for P's request, referenced, into L; returns 0 or -errno, WHY set. */
static int targets(struct vr_residency *r, const char *path, const struct vr_peer *p, bool restore,
		   struct move_list *l, unsigned *not_yours, char *why, size_t cap)
{
	struct res_lookup lk;
	int ret;

	res_lock(r);
	ret = res_resolve_as(r, path, p, &lk);
	if (ret) {
		snprintf(why, cap, "%s",
			 ret == -EACCES ? "a folder on the way the caller may not search"
					: "no such file or folder");
	} else if (lk.gen || lk.kind == VR_KIND_LINK) {
		ret = -EINVAL;
		snprintf(why, cap, "not a file or a folder of files");
	} else if (lk.kind == VR_KIND_FILE && !restore && !may_evict(r, lk.node, p)) {
		ret = -EPERM;
		snprintf(why, cap, "only the file's owner or root may evict it");
	} else if (lk.kind == VR_KIND_FILE && restore && !res_may_read(lk.node, p)) {
		ret = -EACCES;
		snprintf(why, cap, "the caller may not read it");
	} else if (lk.kind == VR_KIND_FILE && lk.node->state != ST_SEALED) {
		ret = -EINVAL;
		snprintf(why, cap, "not sealed: only sealed files are evicted");
	} else if (lk.kind == VR_KIND_FILE) {
		ret = list_add(l, lk.node);
	} else {
		ret = gather(r, lk.node, p, restore, l, not_yours);
	}
	res_unlock(r);
	return ret;
}

int vr_res_evict(struct vr_residency *r, const char *path, const struct vr_peer *p, bool restore,
		 unsigned *moved, char *why, size_t cap)
{
	struct vr_caller c = {.uid = p->uid, .gid = p->gid, .pid = p->pid, .tgid = p->pid};
	struct move_list l = {0};
	char reason[64], one[VR_WHY_MAX] = "";
	unsigned done = 0, busy = 0, not_yours = 0;
	int ret, first = 0, hard = 0;

	*why = '\0';
	if (!r->cfg.evict_store) {
		snprintf(why, cap, "eviction is not available on this mount");
		return -EOPNOTSUPP;
	}
	ret = targets(r, path, p, restore, &l, &not_yours, why, cap);
	snprintf(reason, sizeof(reason), "asked by uid %u", (unsigned)p->uid);
	for (size_t i = 0; ret == 0 && i < l.n; i++) {
		int e = restore ? res_restore_node(r, l.v[i], &c, reason, one, sizeof(one))
				: res_evict_node(r, l.v[i], 1, &c, reason, false, one, sizeof(one));

		done += e == 0;
		busy += e == -EBUSY;
		if (e && e != -EALREADY && !first) {
			first = e;
			snprintf(why, cap, "%s", one);
		}
		if (e && e != -EALREADY && e != -EBUSY && !hard)
			hard = e; /* no room, or a check failed: WHY says it when it came first */
	}
	bool single = l.n == 1 && !not_yours;

	list_put(r, &l);
	if (ret == 0 && single && first) {
		ret = first;
	} else if (ret == 0 && hard) {
		/* a folder: the failure wins over what was left, and both are said */
		size_t len = strlen(why);

		ret = hard;
		if (busy || not_yours)
			snprintf(why + len, cap - len, "; %u open or mapped, %u not the caller's",
				 busy, not_yours);
	} else if (ret == 0 && (busy || not_yours)) {
		snprintf(why, cap, "%u left where they are: %u open or mapped, %u not the caller's",
			 busy + not_yours, busy, not_yours);
	}
	if (ret)
		vr_log(LOG_INFO, "%s of %s by pid %d (uid %u): %s (%s)",
		       restore ? "restore" : "eviction", path[0] == '/' ? path + 1 : path,
		       (int)p->pid, (unsigned)p->uid, why, strerror(-ret));
	if (ret == -EPERM || ret == -EACCES)
		res_audit(r, restore ? "vram_restored" : "vram_evicted",
			  path[0] == '/' ? path + 1 : path, &c, "denied", NULL, why);
	*moved = done;
	return ret;
}

/* A size for the log: "1.25 GiB", or "16.0 MiB" under a GiB. */
struct size_text {
	char s[32];
};

static struct size_text sz(uint64_t b)
{
	struct size_text t;

	if (b >= 1ULL << 30)
		snprintf(t.s, sizeof(t.s), "%.2f GiB", (double)b / (double)(1ULL << 30));
	else
		snprintf(t.s, sizeof(t.s), "%.1f MiB", (double)b / (double)(1ULL << 20));
	return t;
}

/* Whether N may go now by the policy: sealed, nobody holds it, resident long enough. [T] */
static bool evictable(const struct vr_residency *r, const struct vr_node *n, double now)
{
	return !n->is_dir && !n->target && n->state == ST_SEALED && !n->evicted && n->refs == 1 &&
	       !n->leases && !n->revoked && now - n->resident_since >= r->cfg.evict.min_resident;
}

static void walk(const struct vr_residency *r, struct vr_node *n, double now, bool restore,
		 struct move_list *l)
{
	for (struct vr_node *c = n->children; c; c = c->next) {
		if (c->is_dir)
			walk(r, c, now, restore, l);
		else if (restore ? c->evicted && c->evicted_by_policy && c->state == ST_SEALED
				 : evictable(r, c, now))
			list_add(l, c); /* without memory, this step sees fewer files */
	}
}

static double last_use(const struct vr_node *n)
{
	return n->used_at > n->resident_since ? n->used_at : n->resident_since;
}

static int by_use(const void *a, const void *b)
{
	double x = last_use(*(struct vr_node *const *)a), y = last_use(*(struct vr_node *const *)b);

	return (x > y) - (x < y);
}

static int by_seq(const void *a, const void *b)
{
	uint64_t x = (*(struct vr_node *const *)a)->evict_seq;
	uint64_t y = (*(struct vr_node *const *)b)->evict_seq;

	return (x > y) - (x < y);
}

/* Evicts the least recently used files until NEED bytes are freed; FREE and the sample's numbers
 * go to the log. */
static void evict_for(struct vr_residency *r, const struct vr_res_pressure *s, uint64_t free,
		      uint64_t need)
{
	struct move_list l = {0};
	struct vr_caller c = {0};
	char why[VR_WHY_MAX], reason[200];
	uint64_t freed = 0;
	unsigned n = 0;

	res_lock(r);
	r->ev.last_pressure = s->now;
	walk(r, r->root, s->now, false, &l);
	bool said = r->ev.stuck_said;

	res_unlock(r);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_use); // NOLINT(bugprone-sizeof-expression)
	snprintf(reason, sizeof(reason),
		 "policy: %s free, under the %s kept free, with %u other process(es) using %s",
		 sz(free).s, sz(r->cfg.evict.keep_free).s, s->others, sz(s->others_bytes).s);
	for (size_t i = 0; i < l.n && freed < need; i++) {
		res_lock(r);
		uint64_t held = l.v[i]->held;

		res_unlock(r);
		if (res_evict_node(r, l.v[i], 1, &c, reason, true, why, sizeof(why)) == 0) {
			freed += held;
			n++;
		}
	}
	list_put(r, &l);
	res_lock(r);
	r->ev.stuck_said = freed < need;
	res_unlock(r);
	if (freed < need && !said)
		vr_log(LOG_WARNING,
		       "%s: %u file(s) evicted (%s); nothing more may go (open, mapped, or "
		       "resident less than %.0f s)",
		       reason, n, sz(freed).s, r->cfg.evict.min_resident);
}

/* Restores what the policy evicted, oldest eviction first, while ROOM bytes last. */
static void restore_within(struct vr_residency *r, const struct vr_res_pressure *s, uint64_t free,
			   uint64_t room)
{
	struct move_list l = {0};
	struct vr_caller c = {0};
	char why[VR_WHY_MAX], reason[200];

	res_lock(r);
	walk(r, r->root, s->now, true, &l);
	res_unlock(r);
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), by_seq); // NOLINT(bugprone-sizeof-expression)
	snprintf(reason, sizeof(reason),
		 "policy: %s free, %u other process(es) using %s, no pressure for %.0f s",
		 sz(free).s, s->others, sz(s->others_bytes).s, r->cfg.evict.restore_delay);
	for (size_t i = 0; i < l.n; i++) {
		res_lock(r);
		uint64_t size = l.v[i]->size;

		res_unlock(r);
		if (size > room || res_restore_node(r, l.v[i], &c, reason, why, sizeof(why)) != 0)
			break;
		room -= size;
	}
	list_put(r, &l);
}

/* Into *BEST, the file below N the policy evicted first among those still evicted. [T] */
static void oldest_in(const struct vr_node *n, const struct vr_node **best)
{
	for (const struct vr_node *c = n->children; c; c = c->next) {
		if (c->is_dir)
			oldest_in(c, best);
		else if (c->evicted && c->evicted_by_policy && c->state == ST_SEALED &&
			 (!*best || c->evict_seq < (*best)->evict_seq))
			*best = c;
	}
}

/* Whether the policy has a file to restore; *SIZE gets the next one's bytes. [T] */
static bool next_restore(const struct vr_node *root, uint64_t *size)
{
	const struct vr_node *best = NULL;

	oldest_in(root, &best);
	if (best)
		*size = best->size;
	return best != NULL;
}

void vr_res_evict_state(struct vr_residency *r, const char *text)
{
	res_lock(r);
	snprintf(r->ev.policy_state, sizeof(r->ev.policy_state), "%s", text);
	res_unlock(r);
}

void vr_res_evict_tick(struct vr_residency *r, const struct vr_res_pressure *s)
{
	const struct vr_res_evict_policy *p = &r->cfg.evict;
	struct vr_device_info info;
	uint64_t ours, left, free;

	if (!p->on || !r->cfg.evict_store || res_device_info(r, &info) != 0)
		return;
	/* what NVML says is free, or what others and our files leave, whichever is less: NVML's
	 * view lags our own frees by nothing, but a device shared by several daemons' mocks, or
	 * a test double, may not see our files */
	ours = info.total_bytes - info.free_bytes;
	/* saturating: NVML's numbers are not trusted to be sane */
	left = s->others_bytes < s->total && ours < s->total - s->others_bytes
		   ? s->total - s->others_bytes - ours
		   : 0;
	free = s->free < left ? s->free : left;
	if (s->others && free < p->keep_free) {
		evict_for(r, s, free, p->keep_free - free);
		return;
	}
	uint64_t next = 0;

	res_lock(r);
	r->ev.stuck_said = false;
	bool pending = r->ev.files && next_restore(r->root, &next);

	/* the next restore would bring the pressure back: it counts as pressure, so a process
	 * that comes and goes keeps the files where they went (no thrash) */
	if (pending && free < p->keep_free + p->margin + next)
		r->ev.last_pressure = s->now;
	bool due = pending && free >= p->keep_free + p->margin + next &&
		   s->now - r->ev.last_pressure >= p->restore_delay;

	res_unlock(r);
	/* no more than the backend itself has room for: a restore that cannot fit would fail,
	 * and be logged and audited, at every step */
	uint64_t room = due ? free - p->keep_free - p->margin : 0;

	if (due)
		restore_within(r, s, free, room < info.free_bytes ? room : info.free_bytes);
}
