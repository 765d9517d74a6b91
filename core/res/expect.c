/* expect.c - expected digests in the tree: sources (model.sig, SHA256SUMS, checksums.blake3),
 * what they cover, and the checks made when a file is sealed, when a source arrives and by
 * verify. */
#include "log.h"
#include "manifest.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/memops.h>

/* what a source holds when not even its own record could be allocated: refused, saying so
 * (a source that silently vouched for nothing would let its directory seal unchecked) */
static struct res_source no_memory[] = {
    {.kind = VR_MANIFEST_SUMS, .why = "out of memory"},
    {.kind = VR_MANIFEST_OMS, .why = "out of memory"},
    {.kind = VR_MANIFEST_B3SUMS, .why = "out of memory"},
};

void res_source_free(struct res_source *s)
{
	if (s && (s < no_memory || s >= no_memory + RES_SOURCES_MAX)) {
		vr_manifest_free(s->m);
		free(s);
	}
}

/* N's source, when N is a sealed file that is one. [T] */
static const struct res_source *live_source(const struct vr_node *n)
{
	return n && !n->is_dir && !n->target && n->state == ST_SEALED ? n->source : NULL;
}

int res_sources_in(const struct vr_node *d, const struct vr_node *out[RES_SOURCES_MAX])
{
	static const char *const names[RES_SOURCES_MAX] = {VR_OMS_NAME, VR_SUMS_NAME,
							   VR_B3SUMS_NAME};
	int k = 0;

	for (int i = 0; i < RES_SOURCES_MAX; i++) {
		const struct vr_node *n = res_child(d, names[i]);

		if (live_source(n))
			out[k++] = n;
	}
	return k;
}

bool res_is_source_name(const char *name)
{
	return vr_manifest_kind_of(name) != 0;
}

bool res_may_vouch(const struct vr_node *src, const struct vr_node *d, const struct vr_node *n)
{
	return src->uid == 0 || src->uid == d->uid || src->uid == n->uid;
}

/* A source that may not vouch for N: only whether it names other bytes (its DIGEST) is
 * kept. [T] */
static void note_dispute(const struct vr_node *src, const char *rel, const uint8_t *digest,
			 struct res_expect *e)
{
	const struct vr_manifest *m = src->source->m;
	const struct vr_manifest_entry *en = m ? vr_manifest_find(m, rel) : NULL;

	if (en && digest && !e->disputed && !memeql_sec(en->digest, digest, VR_DIGEST_SIZE))
		e->disputed = src;
}

/*
 * What source SRC, which may vouch for N, says of N where only N's bytes can
 * answer (EN lists shards or a BLAKE2b; NULL: N is empty and a shards
 * statement lists no shard for it, as model_signing cuts none): the verdict
 * N keeps for these bytes (FSV, NULL when not known) and this entry, else
 * NEED_BYTES. [T]
 */
static void bytes_verdict(const struct vr_node *n, const struct vr_node *src,
			  const struct vr_manifest_entry *en, const uint8_t *fsv,
			  struct res_expect *e)
{
	const struct res_source *s = src->source;
	bool ok = true;

	if (en && fsv && n->bytes_serial == s->serial && n->bytes_key == en &&
	    memeql_sec(n->bytes_fsv, fsv, VR_DIGEST_SIZE)) {
		ok = n->bytes_ok;
	} else if (en) {
		if (!e->need_bytes) {
			e->need_bytes = true;
			e->bytes_src = src;
			e->bytes_entry = en;
		}
		return;
	}
	if (!ok && !e->mismatch) {
		e->mismatch = true;
		e->src = src;
		e->want = NULL;
		e->want_blake3 = false;
		e->want_bytes = true;
		snprintf(e->bytes_why, sizeof(e->bytes_why), "%s",
			 n->bytes_why ? n->bytes_why : "its bytes differ");
	} else if (ok && (!e->covered || s->kind == VR_MANIFEST_OMS)) {
		e->oms_covered |= s->kind == VR_MANIFEST_OMS;
		if (e->covered)
			return;
		e->covered = true;
		if (!e->mismatch) {
			e->src = src;
			e->want = NULL;
			e->want_blake3 = false;
			e->want_bytes = true;
		}
	}
}

static void expect_of(const struct vr_node *n, const uint8_t *sha, const uint8_t *b3,
		      const uint8_t *fsv, struct res_expect *e);

void res_expect_of_seal(const struct vr_node *n, const struct vr_seal *s, struct res_expect *e)
{
	expect_of(n, s->no_sha256 ? NULL : s->sha256, s->has_blake3 ? s->blake3 : NULL, s->fsverity,
		  e);
}

void res_expect_of(const struct vr_node *n, const uint8_t *sha, const uint8_t *b3,
		   struct res_expect *e)
{
	expect_of(n, sha, b3, NULL, e);
}

