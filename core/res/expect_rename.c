/* expect_rename.c - expected digests at a rename: every seal below what moves is re-signed for
 * its new path, checked against the sources that cover it there, before anything moves; the
 * sources that moved are re-read in their new place. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A rename re-signs every seal below what moves for its new path, checked
 * against the expected digests that cover it there. Each seal is signed and
 * printed first, with the moved node placed at its new parent and name but
 * not yet linked there; only when every one is made does anything move, so a
 * failure (no memory) leaves the tree, the seals and their texts as they were.
 */
struct res_restage {
	struct vr_node *n;
	char *json; /* the new seal's text; NULL: a source there names other bytes */
	int version;
	char key_id[VR_KEY_ID_HEX + 1];
	uint8_t signature[32];
	/* the source that checked it there (kind "" for none), the path allocated: a staged
	 * file costs a few hundred bytes and its text, so a tree of many moves whole */
	char kind[sizeof(((struct vr_seal_expected *)0)->kind)];
	char key_hint[sizeof(((struct vr_seal_expected *)0)->key_hint)];
	uint8_t subject[sizeof(((struct vr_seal_expected *)0)->subject)];
	char *source;
	char *why, *detail; /* a mismatch's reason and audit detail */
};

void res_restage_free(struct res_restage_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].json);
		free(l->v[i].source);
		free(l->v[i].why);
		free(l->v[i].detail);
	}
	free(l->v);
}

/* Stages the seal of every sealed file at or below N as N is placed now. [T] */
static int restage_below(struct vr_residency *r, struct vr_node *n, struct res_restage_list *l)
{
	res_held(r);

	if (n->is_dir) {
		for (struct vr_node *ch = n->children; ch; ch = ch->next) {
			int ret = restage_below(r, ch, l);

			if (ret)
				return ret;
		}
		return 0;
	}
	if (!n->seal || (n->state != ST_SEALED && n->state != ST_QUARANTINED))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct res_restage *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct res_restage *st = &l->v[l->n];
	struct vr_seal t = *n->seal;
	struct res_expect e;
	int ret;

	memset(st, 0, sizeof(*st));
	st->n = n;
	l->n++; /* res_restage_free frees what it holds, whatever fails below */
	ret = res_seal_prepare(r, n, &t, &e, &st->json);
	if (ret == -EBADMSG) {
		char why[VR_WHY_MAX], detail[VR_SEAL_PATH_MAX + 2 * VR_WHY_MAX];

		res_expect_why(&e, why, sizeof(why));
		res_expect_detail(&e, n->seal, detail, sizeof(detail));
		st->why = strdup(why);
		st->detail = strdup(detail);
		return st->why && st->detail ? 0 : -ENOMEM;
	}
	if (ret == 0 && t.expected.kind[0] && !(st->source = strdup(t.expected.source)))
		ret = -ENOMEM;
	if (ret)
		return ret;
	memcpy(st->kind, t.expected.kind, sizeof(st->kind));
	memcpy(st->key_hint, t.expected.key_hint, sizeof(st->key_hint));
	memcpy(st->subject, t.expected.subject, sizeof(st->subject));
	st->version = t.version;
	memcpy(st->key_id, t.key_id, sizeof(st->key_id));
	memcpy(st->signature, t.signature, sizeof(st->signature));
	return 0;
}

int res_restage_at(struct vr_residency *r, struct vr_node *n, struct vr_node *parent, char *name,
		   struct res_restage_list *l)
{
	struct vr_node *oldp = n->parent;
	char *oldname = n->name;
	int ret;

	n->parent = parent;
	n->name = name;
	ret = restage_below(r, n, l);
	n->parent = oldp;
	n->name = oldname;
	return ret;
}

/* Puts the staged seals in place (nothing is allocated) and audits each. [T] */
void res_restage_commit(struct vr_residency *r, struct res_restage_list *l,
			const struct vr_caller *c)
{
	res_held(r);

	char old[VR_SEAL_PATH_MAX], path[VR_SEAL_PATH_MAX], detail[VR_SEAL_PATH_MAX + 8];

	for (size_t i = 0; i < l->n; i++) {
		struct res_restage *st = &l->v[i];
		struct vr_node *n = st->n;
		struct vr_seal *s = n->seal;

		strcpy(old, s->path);
		if (!st->json) {
			if (n->state == ST_SEALED) {
				res_set_state(r, n, ST_QUARANTINED);
				res_set_check_why(n, st->why);
			}
			/* its seal stays as signed, for the old path; the log names the new */
			res_node_path(n, path, sizeof(path));
			vr_log(LOG_ERR, "%s (renamed from %s) quarantined: %s", path, old,
			       st->detail);
			res_audit(r, "seal_verification_failed", path, c, "failed", s->fsverity,
				  st->detail);
			continue;
		}
		res_node_path(n, s->path, sizeof(s->path)); /* fits: checked before the move */
		memset(&s->expected, 0, sizeof(s->expected));
		memcpy(s->expected.kind, st->kind, sizeof(st->kind));
		memcpy(s->expected.key_hint, st->key_hint, sizeof(st->key_hint));
		memcpy(s->expected.subject, st->subject, sizeof(st->subject));
		if (st->source)
			snprintf(s->expected.source, sizeof(s->expected.source), "%s", st->source);
		s->version = st->version;
		strcpy(s->alg, VR_SEAL_ALG);
		memcpy(s->key_id, st->key_id, sizeof(s->key_id));
		memcpy(s->signature, st->signature, sizeof(s->signature));
		free(n->seal_json);
		n->seal_json = st->json;
		st->json = NULL;
		snprintf(detail, sizeof(detail), "from %s", old);
		res_audit(r, "seal_renamed", s->path, c, "ok", s->fsverity, detail);
	}
	/* a source renamed (or moved) vouches again only once re-read in its place */
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].n->source) {
			res_source_free(l->v[i].n->source);
			l->v[i].n->source = NULL;
		}
}

struct node_list {
	struct vr_node **v;
	size_t n, cap;
};

/* Adds the sealed sources at or below N to L, each referenced. [T] */
static void sources_below(struct vr_node *n, struct node_list *l)
{
	if (n->is_dir) {
		for (struct vr_node *ch = n->children; ch; ch = ch->next)
			sources_below(ch, l);
		return;
	}
	if (n->state != ST_SEALED || !res_is_source_name(n->name))
		return;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 8;
		/* an array of pointers: its element is rightly a pointer's size */
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		struct vr_node **nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv) {
			vr_log(LOG_ERR, "out of memory: a moved %s is not re-read", n->name);
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	n->refs++;
	l->v[l->n++] = n;
}

/* Re-reads the sources (model.sig, SHA256SUMS) at or below N after N moved: each vouches
 * for the files around it in its new place. */
void res_reload_sources(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	struct node_list l = {0};

	res_lock(r);
	sources_below(n, &l);
	res_unlock(r);
	for (size_t i = 0; i < l.n; i++) {
		pthread_rwlock_rdlock(&l.v[i]->io);
		res_source_load(r, l.v[i], c);
		pthread_rwlock_unlock(&l.v[i]->io);
		res_lock(r);
		res_node_put(r, l.v[i]);
		res_unlock(r);
	}
	free(l.v);
}
