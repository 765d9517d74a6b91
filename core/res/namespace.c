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

	res_lock(r);
	ret = res_resolve(r, path, &l);
	if (ret == 0) {
		if (l.gen)
			res_vname_attr(&l, out);
		else
			res_attr_of_node(l.node, out);
	}
	res_unlock(r);
	return ret;
}

int vr_res_fgetattr(struct vr_residency *r, struct vr_handle *h, struct vr_attr *out)
{
	if (!h->node) {
		*out = h->attr; /* generated text: as it was at the open */
		return 0;
	}
	res_lock(r);
	res_attr_of_node(h->node, out);
	res_unlock(r);
	return 0;
}

int vr_res_opendir_as(struct vr_residency *r, const char *path, const struct vr_caller *c,
		      struct vr_handle **out)
{
	struct vr_handle *h = NULL;
	struct res_lookup l;
	int ret;

	res_lock(r);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_DIR)
		ret = -ENOTDIR;
	if (ret == 0 && c)
		ret = res_dirs_take(r, c->uid);
	if (ret == 0 && !(h = res_handle_new(l.node))) {
		ret = -ENOMEM;
		if (c)
			res_dirs_give(r, c->uid);
	}
	if (ret == 0) {
		l.node->refs++;
		h->dir_counted = c != NULL;
		if (c)
			h->opener = *c;
		*out = h;
	}
	res_unlock(r);
	if (ret == -EMFILE && c) /* only a caller is counted */
		vr_log(LOG_WARNING, "opendir %s by uid %u refused: %d directories open already",
		       path, (unsigned)c->uid, RES_DIRS_PER_USER);
	return ret;
}

int vr_res_opendir(struct vr_residency *r, const char *path, struct vr_handle **out)
{
	return vr_res_opendir_as(r, path, NULL, out);
}

int vr_res_readdir_at(struct vr_residency *r, struct vr_handle *h, uint64_t after,
		      int (*fill)(void *ctx, const char *name, const struct vr_attr *a,
				  uint64_t cookie),
		      void *ctx)
{
	struct vr_node *dir = h->node;

	if (!dir || !dir->is_dir)
		return -ENOTDIR;
	res_lock(r);
	/* a removed directory lists as empty */
	if (dir == r->root || dir->parent)
		res_vname_list(r, dir, after, fill, ctx);
	res_unlock(r);
	return 0;
}

/* vr_res_readdir's FILL, called without the cookies */
struct plain_fill {
	int (*fill)(void *ctx, const char *name, const struct vr_attr *a);
	void *ctx;
};

static int plain(void *ctx, const char *name, const struct vr_attr *a, uint64_t cookie)
{
	const struct plain_fill *p = ctx;

	(void)cookie;
	return p->fill(p->ctx, name, a);
}

int vr_res_readdir(struct vr_residency *r, struct vr_handle *h,
		   int (*fill)(void *ctx, const char *name, const struct vr_attr *a), void *ctx)
{
	struct plain_fill p = {fill, ctx};

	return vr_res_readdir_at(r, h, 0, plain, &p);
}

int vr_res_mkdir(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct res_lookup l;
	struct vr_node *n;
	int ret;

	res_lock(r);
	ret = res_resolve_new(r, path, false, &l);
	if (ret)
		goto unlock;
	res_last_name(&l, name);
	ret = res_node_new(r, name, true, mode, c, &n);
	if (ret)
		goto unlock;
	res_link_child(l.parent, n);
	res_touch_dir(r, l.parent);
unlock:
	res_unlock(r);
	res_refused("mkdir", path, ret);
	return ret;
}

int vr_res_rmdir(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	struct res_lookup l;
	int ret;

	(void)c;
	res_lock(r);
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
	res_touch_dir(r, l.node->parent);
	res_unlink_child(l.node);
	res_node_put(r, l.node);
unlock:
	res_unlock(r);
	res_refused("rmdir", path, ret);
	return ret;
}

