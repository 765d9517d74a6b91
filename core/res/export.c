/* export.c - leases: a sealed file's device memory handed to another process, read-only. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vr_lease {
	struct vr_node *node; /* referenced, and counted in its leases */
	struct vr_caller who;
	uint64_t size;
	char *seal_json;
	size_t seal_len;
};

/* Logs and audits a refused export of PATH, and returns ERR. */
static int refuse(struct vr_residency *r, const char *path, const struct vr_caller *c, int err,
		  const char *why)
{
	char detail[VR_WHY_MAX + 64];

	snprintf(detail, sizeof(detail), "%s (%s)", why, strerror(-err));
	vr_log(LOG_INFO, "export of %s to pid %d (uid %u) refused: %s", path, (int)c->pid,
	       (unsigned)c->uid, detail);
	res_audit(r, "vram_export_refused", path, c, "denied", NULL, detail);
	return err;
}

/*
 * The file PATH names, for P: resolved and checked under the tree lock (a
 * sealed regular file P may read, as open(2) would decide), and referenced.
 * Returns 0, or the refusal's error, logged and audited.
 */
static int lease_target(struct vr_residency *r, const char *path, const struct vr_peer *p,
			const char *rel, const struct vr_caller *c, struct vr_node **out)
{
	struct res_lookup lk;
	int ret;

	res_lock(r);
	ret = res_resolve_as(r, path, p, &lk);
	if (ret == 0 && lk.kind == VR_KIND_DIR)
		ret = -EISDIR;
	else if (ret == 0 && lk.kind != VR_KIND_FILE)
		ret = -EINVAL; /* links are resolved by the client; generated text has no memory */
	/* a name it cannot reach is a name it cannot learn of: ENOENT and EACCES as open(2) */
	if (ret == 0 && !res_may_read(lk.node, p))
		ret = -EACCES;
	if (ret) {
		res_unlock(r);
		return refuse(r, rel, c, ret,
			      ret == -EACCES ? "the caller may not read it"
			      : ret == -EINVAL
				  ? "not a regular file (a client resolves links itself)"
			      : ret == -EISDIR ? "a directory, not a file"
					       : "no such file");
	}
	struct vr_node *n = lk.node;

	if (n->state != ST_SEALED) {
		bool bad = n->state == ST_QUARANTINED || n->state == ST_REFUSED;

		res_unlock(r);
		return refuse(r, rel, c, bad ? -EIO : -EAGAIN,
			      bad ? "it failed a check: quarantined or refused"
				  : "not sealed yet: only a whole, sealed file is handed out");
	}
	n->refs++;
	res_unlock(r);
	*out = n;
	return 0;
}

/*
 * Exports N's memory into EXP and L, under shared IO (no replacement or free
 * can run while the descriptors are made), if N is still sealed; counts the
 * lease. Returns 0 or -errno, WHY saying why.
 */
static int export_sealed(struct vr_residency *r, struct vr_node *n, struct vr_lease *l,
			 struct vr_dev_export *exp, char why[VR_WHY_MAX])
{
	int ret;

	pthread_rwlock_rdlock(&n->io);
	res_lock(r);
	if (n->state != ST_SEALED || !n->seal_json) {
		ret = n->state == ST_REMOVED ? -ENOENT : -EIO;
		snprintf(why, VR_WHY_MAX, "%s", "changed while it was checked");
	} else {
		l->seal_json = strdup(n->seal_json);
		l->seal_len = l->seal_json ? strlen(l->seal_json) : 0;
		l->size = n->size;
		ret = l->seal_json ? 0 : -ENOMEM;
		snprintf(why, VR_WHY_MAX, "%s", "out of memory");
	}
	res_unlock(r);
	if (ret == 0) {
		ret = vr_dev_export(n->dev, exp);
		if (ret)
			snprintf(why, VR_WHY_MAX, "the backend cannot share this file's memory: %s",
				 strerror(-ret));
	}
	if (ret == 0) {
		res_lock(r);
		n->leases++;
		r->leases++;
		r->exports++;
		res_unlock(r);
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

int vr_res_lease(struct vr_residency *r, const char *path, const struct vr_peer *p, bool verify,
		 struct vr_lease **out, struct vr_dev_export *exp)
{
	struct vr_caller c = {.uid = p->uid, .gid = p->gid, .pid = p->pid, .tgid = p->pid};
	char rel[VR_SEAL_PATH_MAX], why[VR_WHY_MAX];
	struct vr_lease *l = calloc(1, sizeof(*l));
	struct vr_node *n = NULL;
	int ret;

	if (!l)
		return -ENOMEM;
	snprintf(rel, sizeof(rel), "%s", path[0] == '/' ? path + 1 : path);
	ret = lease_target(r, path, p, rel, &c, &n);
	if (ret) {
		free(l);
		return ret;
	}
	if (verify) {
		ret = res_check_shared(r, n, &c, why, sizeof(why));
		if (ret)
			ret = ret == -EBADMSG || ret == -EACCES ? -EIO : ret;
	}
	if (ret == 0)
		ret = export_sealed(r, n, l, exp, why);
	if (ret) {
		free(l->seal_json);
		free(l);
		res_lock(r);
		res_node_put(r, n);
		res_unlock(r);
		return refuse(r, rel, &c, ret, why);
	}
	l->node = n;
	l->who = c;
	snprintf(why, sizeof(why), "%u descriptors, %llu bytes%s", exp->count,
		 (unsigned long long)l->size, verify ? ", checked on the device first" : "");
	res_audit(r, "vram_exported", rel, &c, "ok", n->seal->fsverity, why);
	vr_log(LOG_INFO, "%s exported to pid %d (uid %u): %s", rel, (int)c.pid, (unsigned)c.uid,
	       why);
	*out = l;
	return 0;
}

const char *vr_lease_seal(const struct vr_lease *l, size_t *len)
{
	*len = l->seal_len;
	return l->seal_json;
}

uint64_t vr_lease_size(const struct vr_lease *l)
{
	return l->size;
}

int vr_res_lease_verify(struct vr_residency *r, struct vr_lease *l, char *why, size_t cap)
{
	int ret = res_check_shared(r, l->node, &l->who, why, cap);

	return ret == -EBADMSG || ret == -EACCES ? -EIO : ret;
}

void vr_res_lease_end(struct vr_residency *r, struct vr_lease *l)
{
	char rel[VR_SEAL_PATH_MAX];

	if (!l)
		return;
	res_lock(r);
	l->node->leases--;
	r->leases--;
	if (res_node_path(l->node, rel, sizeof(rel)) != 0)
		snprintf(rel, sizeof(rel), "%s", l->node->name);
	res_node_put(r, l->node);
	res_unlock(r);
	res_audit(r, "vram_export_ended", rel, &l->who, "ok", NULL, NULL);
	free(l->seal_json);
	free(l);
}

int res_leased(struct vr_residency *r, const struct vr_node *n, const char *op, const char *path,
	       const struct vr_caller *c)
{
	res_held(r);

	char why[160];

	if (!n || n->is_dir || n->leases == 0)
		return 0;
	snprintf(why, sizeof(why),
		 "%s refused: the file is mapped by %u lease(s) through the socket (EBUSY until "
		 "they end)",
		 op, n->leases);
	vr_log(LOG_INFO, "%s: %s", path, why);
	res_audit(r, "policy_violation", path, c, "denied", n->seal ? n->seal->fsverity : NULL,
		  why);
	return -EBUSY;
}
