/* vnames.c - the generated entries: one table of their names, places, contents and sizes. */
#include "vnames.h"
#include "name.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum place {
	EVERY_DIR,   /* NAME in every directory; its owner is that directory */
	ROOT_ONLY,   /* NAME in the root alone; its owner is the root */
	BESIDE_FILE, /* "<file>" NAME beside each file it is present for; its owner is the file */
};

struct res_vname {
	const char *name; /* the whole name, or for BESIDE_FILE the suffix */
	enum place place;
	enum vr_kind kind;
	uint64_t ino; /* or'ed onto the owner's inode number (ROOT_ONLY: the number itself) */
	/* whether it exists for OWNER ([T]); NULL: wherever it is placed */
	bool (*present)(const struct vr_node *owner);
	/* the size stat reports ([T]); NULL: 0, the text being made at open (direct_io) */
	size_t (*size)(const struct vr_node *owner);
	/* the text, made at open with no lock held and the owner referenced */
	int (*text)(struct vr_residency *r, struct vr_node *owner, const struct vr_caller *c,
		    char **text, size_t *len, int *tail_err);
};

static bool seal_present(const struct vr_node *f)
{
	return !f->is_dir && f->seal_json && (f->state == ST_SEALED || f->state == ST_QUARANTINED);
}

static size_t seal_size(const struct vr_node *f)
{
	return strlen(f->seal_json);
}

static int seal_text(struct vr_residency *r, struct vr_node *f, const struct vr_caller *c,
		     char **text, size_t *len, int *tail_err)
{
	(void)c;
	*tail_err = 0;
	return res_seal_text(r, f, text, len);
}

static int status_text(struct vr_residency *r, struct vr_node *root, const struct vr_caller *c,
		       char **text, size_t *len, int *tail_err)
{
	(void)root;
	(void)c;
	*tail_err = 0;
	return res_status_text(r, text, len);
}

static int metrics_text(struct vr_residency *r, struct vr_node *root, const struct vr_caller *c,
			char **text, size_t *len, int *tail_err)
{
	(void)root;
	(void)c;
	*tail_err = 0;
	return res_metrics_text(r, text, len);
}

static const struct res_vname table[] = {
    {"verify", EVERY_DIR, VR_KIND_VERIFY, INO_VERIFY, NULL, NULL, res_verify_text},
    {"status", ROOT_ONLY, VR_KIND_STATUS, INO_STATUS, NULL, NULL, status_text},
    {"metrics", ROOT_ONLY, VR_KIND_STATUS, INO_METRICS, NULL, NULL, metrics_text},
    {VR_SEAL_SUFFIX, BESIDE_FILE, VR_KIND_SEAL, INO_SEAL, seal_present, seal_size, seal_text},
};
#define NVNAMES (sizeof(table) / sizeof(table[0]))

/* Whether NAME (LEN bytes) ends with SUFFIX and has something before it. */
static bool has_suffix(const char *name, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);

	return len > sl && memcmp(name + len - sl, suffix, sl) == 0;
}

