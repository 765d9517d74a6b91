/* xattr.c - user.* extended attributes: names, values and their limits, on files and folders. */
#include "res_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Resolves PATH to a file or directory for its extended attributes. [T] */
static int xattr_node(struct vr_residency *r, const char *path, struct vr_node **out)
{
	res_held(r);

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

/* What an attribute counts against its entry's creator (meta.c). */
static uint64_t xattr_cost(const char *name, size_t size)
{
	return RES_META_XATTR + strlen(name) + 1 + size;
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
	res_lock(r);
	ret = xattr_node(r, path, &n);
	if (ret)
		goto unlock;
	x = xattr_find(n, name);
	if (x && (flags & 1 /* XATTR_CREATE */)) {
		ret = -EEXIST;
	} else if (!x && (flags & 2 /* XATTR_REPLACE */)) {
		ret = -ENODATA;
	} else if (x) {
		if (size > x->size && (ret = res_meta_add(r, n, size - x->size)) != 0)
			goto unlock;
		if (size < x->size)
			res_meta_sub(r, n, x->size - size);
		free(x->value);
		x->value = copy;
		x->size = size;
		copy = NULL;
	} else if (n->nxattrs >= VR_XATTR_MAX) {
		ret = -ENOSPC;
	} else if ((ret = res_meta_add(r, n, xattr_cost(name, size))) == 0) {
		struct res_xattr *nx = realloc(n->xattrs, (n->nxattrs + 1) * sizeof(*nx));
		char *nm = strdup(name);

		if (nx)
			n->xattrs = nx;
		if (!nx || !nm) {
			free(nm);
			res_meta_sub(r, n, xattr_cost(name, size));
			ret = -ENOMEM;
			goto unlock;
		}
		n->xattrs[n->nxattrs++] = (struct res_xattr){nm, copy, size};
		copy = NULL;
	}
	if (ret == 0) {
		res_now(&n->ctime);
		res_changed(r);
	}
unlock:
	res_unlock(r);
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
	res_lock(r);
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
	res_unlock(r);
	return ret;
}

int vr_res_listxattr(struct vr_residency *r, const char *path, char *buf, size_t cap, size_t *len)
{
	struct vr_node *n;
	size_t need = 0;
	int ret;

	res_lock(r);
	ret = xattr_node(r, path, &n);
	if (ret == -EOPNOTSUPP || ret == -EPERM) {
		*len = 0; /* links and generated entries simply have none */
		res_unlock(r);
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
	res_unlock(r);
	return ret;
}

int vr_res_removexattr(struct vr_residency *r, const char *path, const char *name)
{
	struct vr_node *n;
	struct res_xattr *x;
	int ret = xattr_name_ok(name);

	if (ret)
		return ret;
	res_lock(r);
	ret = xattr_node(r, path, &n);
	if (ret == 0 && !(x = xattr_find(n, name)))
		ret = -ENODATA;
	if (ret == 0) {
		res_meta_sub(r, n, xattr_cost(x->name, x->size));
		free(x->name);
		free(x->value);
		*x = n->xattrs[--n->nxattrs];
		res_now(&n->ctime);
		res_changed(r);
	}
	res_unlock(r);
	return ret;
}
