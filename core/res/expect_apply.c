/* expect_apply.c - expected digests applied to files already sealed: when a source arrives (it
 * is sealed, or renamed into place) every file below it is checked again, and when files are
 * renamed under sources whose digests their seals lack (shards, BLAKE2b, BLAKE3), their bytes
 * are hashed for it, off the renaming thread. */
#include "log.h"
#include "manifest.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a source's arrival ---- */

/* One file whose standing a source changed, audited once the tree lock is dropped. */
struct applied {
	char *path;
	char *detail;
	bool sealed; /* a refused file the source now covers: sealed; else quarantined */
	uint8_t digest[VR_DIGEST_SIZE];
};

/* A sealed file a source now names whose digest for it is not in its seal yet. */
struct unhashed {
	struct vr_node *f; /* referenced */
	bool sha, b3;	   /* which to take: its SHA-256 (sha256=off), its BLAKE3 */
	bool bytes;	   /* a check of its bytes a source's shards or BLAKE2b need */
};

struct applied_list {
	struct applied *v;
	size_t n, cap;
	size_t resigned, quarantined, sealed;
	size_t disputed;	   /* files it names with other bytes but may not vouch for */
	struct unhashed *unhashed; /* sealed without a digest that a source now names */
	size_t nunhashed, capunhashed;
};

/* Keeps F (referenced) for hashing once the tree lock is dropped: its SHA-256 (SHA), its
 * BLAKE3 (B3), its bytes against shards or a BLAKE2b (BYTES). [T] */
static void note_unhashed(struct applied_list *l, struct vr_node *f, bool sha, bool b3, bool bytes)
{
	if (l->nunhashed == l->capunhashed) {
		size_t ncap = l->capunhashed ? 2 * l->capunhashed : 8;
		struct unhashed *nv = realloc(l->unhashed, ncap * sizeof(*nv));

		if (!nv) {
			vr_log(LOG_ERR, "out of memory: %s is not checked against its source",
			       f->name);
			return;
		}
		l->unhashed = nv;
		l->capunhashed = ncap;
	}
	f->refs++;
	l->unhashed[l->nunhashed++] = (struct unhashed){f, sha, b3, bytes};
}

/* Whether F, sealed (or refused awaiting a source), still lacks a digest U asks for. [T] */
static bool still_unhashed(const struct vr_node *f, const struct unhashed *u)
{
	return (f->state == ST_SEALED || (f->state == ST_REFUSED && f->awaiting_source)) &&
	       f->seal &&
	       (u->bytes || (u->sha && f->seal->no_sha256) || (u->b3 && !f->seal->has_blake3));
}

/* The digests U asks for of F's bytes into SHA and B3, and the verdicts of its bytes (IO held
 * shared). Returns 0 or -errno. */
static int take_unhashed(struct vr_residency *r, struct vr_node *f, const struct unhashed *u,
			 uint8_t *sha, uint8_t *b3)
{
	int ret = u->sha ? vr_dev_sha256(f->dev, sha) : 0;

	if (ret == 0 && u->b3)
		ret = vr_dev_blake3(f->dev, b3);
	return ret == 0 && u->bytes ? res_bytes_settle(r, f, false) : ret;
}

static void recheck(struct vr_residency *r, struct vr_node *f, struct applied_list *l);

/* Audits (and logs) what L changed: files sealed, files quarantined; frees it. */
static void report_applied(struct vr_residency *r, struct applied_list *l,
			   const struct vr_caller *c)
{
	for (size_t i = 0; i < l->n; i++) {
		struct applied *a = &l->v[i];

		if (a->path && a->detail && a->sealed) {
			res_audit(r, "vram_sealed", a->path, c, "ok", a->digest, a->detail);
		} else if (a->path && a->detail) {
			vr_log(LOG_ERR, "%s quarantined: %s", a->path, a->detail);
			res_audit(r, "seal_verification_failed", a->path, c, "failed", a->digest,
				  a->detail);
		}
		free(a->path);
		free(a->detail);
	}
	free(l->v);
}

/*
 * Hashes the files a source now names whose seal lacks the digest it states
 * (a SHA-256 under sha256=off, a BLAKE3), reading them back under their IO
 * lock shared (readers are not held up), records each digest in its seal and
 * checks it like the rest.
 */