static bool is_name(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* What the table says of NAME in a directory (the root when AT_ROOT). */
static int reserved(const char *name, size_t len, bool at_root)
{
	for (size_t i = 0; i < NVNAMES; i++) {
		const struct res_vname *v = &table[i];

		if (v->place == BESIDE_FILE) {
			/* the bare suffix too: it would read as the seal of a nameless file */
			if (has_suffix(name, len, v->name) || is_name(name, len, v->name))
				return -EPERM;
		} else if (is_name(name, len, v->name) && (v->place == EVERY_DIR || at_root)) {
			return -EEXIST;
		}
	}
	return 0;
}

int res_name_creatable(const char *name, size_t len, bool at_root, bool is_file)
{
	int ret = vr_name_syntax(name, len);

	if (ret == 0)
		ret = reserved(name, len, at_root);
	if (ret == 0 && is_file && len > VR_FILE_NAME_MAX)
		ret = -ENAMETOOLONG;
	return ret;
}

/* Resolves a last component that no real entry of DIR has. [T] Returns 0 or -ENOENT. */
int res_vname_find(struct vr_node *dir, bool at_root, const char *name, size_t len,
		   struct res_lookup *l)
{
	for (size_t i = 0; i < NVNAMES; i++) {
		const struct res_vname *v = &table[i];
		struct vr_node *owner = NULL;

		if (v->place == BESIDE_FILE) {
			if (!has_suffix(name, len, v->name))
				continue;
			size_t base = len - strlen(v->name);

			/* DIR is a resolved directory, never NULL */
			// NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
			for (struct vr_node *c = dir->children; c && !owner; c = c->next)
				if (strlen(c->name) == base && memcmp(c->name, name, base) == 0)
					owner = c;
		} else if (is_name(name, len, v->name) && (v->place == EVERY_DIR || at_root)) {
			owner = dir;
		}
		if (owner && (!v->present || v->present(owner))) {
			l->kind = v->kind;
			l->node = owner;
			l->gen = v;
			return 0;
		}
	}
	return -ENOENT;
}

static void attr_of(const struct res_vname *v, const struct vr_node *owner, struct vr_attr *a)
{
	uint64_t ino = v->place == ROOT_ONLY ? v->ino : owner->ino | v->ino;

	res_attr_of_text(ino, owner, v->size ? v->size(owner) : 0, a, v->kind);
}

/* Attributes of the generated entry L names. [T] */
void res_vname_attr(const struct res_lookup *l, struct vr_attr *a)
{
	attr_of(l->gen, l->node, a);
}

/*
 * Lists DIR's entries through FILL after cookie AFTER (RES_COOKIE_*): the
 * real ones, and with list_generated the generated ones too (each file
 * followed by what is generated beside it). Generated entries are reachable
 * by name but not listed by default, so globs, cp -r, rsync, tar, git, find
 * and rm -r never meet them. CHILDREN runs newest first, in falling stamps,
 * so what follows AFTER is every entry of a lower stamp, found without a
 * copy. [T] Returns 0, or 1 when FILL asked to stop.
 */
int res_vname_list(struct vr_residency *r, struct vr_node *dir, uint64_t after,
		   int (*fill)(void *ctx, const char *name, const struct vr_attr *a,
			       uint64_t cookie),
		   void *ctx)
{
	res_held(r);

	bool gen = r->cfg.list_generated;
	uint64_t at = after >> RES_COOKIE_SHIFT, sub = after & ((1u << RES_COOKIE_SHIFT) - 1);
	char name[VR_NAME_MAX + 8];
	struct vr_attr a;

	for (size_t i = 0; gen && at == 0 && i < NVNAMES; i++) {
		const struct res_vname *v = &table[i];

		if (RES_COOKIE_FIRST + i <= after)
			continue;
		if (v->place == EVERY_DIR || (v->place == ROOT_ONLY && dir == r->root)) {
			attr_of(v, dir, &a);
			if (fill(ctx, v->name, &a, RES_COOKIE_FIRST + i))
				return 1;
		}
	}
	for (struct vr_node *c = dir->children; c; c = c->next) {
		uint64_t base = c->dpos << RES_COOKIE_SHIFT;

		if (at && c->dpos > at)
			continue; /* listed already, or linked since */
		if (!(at && c->dpos == at)) {
			res_attr_of_node(c, &a);
			if (fill(ctx, c->name, &a, base))
				return 1;
		}
		for (size_t i = 0; gen && i < NVNAMES; i++) {
			const struct res_vname *v = &table[i];

			if (v->place != BESIDE_FILE || (v->present && !v->present(c)) ||
			    (at && c->dpos == at && i + 1 <= sub))
				continue;
			snprintf(name, sizeof(name), "%s%s", c->name, v->name);
			attr_of(v, c, &a);
			if (fill(ctx, name, &a, base + 1 + i))
				return 1;
		}
	}
	return 0;
}

_Static_assert(NVNAMES + 1 < (1u << RES_COOKIE_SHIFT) &&
		   RES_COOKIE_FIRST + NVNAMES <= (1u << RES_COOKIE_SHIFT),
	       "every generated name has a cookie below an entry's");

/*
 * Opens the generated entry L names (found under the tree lock, which the
 * caller has dropped after taking a reference on L->node): makes its text.
 * Returns 0 or -errno.
 */
int res_vname_open(struct vr_residency *r, const struct res_lookup *l, const struct vr_caller *c,
		   struct vr_handle **out)
{
	char *text = NULL;
	size_t len = 0;
	int tail_err = 0;
	int ret = l->gen->text(r, l->node, c, &text, &len, &tail_err);

	if (ret == 0)
		ret = res_text_handle(text, len, tail_err, out);
	if (ret == 0) {
		/* what an fstat of it says: the entry as listed, the size of this text */
		struct vr_attr *a = &(*out)->attr;

		res_lock(r);
		attr_of(l->gen, l->node, a);
		res_attr_of_text(a->ino, l->node, len, a, a->kind);
		res_unlock(r);
	}
	return ret;
}
