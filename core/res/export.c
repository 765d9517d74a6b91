/* export.c - leases: a sealed file's device memory handed to another process, read-only. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vr_lease {
	struct vr_node *node;  /* referenced; counted in its leases until ended */
	struct vr_lease *next; /* [T] in the node's lease_list while live */
	bool revoked;	       /* [T] ended by the file's owner or root (vr_res_revoke) */
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

	if (n->gated && p->uid != 0 && p->uid != n->uid) {
		res_unlock(r);
		return refuse(
		    r, rel, c, -EAGAIN,
		    "its owner ended its leases (revoke): other users' maps wait until it "
		    "is replaced or removed");
	}
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
		l->node = n;
		l->next = n->lease_list;
		n->lease_list = l;
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
	ret = res_make_resident(r, n, &c); /* the map waits for a restore */
	if (ret)
		snprintf(why, sizeof(why), "%s",
			 ret == -EAGAIN	  ? "evicted to host memory, and restore=manual"
			 : ret == -ENOSPC ? "evicted, and no room on the device to restore it"
					  : "evicted, and its restore failed");
	if (ret == 0 && verify) {
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

/* -ESTALE with WHY when L was revoked, else 0. */
static int lease_revoked(struct vr_residency *r, const struct vr_lease *l, char *why, size_t cap)
{
	res_lock(r);
	bool revoked = l->revoked;

	res_unlock(r);
	if (revoked)
		snprintf(why, cap, "%s",
			 "the lease was ended by the file's owner or root (revoke): the mapping "
			 "reads zeros once the file is removed or replaced");
	return revoked ? -ESTALE : 0;
}

int vr_res_lease_verify(struct vr_residency *r, struct vr_lease *l, char *why, size_t cap)
{
	int ret = lease_revoked(r, l, why, cap);

	if (ret == 0)
		ret = res_check_shared(r, l->node, &l->who, why, cap);
	return ret == -EBADMSG || ret == -EACCES ? -EIO : ret;
}

/* Takes live lease L off its node's list and counts. [T] */
static void lease_unlink(struct vr_residency *r, struct vr_lease *l)
{
	res_held(r);

	for (struct vr_lease **p = &l->node->lease_list; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			break;
		}
	l->node->leases--;
	r->leases--;
}

int vr_res_lease_release(struct vr_residency *r, struct vr_lease *l, bool stopping, char *why,
			 size_t cap)
{
	char rel[VR_SEAL_PATH_MAX];
	int ret;

	if (!l)
		return 0;
	ret = lease_revoked(r, l, why, cap);
	res_lock(r);
	if (!l->revoked)
		lease_unlink(r, l);
	else if (--l->node->revoked == 0 && l->node->client_bytes) {
		r->client_bytes -= l->node->client_bytes; /* the last holder let go */
		l->node->client_bytes = 0;
	}
	/* the daemon stops under a live mapping: what the lessee verified stays readable */
	if (stopping && !l->revoked)
		l->node->keep_shared = true;
	if (res_node_path(l->node, rel, sizeof(rel)) != 0)
		snprintf(rel, sizeof(rel), "%s", l->node->name);
	res_node_put(r, l->node);
	res_unlock(r);
	res_audit(r, "vram_export_ended", rel, &l->who, "ok", NULL,
		  ret	     ? "after a revoke"
		  : stopping ? "the daemon stops"
			     : NULL);
	free(l->seal_json);
	free(l);
	return ret;
}

void vr_res_lease_end(struct vr_residency *r, struct vr_lease *l)
{
	char why[VR_WHY_MAX];

	vr_res_lease_release(r, l, false, why, sizeof(why));
}

/*
 * The file PATH names, for P to revoke its leases: resolved as P (searching
 * as open(2) would), a regular file, and P its owner or root. Returns 0 or
 * the refusal, *WHY saying why. [T]
 */
static int revoke_target(struct vr_residency *r, const char *path, const struct vr_peer *p,
			 struct vr_node **out, const char **why)
{
	res_held(r);

	struct res_lookup lk;
	int ret = res_resolve_as(r, path, p, &lk);

	*why = ret == -EACCES ? "a folder on the way the caller may not search" : "no such file";
	if (ret == 0 && lk.kind != VR_KIND_FILE) {
		ret = lk.kind == VR_KIND_DIR ? -EISDIR : -EINVAL;
		*why = "not a regular file";
	} else if (ret == 0 && p->uid != 0 && p->uid != lk.node->uid) {
		ret = -EPERM;
		*why = "only the file's owner or root may end its leases";
	}
	*out = ret ? NULL : lk.node;
	return ret;
}

int vr_res_revoke(struct vr_residency *r, const char *path, const struct vr_peer *p,
		  unsigned *ended)
{
	struct vr_caller c = {.uid = p->uid, .gid = p->gid, .pid = p->pid, .tgid = p->pid};
	char rel[VR_SEAL_PATH_MAX], detail[160];
	uint8_t digest[VR_DIGEST_SIZE];
	struct vr_node *n;
	const char *why;
	unsigned count = 0;
	bool sealed;

	snprintf(rel, sizeof(rel), "%s", path[0] == '/' ? path + 1 : path);
	res_lock(r);
	int ret = revoke_target(r, path, p, &n, &why);

	if (ret) {
		res_unlock(r);
		vr_log(LOG_INFO, "revoke of %s by pid %d (uid %u) refused: %s (%s)", rel,
		       (int)c.pid, (unsigned)c.uid, why, strerror(-ret));
		res_audit(r, "vram_revoke_refused", rel, &c, "denied", NULL, why);
		return ret;
	}
	/* each holder keeps its slot (and its mapping) until it unmaps or goes: its next call
	 * there answers ESTALE; the file is free for rm and replacement now */
	while (n->lease_list) {
		struct vr_lease *l = n->lease_list;

		lease_unlink(r, l);
		l->revoked = true;
		n->revoked++;
		count++;
	}
	n->gated = true; /* no reader re-pins it before the owner's rm or replacement */
	sealed = n->seal != NULL;
	if (sealed)
		memcpy(digest, n->seal->fsverity, VR_DIGEST_SIZE);
	res_unlock(r);
	snprintf(detail, sizeof(detail), "%u lease(s) ended by the file's %s", count,
		 p->uid == 0 ? "root" : "owner");
	vr_log(LOG_NOTICE, "%s: %s (pid %d, uid %u)", rel, detail, (int)c.pid, (unsigned)c.uid);
	res_audit(r, "vram_export_revoked", rel, &c, "ok", sealed ? digest : NULL, detail);
	*ended = count;
	return 0;
}

int res_device_info(struct vr_residency *r, struct vr_device_info *out)
{
	int ret = vr_backend_info(r->cfg.backend, out);

	res_lock(r);
	uint64_t held = r->client_bytes;

	res_unlock(r);
	if (ret == 0) {
		out->held_by_clients += held;
		out->free_bytes -= held < out->free_bytes ? held : out->free_bytes;
	}
	return ret;
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
		 "they end, or its owner or root revokes them)",
		 op, n->leases);
	vr_log(LOG_INFO, "%s: %s", path, why);
	res_audit(r, "policy_violation", path, c, "denied", n->seal ? n->seal->fsverity : NULL,
		  why);
	return -EBUSY;
}