static void hash_unhashed(struct vr_residency *r, struct applied_list *l)
{
	for (size_t i = 0; i < l->nunhashed; i++) {
		struct unhashed u = l->unhashed[i];
		struct vr_node *f = u.f;
		uint8_t sha[VR_DIGEST_SIZE], b3[VR_DIGEST_SIZE];

		int ret = -ESTALE;

		/*
		 * The caller holds its source's IO lock: waiting here for another
		 * file's could deadlock with that file's own sealing (two sources
		 * naming each other). A file busy now is being loaded or sealed, and
		 * its seal takes the SHA-256 itself, the source being in place.
		 */
		if (pthread_rwlock_tryrdlock(&f->io) != 0) {
			res_lock(r);
			res_node_put(r, f);
			res_unlock(r);
			continue;
		}
		res_lock(r);
		bool still = still_unhashed(f, &u);

		res_unlock(r);
		/* IO held shared: the bytes cannot be freed or changed meanwhile */
		if (still)
			ret = take_unhashed(r, f, &u, sha, b3);
		res_lock(r);
		if (ret == 0 && still_unhashed(f, &u)) {
			if (u.sha && f->seal->no_sha256) {
				memcpy(f->seal->sha256, sha, sizeof(sha));
				f->seal->no_sha256 = false;
			}
			if (u.b3 && !f->seal->has_blake3) {
				memcpy(f->seal->blake3, b3, sizeof(b3));
				f->seal->has_blake3 = true;
			}
			recheck(r, f, l);
		} else if (still && ret) {
			vr_log(LOG_ERR, "%s: its digest could not be taken for a check: %s",
			       f->name, strerror(-ret));
		}
		res_unlock(r);
		pthread_rwlock_unlock(&f->io);
		res_lock(r);
		res_node_put(r, f);
		res_unlock(r);
	}
	free(l->unhashed);
}

static void note(struct applied_list *l, const struct vr_node *f, const char *detail, bool sealed)
{
	char path[VR_SEAL_PATH_MAX];

	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		struct applied *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return; /* the state changed all the same; only the audit record is lost */
		l->v = nv;
		l->cap = ncap;
	}
	res_node_path(f, path, sizeof(path));
	l->v[l->n].path = strdup(path);
	l->v[l->n].detail = strdup(detail);
	l->v[l->n].sealed = sealed;
	memcpy(l->v[l->n].digest, f->seal->fsverity, VR_DIGEST_SIZE);
	l->n++;
}

/* Re-checks file F against the sources now covering it. [T] */
static void recheck(struct vr_residency *r, struct vr_node *f, struct applied_list *l)
{
	res_held(r);

	struct res_expect e = {.covered = false};
	char detail[2 * VR_WHY_MAX], why[VR_WHY_MAX];
	bool sealed = f->state == ST_SEALED && f->seal;

	if (sealed)
		res_expect_of_seal(f, f->seal, &e);
	if (sealed && (e.need_sha256 || e.need_blake3 || e.need_bytes)) {
		/* a digest a source states is not in the seal (sha256=off, a BLAKE3): taken
		 * after the tree lock is dropped, then checked; a SHA-256 only where a source
		 * states one */
		note_unhashed(l, f, e.need_sha256, e.need_blake3, e.need_bytes);
	} else if (sealed && f->seal->no_sha256 && !e.covered && !e.mismatch) {
		return; /* no source names it: nothing to compare */
	} else if (sealed) {
		int ret = res_place_seal(r, f, f->seal, &e);

		if (ret == -EBADMSG) {
			res_expect_why(&e, why, sizeof(why));
			res_expect_detail(&e, f->seal, detail, sizeof(detail));
			res_set_state(r, f, ST_QUARANTINED);
			res_set_check_why(f, why);
			note(l, f, detail, false);
			l->quarantined++;
		} else if (ret == 0) {
			l->resigned += e.covered;
			l->disputed += !!e.disputed;
		}
	} else if (f->state == ST_REFUSED && f->awaiting_source && f->seal) {
		/* refused under expect=require for want of a source: this one may vouch for it */
		res_expect_of_seal(f, f->seal, &e);
		if ((e.need_blake3 || e.need_bytes) && !e.mismatch) {
			/* then checked again, here */
			note_unhashed(l, f, false, e.need_blake3, e.need_bytes);
		} else if (e.mismatch) {
			f->awaiting_source = false;
			res_expect_why(&e, why, sizeof(why));
			res_set_check_why(f, why);
		} else if (e.covered && res_place_seal(r, f, f->seal, &e) == 0) {
			f->awaiting_source = false;
			res_set_check_why(f, NULL);
			res_set_state(r, f, ST_SEALED);
			note(l, f, "covered by a source that arrived after it", true);
			l->sealed++;
		}
	}
}

