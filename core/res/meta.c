/* meta.c - the host memory the tree's metadata takes (entries, link targets, user.* xattrs),
 * counted per user against a limit, so no user other than root or the mount's owner can grow
 * the daemon's memory without bound with empty files, folders and attributes. */
#include "res_private.h"

#include <errno.h>
#include <stdlib.h>

/* One user's count. */
struct res_meta_user {
	uid_t uid;
	uint64_t bytes;
	uint32_t dirs; /* directory handles open */
};

/* Users no limit applies to: root, and the mount's owner (it is their tree). */
static bool exempt(const struct vr_residency *r, uid_t uid)
{
	return uid == 0 || uid == r->cfg.root_uid;
}

/* UID's count, added when absent (NULL only without memory). [T] */
static struct res_meta_user *user_of(struct vr_residency *r, uid_t uid)
{
	for (size_t i = 0; i < r->nmeta; i++)
		if (r->meta[i].uid == uid)
			return &r->meta[i];
	if (r->nmeta == r->capmeta) {
		size_t cap = r->capmeta ? 2 * r->capmeta : 8;
		struct res_meta_user *v = realloc(r->meta, cap * sizeof(*v));

		if (!v)
			return NULL;
		r->meta = v;
		r->capmeta = cap;
	}
	r->meta[r->nmeta] = (struct res_meta_user){uid, 0, 0};
	return &r->meta[r->nmeta++];
}

uint64_t res_meta_limit(const struct vr_residency *r)
{
	return r->cfg.meta_limit ? r->cfg.meta_limit : VR_META_LIMIT_DEFAULT;
}

int res_meta_add(struct vr_residency *r, struct vr_node *n, uint64_t bytes)
{
	res_held(r);

	struct res_meta_user *u = user_of(r, n->meta_uid);

	if (!u)
		return -ENOMEM;
	if (!exempt(r, n->meta_uid) && u->bytes + bytes > res_meta_limit(r))
		return -EDQUOT;
	u->bytes += bytes;
	n->meta_bytes += bytes;
	r->meta_bytes += bytes;
	return 0;
}

void res_meta_sub(struct vr_residency *r, struct vr_node *n, uint64_t bytes)
{
	res_held(r);

	/* N counts BYTES at least (the callers give back what they added), so its user has a
	 * count already: found, not added */
	struct res_meta_user *u = user_of(r, n->meta_uid);

	n->meta_bytes -= bytes;
	r->meta_bytes -= bytes;
	if (u)
		u->bytes -= bytes;
}

int res_dirs_take(struct vr_residency *r, uid_t uid)
{
	res_held(r);

	struct res_meta_user *u = user_of(r, uid);

	if (!u)
		return -ENOMEM;
	if (!exempt(r, uid) && u->dirs >= RES_DIRS_PER_USER)
		return -EMFILE;
	u->dirs++;
	return 0;
}

void res_dirs_give(struct vr_residency *r, uid_t uid)
{
	res_held(r);

	struct res_meta_user *u = user_of(r, uid);

	if (u && u->dirs)
		u->dirs--;
}

void res_meta_free(struct vr_residency *r)
{
	free(r->meta);
	r->meta = NULL;
	r->nmeta = r->capmeta = 0;
}
