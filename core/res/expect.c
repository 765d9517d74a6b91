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

struct res_source *res_source_oom(enum vr_manifest_kind kind)
{
	return &no_memory[kind == VR_MANIFEST_OMS ? 1 : kind == VR_MANIFEST_B3SUMS ? 2 : 0];
}

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

bool res_expect_unchecked(const struct vr_node *n)
{
	struct res_expect e;

	if (n->state != ST_SEALED || !n->seal)
		return false;
	res_expect_of_seal(n, n->seal, &e);
	return e.need_sha256 || e.need_blake3 || e.need_bytes;
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
			if (!is_b3 && !sha)
				e->need_sha256 = true; /* the caller takes it (sha256=off) */
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