static void recheck_below(struct vr_residency *r, struct vr_node *d, const struct vr_node *src,
			  struct applied_list *l)
{
	for (struct vr_node *c = d->children; c; c = c->next) {
		if (c->is_dir)
			recheck_below(r, c, src, l);
		else if (!c->target && c != src)
			recheck(r, c, l);
	}
}

/* Reads source N (SIZE bytes) from the device and parses it into S; a refusal says why. */
static void read_source(struct vr_residency *r, const struct vr_node *n, struct res_source *s,
			uint64_t size)
{
	char *buf = NULL;
	int ret;

	if (size > VR_MANIFEST_MAX_BYTES) {
		snprintf(s->why, sizeof(s->why), "larger than %u MiB", VR_MANIFEST_MAX_BYTES >> 20);
	} else if (!(buf = malloc(size + 1))) {
		snprintf(s->why, sizeof(s->why), "out of memory");
	} else if (size && (ret = vr_dev_read(n->dev, 0, buf, size)) != 0) {
		snprintf(s->why, sizeof(s->why), "cannot be read from the device: %s",
			 strerror(-ret));
	} else if (s->kind == VR_MANIFEST_SUMS) {
		vr_sums_parse(buf, size, &s->m, s->why);
	} else if (s->kind == VR_MANIFEST_B3SUMS) {
		vr_b3sums_parse(buf, size, &s->m, s->why);
	} else {
		/* the keys as they are now (SIGHUP may replace them; the old stay valid) */
		res_lock(r);
		const struct vr_trust *trust = r->cfg.trust;

		res_unlock(r);
		vr_oms_verify(buf, size, trust, &s->m, s->why);
	}
	free(buf);
}

void res_source_load(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	char path[VR_SEAL_PATH_MAX], detail[2 * VR_WHY_MAX];
	struct applied_list l = {0};
	struct res_source *s;
	enum vr_manifest_kind kind;
	uint64_t size;

	res_lock(r);
	kind = n->state == ST_SEALED && !n->target ? vr_manifest_kind_of(n->name) : 0;
	size = n->size;
	res_node_path(n, path, sizeof(path));
	res_unlock(r);
	if (!kind)
		return;
	s = calloc(1, sizeof(*s));
	if (s) {
		static _Atomic uint64_t serials;

		s->kind = kind;
		s->serial = ++serials;
		read_source(r, n, s, size);
	} else {
		s = res_source_oom(kind);
	}

	res_lock(r);
	/* still this sealed source, under its name: otherwise the next arrival applies */
	bool current = n->state == ST_SEALED && vr_manifest_kind_of(n->name) == kind && n->parent;

	if (current) {
		res_source_free(n->source);
		n->source = s;
		recheck_below(r, n->parent, n, &l);
	}
	res_unlock(r);
	if (!current) {
		res_source_free(s);
		return;
	}
	hash_unhashed(r, &l);
	if (s->m) {
		if (kind == VR_MANIFEST_OMS)
			snprintf(detail, sizeof(detail),
				 "signature verified%s: %zu file(s) expected, key %.16s...",
				 s->m->cert_signed ? " (certificate chain to a trusted root)" : "",
				 s->m->count, s->m->key_hint);
		else
			snprintf(detail, sizeof(detail), "%zu file(s) expected", s->m->count);
		vr_log(LOG_INFO,
		       "%s: %s; files already here: %zu re-signed as checked, %zu quarantined, "
		       "%zu sealed now, %zu disputed but not its owner's to vouch for",
		       path, detail, l.resigned, l.quarantined, l.sealed, l.disputed);
		res_audit(r, "expected_digests_loaded", path, c, "ok", NULL, detail);
	} else {
		vr_log(LOG_ERR, "%s refused: %s; it vouches for nothing and verify fails", path,
		       s->why);
		res_audit(r, "expected_digests_refused", path, c, "failed", NULL, s->why);
	}
	report_applied(r, &l, c);
}

/* ---- files renamed under a source ---- */