void res_expect_bytes_of(const struct vr_node *n, const struct vr_seal *s, struct res_expect *e)
{
	/* no fs-verity digest: no verdict kept for the bytes is taken */
	expect_of(n, s->no_sha256 ? NULL : s->sha256, s->has_blake3 ? s->blake3 : NULL, NULL, e);
}

/* res_expect_of, with the fs-verity digest FSV of N's bytes (NULL: not known) for the
 * verdicts only bytes give. [T] */
static void expect_of(const struct vr_node *n, const uint8_t *sha, const uint8_t *b3,
		      const uint8_t *fsv, struct res_expect *e)
{
	char path[VR_SEAL_PATH_MAX];

	memset(e, 0, sizeof(*e));
	if (res_node_path(n, path, sizeof(path)))
		return;
	for (const struct vr_node *d = n->parent; d; d = d->parent) {
		const char *rel = path + res_path_len(d);
		const struct vr_node *srcs[RES_SOURCES_MAX];
		int k = res_sources_in(d, srcs);

		for (int i = 0; i < k; i++) {
			const struct res_source *s = srcs[i]->source;
			/* a checksums.blake3, or a signature whose statement lists BLAKE3 */
			bool is_b3 =
			    s->m ? s->m->hash == VR_HASH_BLAKE3 : vr_manifest_blake3(s->kind);
			const uint8_t *digest = is_b3 ? b3 : sha;
			const struct vr_manifest_entry *en;

			if (srcs[i] == n)
				continue; /* a source does not vouch for itself */
			if (!res_may_vouch(srcs[i], d, n)) {
				note_dispute(srcs[i], rel, digest, e);
				continue;
			}
			if (!s->m) {
				e->refused_scope = true;
				continue;
			}
			if (!e->scope)
				e->scope = srcs[i];
			if (s->kind == VR_MANIFEST_OMS && !e->oms_src)
				e->oms_src = srcs[i];
			e->oms_scope |= s->kind == VR_MANIFEST_OMS;
			en = vr_manifest_find(s->m, rel);
			if (!en && (vr_manifest_ignored(s->m, rel) || !s->m->shard_size ||
				    n->is_dir || n->size != 0)) {
				e->ignored |= vr_manifest_ignored(s->m, rel);
				continue;
			}
			if (!en || !vr_manifest_seal_comparable(s->m)) {
				bytes_verdict(n, srcs[i], en, fsv, e);
				continue;
			}
			if (is_b3 && !b3) {
				/* its digest is not known yet: the caller takes it, then asks again
				 */
				e->need_blake3 = true;
			} else if (digest && !memeql_sec(en->digest, digest, VR_DIGEST_SIZE)) {
				if (!e->mismatch) {
					e->mismatch = true;
					e->src = srcs[i];
					e->want = en->digest;
					e->want_blake3 = is_b3;
					e->want_bytes = false;
				}
			} else if (!e->covered || s->kind == VR_MANIFEST_OMS) {
				e->oms_covered |= s->kind == VR_MANIFEST_OMS;
				if (e->covered)
					continue;
				e->covered = true;
				if (!e->mismatch) {
					e->src = srcs[i];
					e->want = en->digest;
					e->want_blake3 = is_b3;
					e->want_bytes = false;
				}
			}
		}
	}
}

bool res_expect_unexpected(const struct vr_node *n, const struct res_expect *e)
{
	if (!e->scope || e->mismatch || e->ignored)
		return false;
	/* under a signature only the signature vouches: a SHA256SUMS beside it (anyone's own)
	 * does not make unsigned bytes part of a signed model, nor is it part of it itself, as
	 * vram-seal verify-model says too (the signature's own file is not under its scope) */
	if (e->oms_scope)
		return !e->oms_covered && !e->need_bytes;
	return !e->covered && !e->need_blake3 && !e->need_bytes && !res_is_source_name(n->name);
}

/* Fills X from E: the source that names these bytes, or nothing. [T] */
static void fill_expected(const struct res_expect *e, struct vr_seal_expected *x)
{
	const struct res_source *s;

	memset(x, 0, sizeof(*x));
	if (!e->covered || e->mismatch)
		return;
	s = e->src->source;
	if (res_node_path(e->src, x->source, sizeof(x->source))) {
		memset(x, 0, sizeof(*x));
		return;
	}
	if (s->kind == VR_MANIFEST_OMS) {
		strcpy(x->kind, "oms");
		memcpy(x->key_hint, s->m->key_hint, sizeof(x->key_hint));
		memcpy(x->subject, s->m->subject, sizeof(x->subject));
	} else {
		strcpy(x->kind, vr_manifest_blake3(s->kind) ? "blake3sums" : "sha256sums");
	}
}

int res_seal_place_fields(const struct vr_node *n, struct vr_seal *s, const struct res_expect *e)
{
	/* under sha256=off only a BLAKE3 can have been compared */
	if (s->no_sha256 && !(e->covered && (e->want_blake3 || e->want_bytes)))
		memset(&s->expected, 0, sizeof(s->expected));
	else
		fill_expected(e, &s->expected);
	return res_node_path(n, s->path, sizeof(s->path));
}

