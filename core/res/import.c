/* import.c - who may import a file through the socket, and the create (or replacement) it opens,
 * decided and done in one hold of the tree lock. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernel's fs.protected_regular (0, 1 or 2), read once; 0 when it cannot be read. [T] */
static int protected_regular(struct vr_residency *r)
{
	res_held(r);

	if (r->protected_regular == 0) {
		FILE *f = fopen("/proc/sys/fs/protected_regular", "re");
		int level = 0;

		if (!f || fscanf(f, "%d", &level) != 1 || level < 0 || level > 2)
			level = 0;
		if (f)
			fclose(f);
		r->protected_regular = level + 1;
	}
	return r->protected_regular - 1;
}

void vr_res_set_protected_regular(struct vr_residency *r, int level)
{
	res_lock(r);
	r->protected_regular = (level < 0 ? 0 : level > 2 ? 2 : level) + 1;
	res_unlock(r);
}

/*
 * Whether P may replace existing file E (in folder D, every folder above it
 * searched already): the rules the kernel applies to an open with O_CREAT of
 * an existing file and to a rename over it, in its order. In a sticky folder,
 * fs.protected_regular refuses a file neither P nor D's owner owns when D is
 * world-writable (level 1) or group-writable (2), root included (EACCES); the
 * sticky bit lets only E's owner, D's owner or root replace it (EPERM); then
 * write permission on E (EACCES). [T]
 */
static int may_replace(struct vr_residency *r, const struct vr_node *e, const struct vr_peer *p,
		       const char **why)
{
	const struct vr_node *d = e->parent;
	bool sticky = d && (d->mode & S_ISVTX);
	int level = sticky && e->uid != d->uid && e->uid != p->uid ? protected_regular(r) : 0;

	if (level > 0 && ((d->mode & S_IWOTH) || (level == 2 && (d->mode & S_IWGRP)))) {
		*why = "fs.protected_regular: another user's file in a sticky folder others may "
		       "write";
		return -EACCES;
	}
	if (sticky && p->uid != 0 && p->uid != e->uid && p->uid != d->uid) {
		*why = "another user's file in a sticky folder: only its owner, the folder's owner "
		       "or root may replace it";
		return -EPERM;
	}
	if (!res_may(e, p, 2)) {
		*why = "no write permission on the file";
		return -EACCES;
	}
	return 0;
}

/*
 * The import's check of PATH for P, as open(2) with O_CREAT|O_TRUNC and the
 * kernel's sticky rules would decide: search on every folder (the lookup),
 * then for an existing file may_replace(), for a new name write on its
 * folder. Returns 0, -ENOENT with L->parent set for a new name, or the
 * refusal (*WHY set for a permission refusal). [T]
 */
static int import_check(struct vr_residency *r, const char *path, const struct vr_peer *p,
			struct res_lookup *l, const char **why)
{
	res_held(r);

	int ret = res_resolve_as(r, path, p, l);

	*why = NULL;
	if (ret == -EACCES)
		*why = "a folder on the way the caller may not search";
	if (ret == 0 && l->kind != VR_KIND_FILE)
		ret = l->kind == VR_KIND_DIR ? -EISDIR : -EPERM;
	else if (ret == 0)
		ret = may_replace(r, l->node, p, why);
	else if (ret == -ENOENT && l->parent && !res_may(l->parent, p, 3)) {
		*why = "no write permission on the folder";
		ret = -EACCES;
	}
	return ret;
}

int vr_res_may_load(struct vr_residency *r, const char *path, const struct vr_peer *p)
{
	struct res_lookup lk;
	const char *why;
	int ret;

	res_lock(r);
	ret = import_check(r, path, p, &lk, &why);
	res_unlock(r);
	return ret == -ENOENT && lk.parent ? 0 : ret;
}

int vr_res_import_open(struct vr_residency *r, const char *path, mode_t mode,
		       const struct vr_peer *p, const struct vr_caller *c, struct vr_handle **out)
{
	char rel[VR_SEAL_PATH_MAX];
	struct vr_dev_file *dev = NULL;
	struct res_lookup lk;
	const char *why;
	int ret = vr_dev_file_new(r->cfg.backend, &dev);

	if (ret)
		return ret;
	res_lock(r);
	ret = import_check(r, path, p, &lk, &why);
	if (ret == 0) {
		/* replaced in this hold: res_open_writer drops the lock, logs its refusals */
		ret = res_open_writer(r, lk.node, O_WRONLY | O_TRUNC, c, out);
		vr_dev_file_free(dev);
		return ret;
	}
	if (ret == -ENOENT && lk.parent)
		ret = res_create_held(r, path, mode, c, &dev, rel, out);
	res_unlock(r);
	vr_dev_file_free(dev); /* NULL once the new file took it */
	if (ret == 0) {
		res_audit(r, "vram_allocated", rel, c, "ok", NULL, NULL);
	} else if (why) {
		const char *name = path[0] == '/' ? path + 1 : path;

		vr_log(LOG_INFO, "import of %s by pid %d (uid %u) refused: %s (%s)", name,
		       (int)p->pid, (unsigned)p->uid, why, strerror(-ret));
		res_audit(r, "vram_import_refused", name, c, "denied", NULL, why);
	}
	return ret;
}