/* Notes every sealed file at or below N whose seal lacks a digest a source covering it states
 * (its bytes against shards or a BLAKE2b, a BLAKE3, a SHA-256 under sha256=off). [T] */
static void unhashed_below(struct vr_node *n, struct applied_list *l)
{
	struct res_expect e;

	if (n->is_dir) {
		for (struct vr_node *c = n->children; c; c = c->next)
			unhashed_below(c, l);
		return;
	}
	if (n->target || n->state != ST_SEALED || !n->seal)
		return;
	res_expect_of_seal(n, n->seal, &e);
	if (e.need_sha256 || e.need_blake3 || e.need_bytes)
		note_unhashed(l, n, e.need_sha256, e.need_blake3, e.need_bytes);
}

/* A rename's files to hash, on a thread of their own. */
struct moved_check {
	struct vr_residency *r;
	struct applied_list l;
	struct vr_caller c;
	bool has_c;
	bool threaded; /* holds a thread of BG_BY, under the caller's uid (0 without one) */
};

bool res_share_take(struct res_bg_user *by, int n, unsigned total_cap, uid_t uid, unsigned user_cap)
{
	unsigned total = 0, mine = 0;
	int at = -1, mine_at = -1;

	for (int i = 0; i < n; i++) {
		total += by[i].n;
		if (by[i].n && by[i].uid == uid) {
			mine = by[i].n;
			mine_at = i;
		} else if (!by[i].n && at < 0) {
			at = i;
		}
	}
	if (total >= total_cap || mine >= user_cap || (mine_at < 0 && at < 0))
		return false;
	if (mine_at < 0) {
		mine_at = at; /* a free slot */
		by[mine_at].uid = uid;
	}
	by[mine_at].n++;
	return true;
}

bool res_bg_admit(struct res_bg_user by[RES_BG_CHECKS_MAX], uid_t uid)
{
	return res_share_take(by, RES_BG_CHECKS_MAX, RES_BG_CHECKS_MAX, uid,
			      RES_BG_CHECKS_PER_USER);
}

void res_bg_leave_n(struct res_bg_user *by, int n, uid_t uid)
{
	for (int i = 0; i < n; i++)
		if (by[i].n && by[i].uid == uid) {
			by[i].n--;
			return;
		}
}

void res_bg_leave(struct res_bg_user by[RES_BG_CHECKS_MAX], uid_t uid)
{
	res_bg_leave_n(by, RES_BG_CHECKS_MAX, uid);
}

/* Hashes M's files, checks each (a mismatch quarantined) and audits them. No lock held. */
static void *moved_worker(void *arg)
{
	struct moved_check *m = arg;
	struct vr_residency *r = m->r;

	hash_unhashed(r, &m->l);
	report_applied(r, &m->l, m->has_c ? &m->c : NULL);
	res_lock(r);
	if (m->threaded)
		res_bg_leave(r->bg_by, m->has_c ? m->c.uid : 0);
	if (--r->bg_checks == 0)
		pthread_cond_broadcast(&r->bg_done);
	res_unlock(r);
	free(m);
	return NULL;
}

void res_check_moved(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	struct moved_check *m = calloc(1, sizeof(*m));
	pthread_t t;

	if (!m) {
		vr_log(LOG_ERR, "out of memory: files renamed are checked at the next verify");
		return;
	}
	m->r = r;
	if (c) {
		m->c = *c;
		m->has_c = true;
	}
	res_lock(r);
	unhashed_below(n, &m->l);
	if (m->l.nunhashed) {
		r->bg_checks++; /* the worker's, here or on its thread */
		m->threaded = res_bg_admit(r->bg_by, c ? c->uid : 0);
	}
	res_unlock(r);
	if (!m->l.nunhashed) {
		free(m);
		return;
	}
	if (m->threaded && pthread_create(&t, NULL, moved_worker, m) == 0) {
		pthread_detach(t);
		return;
	}
	if (m->threaded) { /* no thread: its place goes back */
		res_lock(r);
		res_bg_leave(r->bg_by, c ? c->uid : 0);
		m->threaded = false;
		res_unlock(r);
	}
	/* past the limits (or no thread): hashed here, so none is left unchecked */
	moved_worker(m);
}

void res_bg_drain(struct vr_residency *r)
{
	res_lock(r);
	while (r->bg_checks)
		res_wait(r, &r->bg_done);
	res_unlock(r);
	pthread_cond_destroy(&r->bg_done);
}