int res_seal_prepare(struct vr_residency *r, const struct vr_node *n, struct vr_seal *s,
		     struct res_expect *e, char **json)
{
	res_held(r);

	int ret;

	res_expect_of_seal(n, s, e);
	if (e->mismatch)
		return -EBADMSG;
	ret = res_seal_place_fields(n, s, e);
	if (ret == 0)
		ret = vr_seal_sign(s, r->cfg.keys);
	return ret ? ret : vr_seal_to_json(s, json);
}

int res_place_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
		   struct res_expect *e)
{
	res_held(r);

	struct vr_seal t = *s;
	char *json = NULL;
	int ret = res_seal_prepare(r, n, &t, e, &json);

	if (ret)
		return ret;
	/* the seal and its text change together, or neither does */
	*s = t;
	free(n->seal_json);
	n->seal_json = json;
	return 0;
}

void res_expect_why(const struct res_expect *e, char *buf, size_t cap)
{
	char src[VR_SEAL_PATH_MAX];

	if (!e->src || res_node_path(e->src, src, sizeof(src)))
		snprintf(src, sizeof(src), "an expected digest");
	if (e->want_bytes)
		snprintf(buf, cap, "%s from %s", e->bytes_why, src);
	else
		snprintf(buf, cap, "%s differs from %s", e->want_blake3 ? "blake3" : "sha256", src);
}

void res_expect_detail(const struct res_expect *e, const struct vr_seal *s, char *buf, size_t cap)
{
	char want_hex[2 * VR_DIGEST_SIZE + 1], got_hex[2 * VR_DIGEST_SIZE + 1], why[VR_WHY_MAX];

	res_expect_why(e, why, sizeof(why));
	if (!e->want) {
		snprintf(buf, cap, "%s", why);
		return;
	}
	vr_hex(e->want, VR_DIGEST_SIZE, want_hex);
	vr_hex(e->want_blake3 ? s->blake3 : s->sha256, VR_DIGEST_SIZE, got_hex);
	snprintf(buf, cap, "%s: expected %.16s..., got %.16s...", why, want_hex, got_hex);
}

/* Sets N's check reason (REFUSED, or QUARANTINED for an expected digest). [T] */
void res_set_check_why(struct vr_node *n, const char *why)
{
	free(n->check_why);
	n->check_why = why ? strdup(why) : NULL;
}

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
	if (sealed && ((f->seal->no_sha256 && e.covered) || e.need_blake3 || e.need_bytes)) {
		/* a digest a source states is not in the seal (sha256=off, a BLAKE3): taken
		 * after the tree lock is dropped, then checked; under sha256=off a file a source
		 * names gets its SHA-256 too */
		note_unhashed(l, f, f->seal->no_sha256, e.need_blake3, e.need_bytes);
	} else if (sealed && f->seal->no_sha256) {
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
		s = &no_memory[kind == VR_MANIFEST_OMS ? 1 : kind == VR_MANIFEST_B3SUMS ? 2 : 0];
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
	for (size_t i = 0; i < l.n; i++) {
		if (!l.v[i].path || !l.v[i].detail) {
			free(l.v[i].path);
			free(l.v[i].detail);
			continue;
		}
		if (l.v[i].sealed) {
			res_audit(r, "vram_sealed", l.v[i].path, c, "ok", l.v[i].digest,
				  l.v[i].detail);
		} else {
			vr_log(LOG_ERR, "%s quarantined: %s", l.v[i].path, l.v[i].detail);
			res_audit(r, "seal_verification_failed", l.v[i].path, c, "failed",
				  l.v[i].digest, l.v[i].detail);
		}
		free(l.v[i].path);
		free(l.v[i].detail);
	}
	free(l.v);
}

const char *res_source_refusal(const struct vr_node *n)
{
	const struct res_source *s = live_source(n);

	return s && !s->m ? s->why : NULL;
}

/* ---- status ---- */

static void count_below(const struct vr_node *d, struct res_expect_counts *k)
{
	for (const struct vr_node *c = d->children; c; c = c->next) {
		const struct res_source *s = live_source(c);

		if (c->is_dir) {
			count_below(c, k);
			continue;
		}
		if (s && s->m)
			k->sources++;
		else if (s)
			k->sources_refused++;
		if (c->state == ST_SEALED && c->seal && c->seal->expected.kind[0])
			k->checked++;
	}
}

void res_expect_counts(struct vr_residency *r, struct res_expect_counts *k)
{
	res_held(r);

	memset(k, 0, sizeof(*k));
	count_below(r->root, k);
}

void vr_res_set_trust(struct vr_residency *r, const struct vr_trust *trust)
{
	res_lock(r);
	r->cfg.trust = trust;
	res_unlock(r);
}