int vr_res_unlink(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	struct res_lookup l;
	int ret;

	res_lock(r);
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
	res_unlock(r);
	res_scrub_removed(r, n, c);
	return 0;
unlock:
	res_unlock(r);
	res_refused("unlink", path, ret);
	return ret;
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
	res_held(r);

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

/* Whether a symbolic link at or below N would lead outside the mount were N's parent at depth
 * PARENT_DEPTH (the root's children: 0). [T] */
static bool link_escapes(const struct vr_node *n, size_t parent_depth)
{
	if (n->target)
		return escapes(n->target, parent_depth) != NULL;
	for (const struct vr_node *ch = n->is_dir ? n->children : NULL; ch; ch = ch->next)
		if (link_escapes(ch, parent_depth + 1))
			return true;
	return false;
}

/* How many sealed files lie at or below N, counted up to LIMIT. [T] */
static size_t seals_below(const struct vr_node *n, size_t limit)
{
	size_t k = 0;

	if (!n->is_dir)
		return n->seal ? 1 : 0;
	for (const struct vr_node *c = n->children; c && k < limit; c = c->next)
		k += seals_below(c, limit - k);
	return k;
}

/*
 * Resolves and checks a rename of FROM to TO under the tree lock, without
 * changing anything: the source may move, an existing target may be replaced
 * (nor leased), the new name may be created there, a directory does not move
 * below itself, every seal below still fits its path. Returns 0; 1 when both
 * name the same file (nothing to do); or -errno.
 */
static int rename_check(struct vr_residency *r, const char *from, const char *to, unsigned flags,
			const struct vr_caller *c, struct res_lookup *src, struct res_lookup *dst)
{
	res_held(r);

	int ret = res_resolve(r, from, src);

	if (ret)
		return ret;
	if (src->kind != VR_KIND_DIR && src->kind != VR_KIND_FILE && src->kind != VR_KIND_LINK)
		return -EPERM;
	if (src->node == r->root)
		return -EBUSY;
	ret = res_resolve(r, to, dst);
	if (ret == 0 && dst->gen)
		return -EPERM; /* "mv f f.seal" names f's own seal: generated, never replaced */
	if (ret == 0) {
		if (dst->node == src->node)
			return 1;
		ret = replaceable(r, src, dst, flags);
		if (ret)
			return ret;
	} else if (ret != -ENOENT || !dst->parent) {
		return ret;
	}
	ret = res_name_creatable(dst->last, dst->last_len, dst->parent == r->root,
				 src->kind == VR_KIND_FILE);
	if (ret)
		return ret;
	if (src->kind == VR_KIND_DIR && is_ancestor(src->node, dst->parent))
		return -EINVAL;
	/* every seal below must still fit its path, or nothing moves */
	if (res_path_len(dst->parent) + longest_below(src->node) - strlen(src->node->name) +
		dst->last_len >=
	    VR_SEAL_PATH_MAX)
		return -ENAMETOOLONG;
	/* a link's ".." are counted from where it sits: none may climb out from its new place */
	if (link_escapes(src->node, res_depth(dst->parent))) {
		vr_log(LOG_INFO,
		       "rename %s -> %s refused: a symbolic link in what moves would lead "
		       "outside the mount from there",
		       from, to);
		return -EPERM;
	}
	/* each seal below is re-signed under the tree lock: a user other than root or the mount's
	 * owner moves at most so many at once, so no one holds everyone up for seconds */
	if (src->kind == VR_KIND_DIR && c && c->uid != 0 && c->uid != r->cfg.root_uid &&
	    seals_below(src->node, RES_RENAME_SEALS_MAX + 1) > RES_RENAME_SEALS_MAX) {
		vr_log(LOG_INFO,
		       "rename %s -> %s by uid %u refused (EXDEV): it would re-sign more than %d "
		       "seals at once; mv copies instead",
		       from, to, (unsigned)c->uid, RES_RENAME_SEALS_MAX);
		return -EXDEV;
	}
	if (dst->node && dst->kind != VR_KIND_DIR)
		return res_leased(r, dst->node, "rename over it", to + 1, c);
	return 0;
}

/*
 * Moves SRC to DST, named NAME (taken over), replacing what DST names: an
 * empty directory goes now; a replaced file is detached and returned in
 * *VICTIM, referenced, to be freed once the tree lock is dropped. [T]
 */
static void rename_link(struct vr_residency *r, const struct res_lookup *src,
			const struct res_lookup *dst, char *name, struct vr_node **victim)
{
	res_held(r);

	struct vr_node *oldp = src->node->parent;

	if (dst->node && dst->kind == VR_KIND_DIR) {
		res_unlink_child(dst->node);
		res_node_put(r, dst->node);
	} else if (dst->node) {
		*victim = dst->node;
		(*victim)->refs++;
		res_detach_file(r, *victim);
	}
	res_unlink_child(src->node);
	free(src->node->name);
	src->node->name = name;
	res_link_child(dst->parent, src->node);
	res_touch_dir(r, oldp);
	dst->parent->mtime = dst->parent->ctime = src->node->ctime = oldp->mtime;
}

/*
 * A rename: checked, then every seal below what moves re-signed for its new
 * place (expect_rename.c) before anything moves, so a failure leaves all as
 * it was; then moved, the seals put in place; a replaced file freed and the
 * sources that moved re-read, once the tree lock is dropped.
 */
int vr_res_rename(struct vr_residency *r, const char *from, const char *to, unsigned flags,
		  const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct vr_node *victim = NULL, *moved = NULL;
	struct res_restage_list staged = {0};
	struct res_lookup src, dst;
	char *copy = NULL;
	int ret;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	res_lock(r);
	ret = rename_check(r, from, to, flags, c, &src, &dst);
	if (ret == 0) {
		res_last_name(&dst, name);
		copy = strdup(name);
		ret = copy ? res_restage_at(r, src.node, dst.parent, copy, &staged) : -ENOMEM;
		if (ret && copy)
			vr_log(LOG_ERR,
			       "rename %s -> %s: re-signing a seal failed: %s; nothing moved", from,
			       to, strerror(-ret));
	}
	if (ret == 0) {
		rename_link(r, &src, &dst, copy, &victim);
		copy = NULL;
		res_restage_commit(r, &staged, c);
		moved = src.node;
		moved->refs++;
	}
	res_restage_free(&staged);
	free(copy);
	res_unlock(r);
	if (victim)
		res_scrub_removed(r, victim, c);
	if (moved) {
		res_reload_sources(r, moved, c);
		res_check_moved(r, moved, c);
		res_lock(r);
		res_node_put(r, moved);
		res_unlock(r);
	}
	if (ret == 1)
		ret = 0; /* the same file: nothing to do */
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

	res_lock(r);
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
		res_changed(r);
	}
	res_unlock(r);
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

int vr_res_symlink(struct vr_residency *r, const char *target, const char *path,
		   const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	const char *why = NULL;
	struct res_lookup l;
	struct vr_node *n;
	int ret;

	if (strlen(target) >= VR_SEAL_PATH_MAX)
		return -ENAMETOOLONG;
	res_lock(r);
	ret = res_resolve_new(r, path, false, &l);
	if (ret)
		goto unlock;
	why = escapes(target, res_depth(l.parent));
	if (why) {
		ret = -EPERM;
		goto unlock;
	}
	res_last_name(&l, name);
	ret = res_node_new(r, name, false, 0777, c, &n);
	if (ret)
		goto unlock;
	n->target = strdup(target);
	ret = n->target ? res_meta_add(r, n, strlen(target) + 1) : -ENOMEM;
	if (ret) {
		res_node_destroy(r, n);
		goto unlock;
	}
	n->mode = S_IFLNK | 0777;
	res_link_child(l.parent, n);
	res_touch_dir(r, l.parent);
unlock:
	res_unlock(r);
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
	res_lock(r);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_LINK)
		ret = -EINVAL;
	if (ret == 0)
		snprintf(buf, cap, "%s", l.node->target);
	res_unlock(r);
	return ret;
}

int vr_res_statfs(struct vr_residency *r, struct vr_statfs *out)
{
	struct vr_device_info info;
	int ret = res_device_info(r, &info);

	if (ret)
		return ret;
	out->total_bytes = info.total_bytes;
	out->free_bytes = info.free_bytes;
	res_lock(r);
	out->files = r->files;
	res_unlock(r);
	return 0;
}
