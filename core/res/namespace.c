/* namespace.c - names in the tree: attributes, listing, mkdir, rmdir, unlink, rename, chmod. */
#include "log.h"
#include "name.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

int vr_res_getattr(struct vr_residency *r, const char *path, struct vr_attr *out)
{
	struct res_lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret == 0) {
		if (l.gen)
			res_vname_attr(&l, out);
		else
			res_attr_of_node(l.node, out);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_fgetattr(struct vr_residency *r, struct vr_handle *h, struct vr_attr *out)
{
	if (!h->node) {
		*out = h->attr; /* generated text: as it was at the open */
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	res_attr_of_node(h->node, out);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int vr_res_opendir(struct vr_residency *r, const char *path, struct vr_handle **out)
{
	struct vr_handle *h;
	struct res_lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_DIR)
		ret = -ENOTDIR;
	if (ret == 0) {
		h = res_handle_new(l.node);
		if (h) {
			l.node->refs++;
			*out = h;
		} else {
			ret = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_readdir(struct vr_residency *r, struct vr_handle *h,
		   int (*fill)(void *ctx, const char *name, const struct vr_attr *a), void *ctx)
{
	struct vr_node *dir = h->node;

	if (!dir || !dir->is_dir)
		return -ENOTDIR;
	pthread_mutex_lock(&r->lock);
	/* a removed directory lists as empty */
	if (dir == r->root || dir->parent)
		res_vname_list(r, dir, fill, ctx);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Resolves the parent of a path to be created and validates the new name. [T] */
int res_resolve_new(struct vr_residency *r, const char *path, bool is_file, struct res_lookup *l)
{
	int ret = res_resolve(r, path, l);

	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT || !l->parent)
		return ret;
	ret = res_name_creatable(l->last, l->last_len, l->parent == r->root, is_file);
	/* a seal names its file by its relative path, which must fit */
	if (ret == 0 && res_path_len(l->parent) + l->last_len >= VR_SEAL_PATH_MAX)
		ret = -ENAMETOOLONG;
	return ret;
}

/* Copies the last component into a NUL-terminated buffer. */
void res_last_name(const struct res_lookup *l, char out[VR_NAME_MAX + 1])
{
	memcpy(out, l->last, l->last_len);
	out[l->last_len] = '\0';
}

int vr_res_mkdir(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct res_lookup l;
	struct vr_node *n;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = res_resolve_new(r, path, false, &l);
	if (ret)
		goto unlock;
	res_last_name(&l, name);
	n = res_node_new(r, name, true, mode, c);
	if (!n) {
		ret = -ENOMEM;
		goto unlock;
	}
	res_link_child(l.parent, n);
	res_touch_dir(l.parent);
unlock:
	pthread_mutex_unlock(&r->lock);
	res_refused("mkdir", path, ret);
	return ret;
}

int vr_res_rmdir(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	struct res_lookup l;
	int ret;

	(void)c;
	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret)
		goto unlock;
	if (l.kind != VR_KIND_DIR)
		ret = l.kind == VR_KIND_FILE ? -ENOTDIR : -EPERM;
	else if (l.node == r->root)
		ret = -EBUSY;
	else if (l.node->children)
		ret = -ENOTEMPTY;
	if (ret)
		goto unlock;
	res_touch_dir(l.node->parent);
	res_unlink_child(l.node);
	res_node_put(r, l.node);
unlock:
	pthread_mutex_unlock(&r->lock);
	res_refused("rmdir", path, ret);
	return ret;
}

int vr_res_unlink(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	struct res_lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret)
		goto unlock;
	if (l.kind == VR_KIND_DIR) {
		ret = -EISDIR;
		goto unlock;
	}
	if (l.kind != VR_KIND_FILE && l.kind != VR_KIND_LINK) {
		/* seals, verify and status go with their file or not at all */
		ret = -EPERM;
		res_audit(r, "policy_violation", path + 1, c, "denied", NULL,
			  "generated files cannot be removed");
		goto unlock;
	}
	struct vr_node *n = l.node;

	ret = res_leased(r, n, "rm", path + 1, c);
	if (ret)
		goto unlock;
	vr_log(LOG_DEBUG, "unlink %s", path);
	/* rm frees now, even while the file is open: readers then get ESTALE */
	n->refs++;
	res_detach_file(r, n);
	pthread_mutex_unlock(&r->lock);
	res_scrub_removed(r, n, c);
	return 0;
unlock:
	pthread_mutex_unlock(&r->lock);
	res_refused("unlink", path, ret);
	return ret;
}

/*
 * A rename re-signs every seal below what moves for its new path, checked
 * against the expected digests that cover it there. Each seal is signed and
 * printed first, with the moved node placed at its new parent and name but
 * not yet linked there; only when every one is made does anything move, so a
 * failure (no memory) leaves the tree, the seals and their texts as they were.
 */
struct restage {
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

struct restage_list {
	struct restage *v;
	size_t n, cap;
};

static void restage_free(struct restage_list *l)
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
static int restage_below(struct vr_residency *r, struct vr_node *n, struct restage_list *l)
{
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
		struct restage *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	struct restage *st = &l->v[l->n];
	struct vr_seal t = *n->seal;
	struct res_expect e;
	int ret;

	memset(st, 0, sizeof(*st));
	st->n = n;
	l->n++; /* restage_free frees what it holds, whatever fails below */
	ret = res_seal_prepare(r, n, &t, &e, &st->json);
	if (ret == -EBADMSG) {
		char why[VR_WHY_MAX], detail[VR_SEAL_PATH_MAX + 2 * VR_WHY_MAX];

		res_expect_why(&e, why, sizeof(why));
		res_expect_detail(&e, n->seal->sha256, detail, sizeof(detail));
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

/* Puts the staged seals in place (nothing is allocated) and audits each. [T] */
static void restage_commit(struct vr_residency *r, struct restage_list *l,
			   const struct vr_caller *c)
{
	char old[VR_SEAL_PATH_MAX], path[VR_SEAL_PATH_MAX], detail[VR_SEAL_PATH_MAX + 8];

	for (size_t i = 0; i < l->n; i++) {
		struct restage *st = &l->v[i];
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
static void reload_sources(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	struct node_list l = {0};

	pthread_mutex_lock(&r->lock);
	sources_below(n, &l);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < l.n; i++) {
		pthread_rwlock_rdlock(&l.v[i]->io);
		res_source_load(r, l.v[i], c);
		pthread_rwlock_unlock(&l.v[i]->io);
		pthread_mutex_lock(&r->lock);
		res_node_put(r, l.v[i]);
		pthread_mutex_unlock(&r->lock);
	}
	free(l.v);
}

/* Length of the longest relative path below N, N's own name included. [T] */
static size_t longest_below(const struct vr_node *n)
{
	size_t best = 0;

	for (const struct vr_node *c = n->children; c; c = c->next) {
		size_t l = longest_below(c);

		best = l > best ? l : best;
	}
	return strlen(n->name) + (best ? best + 1 : 0);
}

static bool is_ancestor(const struct vr_node *a, const struct vr_node *n)
{
	for (; n; n = n->parent)
		if (n == a)
			return true;
	return false;
}

/* Checks that the existing DST may be replaced by SRC. [T] Returns 0 or -errno. */
static int replaceable(struct vr_residency *r, const struct res_lookup *src,
		       const struct res_lookup *dst, unsigned flags)
{
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (dst->kind != VR_KIND_DIR && dst->kind != VR_KIND_FILE && dst->kind != VR_KIND_LINK)
		return -EPERM;
	if (dst->node == r->root)
		return -EBUSY;
	if (src->kind == VR_KIND_DIR && dst->kind != VR_KIND_DIR)
		return -ENOTDIR;
	if (src->kind != VR_KIND_DIR && dst->kind == VR_KIND_DIR)
		return -EISDIR;
	if (dst->kind == VR_KIND_DIR && dst->node->children)
		return -ENOTEMPTY;
	return 0;
}

int vr_res_rename(struct vr_residency *r, const char *from, const char *to, unsigned flags,
		  const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct vr_node *victim = NULL, *moved = NULL;
	struct res_lookup src, dst;
	int ret;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, from, &src);
	if (ret)
		goto unlock;
	if (src.kind != VR_KIND_DIR && src.kind != VR_KIND_FILE && src.kind != VR_KIND_LINK) {
		ret = -EPERM;
		goto unlock;
	}
	if (src.node == r->root) {
		ret = -EBUSY;
		goto unlock;
	}
	ret = res_resolve(r, to, &dst);
	if (ret == 0) {
		if (dst.node == src.node)
			goto unlock; /* same file: nothing to do */
		ret = replaceable(r, &src, &dst, flags);
		if (ret)
			goto unlock;
	} else if (ret != -ENOENT || !dst.parent) {
		goto unlock;
	}
	ret = res_name_creatable(dst.last, dst.last_len, dst.parent == r->root,
				 src.kind == VR_KIND_FILE);
	if (ret)
		goto unlock;
	if (src.kind == VR_KIND_DIR && is_ancestor(src.node, dst.parent)) {
		ret = -EINVAL;
		goto unlock;
	}
	/* every seal below must still fit its path, or nothing moves */
	if (res_path_len(dst.parent) + longest_below(src.node) - strlen(src.node->name) +
		dst.last_len >=
	    VR_SEAL_PATH_MAX) {
		ret = -ENAMETOOLONG;
		goto unlock;
	}
	if (dst.node && dst.kind != VR_KIND_DIR) {
		ret = res_leased(r, dst.node, "rename over it", to + 1, c);
		if (ret)
			goto unlock;
	}
	res_last_name(&dst, name);
	char *copy = strdup(name);
	struct restage_list staged = {0};

	if (!copy) {
		ret = -ENOMEM;
		goto unlock;
	}
	/* every seal below, made for the new place before anything moves */
	struct vr_node *oldp = src.node->parent;
	char *oldname = src.node->name;

	src.node->parent = dst.parent;
	src.node->name = copy;
	ret = restage_below(r, src.node, &staged);
	src.node->parent = oldp;
	src.node->name = oldname;
	if (ret) {
		vr_log(LOG_ERR, "rename %s -> %s: re-signing a seal failed: %s; nothing moved",
		       from, to, strerror(-ret));
		restage_free(&staged);
		free(copy);
		goto unlock;
	}
	if (dst.node) {
		if (dst.kind == VR_KIND_DIR) {
			res_unlink_child(dst.node);
			res_node_put(r, dst.node);
		} else {
			/* the replaced file is freed once the tree lock is dropped */
			victim = dst.node;
			victim->refs++;
			res_detach_file(r, victim);
		}
	}
	res_unlink_child(src.node);
	free(oldname);
	src.node->name = copy;
	res_link_child(dst.parent, src.node);
	res_touch_dir(oldp);
	dst.parent->mtime = dst.parent->ctime = src.node->ctime = oldp->mtime;
	restage_commit(r, &staged, c);
	restage_free(&staged);
	moved = src.node;
	moved->refs++;
unlock:
	pthread_mutex_unlock(&r->lock);
	if (victim)
		res_scrub_removed(r, victim, c);
	if (moved) {
		reload_sources(r, moved, c);
		pthread_mutex_lock(&r->lock);
		res_node_put(r, moved);
		pthread_mutex_unlock(&r->lock);
	}
	if (ret && ret != -ENOENT)
		vr_log(LOG_INFO, "rename %s -> %s refused: %s", from, to, strerror(-ret));
	return ret;
}

/* Applies a metadata change to the node PATH names or, without a path, to the file H has open
 * (perhaps removed); generated entries refuse. */
static int with_node(struct vr_residency *r, const char *path, struct vr_handle *h,
		     void (*apply)(struct vr_node *n, const void *arg), const void *arg)
{
	struct res_lookup l = {0};
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (path)
		ret = res_resolve(r, path, &l);
	else if (!h)
		ret = -ESTALE;
	else if (h->node)
		l = (struct res_lookup){.node = h->node, .kind = VR_KIND_FILE};
	else
		l.kind = VR_KIND_STATUS; /* generated text: refused as by its path */
	if (ret == 0 && l.kind != VR_KIND_DIR && l.kind != VR_KIND_FILE && l.kind != VR_KIND_LINK)
		ret = -EPERM;
	if (ret == 0) {
		apply(l.node, arg);
		res_now(&l.node->ctime);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static void apply_mode(struct vr_node *n, const void *arg)
{
	n->mode = (n->mode & S_IFMT) | (*(const mode_t *)arg & 07777);
}

int vr_res_chmod(struct vr_residency *r, const char *path, mode_t mode)
{
	return with_node(r, path, NULL, apply_mode, &mode);
}

int vr_res_fchmod(struct vr_residency *r, struct vr_handle *h, mode_t mode)
{
	return with_node(r, NULL, h, apply_mode, &mode);
}

struct owner {
	uid_t uid;
	gid_t gid;
};

static void apply_owner(struct vr_node *n, const void *arg)
{
	const struct owner *o = arg;

	if (o->uid != (uid_t)-1)
		n->uid = o->uid;
	if (o->gid != (gid_t)-1)
		n->gid = o->gid;
}

int vr_res_chown(struct vr_residency *r, const char *path, uid_t uid, gid_t gid)
{
	struct owner o = {uid, gid};

	return with_node(r, path, NULL, apply_owner, &o);
}

int vr_res_fchown(struct vr_residency *r, struct vr_handle *h, uid_t uid, gid_t gid)
{
	struct owner o = {uid, gid};

	return with_node(r, NULL, h, apply_owner, &o);
}

static void apply_times(struct vr_node *n, const void *arg)
{
	const struct timespec *tv = arg;
	struct timespec t;

	res_now(&t);
	if (tv[0].tv_nsec != UTIME_OMIT)
		n->atime = tv[0].tv_nsec == UTIME_NOW ? t : tv[0];
	if (tv[1].tv_nsec != UTIME_OMIT)
		n->mtime = tv[1].tv_nsec == UTIME_NOW ? t : tv[1];
}

/* utimens' times: both "now" when none are given. */
static const struct timespec *times_or_now(const struct timespec tv[2], struct timespec now[2])
{
	if (tv)
		return tv;
	now[0].tv_sec = now[1].tv_sec = 0;
	now[0].tv_nsec = now[1].tv_nsec = UTIME_NOW;
	return now;
}

int vr_res_utimens(struct vr_residency *r, const char *path, const struct timespec tv[2])
{
	struct timespec t[2];

	return with_node(r, path, NULL, apply_times, times_or_now(tv, t));
}

int vr_res_futimens(struct vr_residency *r, struct vr_handle *h, const struct timespec tv[2])
{
	struct timespec t[2];

	return with_node(r, NULL, h, apply_times, times_or_now(tv, t));
}

/* Why symbolic link TARGET, in a directory DEPTH levels below the root, could lead outside
 * the mount; NULL when it cannot. */
static const char *escapes(const char *target, size_t depth)
{
	size_t ups = 0;
	bool named = false;

	if (!*target)
		return "an empty target";
	if (*target == '/')
		return "an absolute target leads outside the mount";
	for (const char *p = target; *p;) {
		size_t len = strcspn(p, "/");

		if (len == 2 && memcmp(p, "..", 2) == 0) {
			/* after a name, ".." would climb from wherever that name leads */
			if (named)
				return "\"..\" may only lead the target (\"../../blobs/x\")";
			ups++;
		} else if (len > 0 && !(len == 1 && *p == '.')) {
			named = true;
		}
		p += len;
		p += strspn(p, "/");
	}
	if (ups > depth)
		return "the target climbs above the mount's root";
	return NULL;
}

int vr_res_symlink(struct vr_residency *r, const char *target, const char *path,
		   const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	const char *why = NULL;
	struct res_lookup l;
	struct vr_node *n;
	size_t depth = 0;
	int ret;

	if (strlen(target) >= VR_SEAL_PATH_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&r->lock);
	ret = res_resolve_new(r, path, false, &l);
	if (ret)
		goto unlock;
	for (struct vr_node *d = l.parent; d->parent; d = d->parent)
		depth++;
	why = escapes(target, depth);
	if (why) {
		ret = -EPERM;
		goto unlock;
	}
	res_last_name(&l, name);
	n = res_node_new(r, name, false, 0777, c);
	if (n)
		n->target = strdup(target);
	if (!n || !n->target) {
		if (n)
			res_node_destroy(n);
		ret = -ENOMEM;
		goto unlock;
	}
	n->mode = S_IFLNK | 0777;
	res_link_child(l.parent, n);
	res_touch_dir(l.parent);
unlock:
	pthread_mutex_unlock(&r->lock);
	if (why)
		vr_log(LOG_INFO, "symlink %s -> %s refused: %s", path, target, why);
	else
		res_refused("symlink", path, ret);
	return ret;
}

int vr_res_readlink(struct vr_residency *r, const char *path, char *buf, size_t cap)
{
	struct res_lookup l;
	int ret;

	if (cap == 0)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_LINK)
		ret = -EINVAL;
	if (ret == 0)
		snprintf(buf, cap, "%s", l.node->target);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* Resolves PATH to a file or directory for its extended attributes. [T] */
static int xattr_node(struct vr_residency *r, const char *path, struct vr_node **out)
{
	struct res_lookup l;
	int ret = res_resolve(r, path, &l);

	if (ret)
		return ret;
	if (l.kind == VR_KIND_LINK)
		return -EPERM; /* as Linux does for user.* on links */
	if (l.kind != VR_KIND_DIR && l.kind != VR_KIND_FILE)
		return -EOPNOTSUPP; /* generated entries carry none */
	*out = l.node;
	return 0;
}

static struct res_xattr *xattr_find(struct vr_node *n, const char *name)
{
	for (size_t i = 0; i < n->nxattrs; i++)
		if (strcmp(n->xattrs[i].name, name) == 0)
			return &n->xattrs[i];
	return NULL;
}

/* Whether NAME is one this filesystem stores: the user namespace, within the length limit. */
static int xattr_name_ok(const char *name)
{
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (strlen(name) > VR_NAME_MAX || name[5] == '\0')
		return -ERANGE;
	return 0;
}

int vr_res_setxattr(struct vr_residency *r, const char *path, const char *name, const void *value,
		    size_t size, int flags)
{
	struct vr_node *n;
	struct res_xattr *x;
	void *copy = NULL;
	int ret = xattr_name_ok(name);

	if (ret)
		return ret;
	if (size > VR_XATTR_VALUE_MAX)
		return -E2BIG;
	if (size && !(copy = malloc(size)))
		return -ENOMEM;
	if (size)
		memcpy(copy, value, size);
	pthread_mutex_lock(&r->lock);
	ret = xattr_node(r, path, &n);
	if (ret)
		goto unlock;
	x = xattr_find(n, name);
	if (x && (flags & 1 /* XATTR_CREATE */)) {
		ret = -EEXIST;
	} else if (!x && (flags & 2 /* XATTR_REPLACE */)) {
		ret = -ENODATA;
	} else if (x) {
		free(x->value);
		x->value = copy;
		x->size = size;
		copy = NULL;
	} else if (n->nxattrs >= VR_XATTR_MAX) {
		ret = -ENOSPC;
	} else {
		struct res_xattr *nx = realloc(n->xattrs, (n->nxattrs + 1) * sizeof(*nx));
		char *nm = strdup(name);

		if (nx)
			n->xattrs = nx;
		if (!nx || !nm) {
			free(nm);
			ret = -ENOMEM;
			goto unlock;
		}
		n->xattrs[n->nxattrs++] = (struct res_xattr){nm, copy, size};
		copy = NULL;
	}
	if (ret == 0)
		res_now(&n->ctime);
unlock:
	pthread_mutex_unlock(&r->lock);
	free(copy);
	res_refused("setxattr", path, ret);
	return ret;
}

int vr_res_getxattr(struct vr_residency *r, const char *path, const char *name, void *buf,
		    size_t cap, size_t *len)
{
	struct vr_node *n;
	struct res_xattr *x;
	/* Other namespaces are not supported, not empty: ls and cp remember EOPNOTSUPP per file
	 * system and stop asking for security.selinux and the ACLs of every file they list. */
	int ret = strncmp(name, "user.", 5) == 0 ? 0 : -EOPNOTSUPP;

	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	ret = xattr_node(r, path, &n);
	if (ret == -EOPNOTSUPP || ret == -EPERM)
		ret = -ENODATA;
	if (ret == 0 && !(x = xattr_find(n, name)))
		ret = -ENODATA;
	if (ret == 0 && cap && cap < x->size)
		ret = -ERANGE;
	if (ret == 0) {
		if (cap && x->size)
			memcpy(buf, x->value, x->size);
		*len = x->size;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_listxattr(struct vr_residency *r, const char *path, char *buf, size_t cap, size_t *len)
{
	struct vr_node *n;
	size_t need = 0;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = xattr_node(r, path, &n);
	if (ret == -EOPNOTSUPP || ret == -EPERM) {
		*len = 0; /* links and generated entries simply have none */
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	for (size_t i = 0; ret == 0 && i < n->nxattrs; i++)
		need += strlen(n->xattrs[i].name) + 1;
	if (ret == 0 && cap && cap < need)
		ret = -ERANGE;
	if (ret == 0 && cap) {
		char *p = buf;

		for (size_t i = 0; i < n->nxattrs; i++) {
			size_t l = strlen(n->xattrs[i].name) + 1;

			memcpy(p, n->xattrs[i].name, l);
			p += l;
		}
	}
	if (ret == 0)
		*len = need;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_removexattr(struct vr_residency *r, const char *path, const char *name)
{
	struct vr_node *n;
	struct res_xattr *x;
	int ret = xattr_name_ok(name);

	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	ret = xattr_node(r, path, &n);
	if (ret == 0 && !(x = xattr_find(n, name)))
		ret = -ENODATA;
	if (ret == 0) {
		free(x->name);
		free(x->value);
		*x = n->xattrs[--n->nxattrs];
		res_now(&n->ctime);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_statfs(struct vr_residency *r, struct vr_statfs *out)
{
	struct vr_device_info info;
	int ret = vr_backend_info(r->cfg.backend, &info);

	if (ret)
		return ret;
	out->total_bytes = info.total_bytes;
	out->free_bytes = info.free_bytes;
	pthread_mutex_lock(&r->lock);
	out->files = r->files;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
