/* residency.c - the one place that decides what lives on the device: tree, files, seals. */
#include "residency.h"
#include "digest.h"
#include "log.h"
#include "name.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <nettle/memops.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Inode numbers of generated files, derived from their node's. */
#define INO_SEAL   (1ULL << 62)
#define INO_VERIFY (1ULL << 61)
#define INO_STATUS 2ULL

enum file_state {
	ST_WRITING,	/* open for writing, not sealed yet */
	ST_SEALED,	/* immutable, seal signed */
	ST_QUARANTINED, /* failed a check: reads fail with EIO */
	ST_FAILED,	/* the load failed; removed at the writer's close */
	ST_REMOVED,	/* out of the tree, device memory freed; handles get ESTALE */
};

/*
 * Locking: R->LOCK guards the tree's shape, every node's metadata, state and
 * reference count. A file's IO lock guards its device memory: writes, resizes,
 * sealing and freeing hold it exclusively, reads and digests shared. Order:
 * IO before R->LOCK; R->LOCK is never held while waiting for IO.
 */
struct vr_node {
	bool is_dir;
	char *name;
	struct vr_node *parent; /* NULL once unlinked (and for the root) */
	struct vr_node *children, *next;
	uint64_t ino;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	unsigned refs; /* 1 for the tree while linked, plus one per handle */
	/* files */
	pthread_rwlock_t io;
	enum file_state state;
	int load_err; /* why a load failed */
	uint64_t size;
	unsigned writers;
	struct vr_dev_file *dev;
	uint64_t held; /* device bytes dev holds, as of the last resize (tree lock) */
	struct vr_seal *seal;
	char *seal_json;
};

struct vr_handle {
	struct vr_node *node; /* NULL for generated text */
	bool writer;
	bool dirty; /* wrote or resized through this handle */
	char *text;
	size_t len;
	int tail_err; /* returned by the read after the text (verify's failure) */
};

struct vr_residency {
	pthread_mutex_t lock;
	struct vr_res_config cfg;
	struct vr_device_info dev;
	struct vr_node *root;
	uint64_t next_ino;
	uint64_t files, sealed, quarantined;
};

static struct vr_handle *handle_new(struct vr_node *n);

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* Appends an audit record; returns its error (already logged by the audit module). */
static int audit_must(struct vr_residency *r, const char *event, const char *path,
		      const struct vr_caller *c, const char *outcome, const uint8_t *digest,
		      const char *detail)
{
	struct vr_audit_rec rec = {.event = event,
				   .path = path,
				   .uid = c ? c->uid : 0,
				   .pid = c ? c->pid : 0,
				   .outcome = outcome,
				   .digest = digest,
				   .detail = detail};

	return r->cfg.audit ? vr_audit_log(r->cfg.audit, &rec) : 0;
}

/* For records whose loss cannot undo the decision: the failure is logged where it happens. */
static void audit(struct vr_residency *r, const char *event, const char *path,
		  const struct vr_caller *c, const char *outcome, const uint8_t *digest,
		  const char *detail)
{
	(void)audit_must(r, event, path, c, outcome, digest, detail);
}

/* Logs why an operation was refused; a missing name is ordinary and not logged. */
static void refused(const char *op, const char *path, int err)
{
	if (err && err != -ENOENT)
		vr_log(LOG_INFO, "%s %s refused: %s", op, path, strerror(-err));
}

static struct vr_node *node_new(struct vr_residency *r, const char *name, bool is_dir, mode_t mode,
				const struct vr_caller *c)
{
	struct vr_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return NULL;
	}
	n->is_dir = is_dir;
	n->ino = r->next_ino++;
	n->mode = (mode & 07777) | (is_dir ? S_IFDIR : S_IFREG);
	n->uid = c ? c->uid : 0;
	n->gid = c ? c->gid : 0;
	now(&n->mtime);
	n->atime = n->ctime = n->mtime;
	n->refs = 1;
	pthread_rwlock_init(&n->io, NULL);
	return n;
}

static void node_destroy(struct vr_node *n)
{
	pthread_rwlock_destroy(&n->io);
	free(n->seal);
	free(n->seal_json);
	free(n->name);
	free(n);
}

/* Relative path of N (no leading '/') into BUF; returns 0 or -ENAMETOOLONG. Under r->lock. */
static int node_path(const struct vr_node *n, char *buf, size_t cap)
{
	const struct vr_node *chain[VR_SEAL_PATH_MAX / 2];
	size_t depth = 0, len = 0;

	buf[0] = '\0';
	for (; n && n->parent; n = n->parent) {
		if (depth == sizeof(chain) / sizeof(chain[0]))
			return -ENAMETOOLONG;
		chain[depth++] = n;
	}
	while (depth-- > 0) {
		size_t l = strlen(chain[depth]->name);

		if (len + l + 2 > cap)
			return -ENAMETOOLONG;
		if (len)
			buf[len++] = '/';
		memcpy(buf + len, chain[depth]->name, l + 1);
		len += l;
	}
	return 0;
}

/* Length of directory DIR's relative path ("" for the root). Under r->lock. */
static size_t path_len(const struct vr_node *dir)
{
	size_t len = 0;

	for (; dir && dir->parent; dir = dir->parent)
		len += strlen(dir->name) + 1;
	return len;
}

static struct vr_node *child(const struct vr_node *dir, const char *name, size_t len)
{
	for (struct vr_node *c = dir->children; c; c = c->next)
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static void link_child(struct vr_node *dir, struct vr_node *n)
{
	n->parent = dir;
	n->next = dir->children;
	dir->children = n;
}

static void unlink_child(struct vr_node *n)
{
	struct vr_node **pp = &n->parent->children;

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	n->next = NULL;
	n->parent = NULL;
}

/* What a path names. */
struct lookup {
	enum vr_kind kind;
	struct vr_node *node;	/* the node, or for seal/verify the file/dir it belongs to */
	struct vr_node *parent; /* directory holding the last component */
	const char *last;	/* last component (within the path) */
	size_t last_len;
};

/*
 * Resolves PATH under r->lock. Returns 0, -ENOENT (with L->parent and
 * L->last set when only the last component is missing), -ENOTDIR.
 */
static int resolve(struct vr_residency *r, const char *path, struct lookup *l)
{
	struct vr_node *cur = r->root;
	const char *p = path;

	memset(l, 0, sizeof(*l));
	while (*p == '/')
		p++;
	if (*p == '\0') {
		l->kind = VR_KIND_DIR;
		l->node = r->root;
		return 0;
	}
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		bool last = !slash || slash[strspn(slash, "/")] == '\0';
		struct vr_node *n;

		if (!cur->is_dir)
			return -ENOTDIR;
		if (len > VR_NAME_MAX)
			return -ENAMETOOLONG;
		n = child(cur, p, len);
		if (last) {
			l->parent = cur;
			l->last = p;
			l->last_len = len;
			if (n) {
				l->kind = n->is_dir ? VR_KIND_DIR : VR_KIND_FILE;
				l->node = n;
				return 0;
			}
			if (len == 6 && memcmp(p, "verify", 6) == 0) {
				l->kind = VR_KIND_VERIFY;
				l->node = cur;
				return 0;
			}
			if (len == 6 && memcmp(p, "status", 6) == 0 && cur == r->root) {
				l->kind = VR_KIND_STATUS;
				return 0;
			}
			if (len > 5 && memcmp(p + len - 5, ".seal", 5) == 0) {
				struct vr_node *f = child(cur, p, len - 5);

				if (f && !f->is_dir && f->seal && f->state != ST_WRITING &&
				    f->state != ST_FAILED) {
					l->kind = VR_KIND_SEAL;
					l->node = f;
					return 0;
				}
			}
			return -ENOENT;
		}
		if (!n)
			return -ENOENT;
		cur = n;
		p = slash + strspn(slash, "/");
	}
}

static void attr_of_node(const struct vr_node *n, struct vr_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->kind = n->is_dir ? VR_KIND_DIR : VR_KIND_FILE;
	a->ino = n->ino;
	a->mode = n->mode;
	a->uid = n->uid;
	a->gid = n->gid;
	a->atime = n->atime;
	a->mtime = n->mtime;
	a->ctime = n->ctime;
	if (n->is_dir) {
		a->nlink = 2;
		for (struct vr_node *c = n->children; c; c = c->next)
			a->nlink += c->is_dir;
	} else {
		a->nlink = 1;
		a->size = n->size;
		a->blocks = n->held / 512;
	}
}

static void attr_of_text(uint64_t ino, const struct vr_node *like, size_t size, struct vr_attr *a,
			 enum vr_kind kind)
{
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->ino = ino;
	a->mode = S_IFREG | 0444;
	a->nlink = 1;
	a->size = size;
	if (like) {
		a->uid = like->uid;
		a->gid = like->gid;
		a->atime = like->atime;
		a->mtime = like->mtime;
		a->ctime = like->ctime;
	}
}

int vr_res_new(const struct vr_res_config *cfg, struct vr_residency **out)
{
	struct vr_residency *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	ret = vr_backend_info(cfg->backend, &r->dev);
	if (ret) {
		free(r);
		return ret;
	}
	r->next_ino = 1;
	r->root = node_new(r, "", true, 0755, NULL);
	if (!r->root) {
		free(r);
		return -ENOMEM;
	}
	r->root->parent = NULL;
	r->next_ino = 16;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

/* Scrubs and frees a file's device memory; audits it. Caller holds the IO lock or the last ref. */
static void release_device(struct vr_residency *r, struct vr_node *n, const char *path,
			   const struct vr_caller *c)
{
	int ret;

	if (!n->dev)
		return;
	ret = vr_dev_file_free(r->cfg.backend, n->dev);
	n->dev = NULL;
	audit(r, "vram_deallocated", path, c, ret ? "failed" : "ok", NULL,
	      ret ? "scrub of device memory reported an error; memory freed" : NULL);
}

/* Frees one file at shutdown; kept out of free_subtree() so recursion keeps small frames. */
static __attribute__((noinline)) void free_file(struct vr_residency *r, struct vr_node *n)
{
	char path[VR_SEAL_PATH_MAX];

	if (node_path(n, path, sizeof(path)) != 0)
		strcpy(path, n->name);
	release_device(r, n, path, NULL);
}

static void free_subtree(struct vr_residency *r, struct vr_node *n)
{
	while (n->children) {
		struct vr_node *c = n->children;

		n->children = c->next;
		free_subtree(r, c);
	}
	if (!n->is_dir)
		free_file(r, n);
	node_destroy(n);
}

void vr_res_free(struct vr_residency *r)
{
	if (!r)
		return;
	free_subtree(r, r->root);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Drops one reference; frees the node at zero. Under r->lock. */
static void node_put(struct vr_residency *r, struct vr_node *n)
{
	if (--n->refs > 0)
		return;
	/* files are detached and scrubbed before their last reference goes */
	if (!n->is_dir)
		release_device(r, n, n->name, NULL);
	node_destroy(n);
}

int vr_res_getattr(struct vr_residency *r, const char *path, struct vr_attr *out)
{
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret == 0) {
		switch (l.kind) {
		case VR_KIND_DIR:
		case VR_KIND_FILE:
			attr_of_node(l.node, out);
			break;
		case VR_KIND_SEAL:
			attr_of_text(l.node->ino | INO_SEAL, l.node,
				     l.node->seal_json ? strlen(l.node->seal_json) : 0, out,
				     VR_KIND_SEAL);
			break;
		case VR_KIND_VERIFY:
			/* generated at open: its length is unknown until read (direct_io) */
			attr_of_text(l.node->ino | INO_VERIFY, l.node, 0, out, VR_KIND_VERIFY);
			break;
		case VR_KIND_STATUS:
			attr_of_text(INO_STATUS, r->root, 0, out, VR_KIND_STATUS);
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_fgetattr(struct vr_residency *r, struct vr_handle *h, struct vr_attr *out)
{
	if (!h->node) {
		attr_of_text(0, NULL, h->len, out, VR_KIND_VERIFY);
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	attr_of_node(h->node, out);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int vr_res_opendir(struct vr_residency *r, const char *path, struct vr_handle **out)
{
	struct vr_handle *h;
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_DIR)
		ret = -ENOTDIR;
	if (ret == 0) {
		h = handle_new(l.node);
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
	char name[VR_NAME_MAX + 8];
	struct vr_attr a;

	if (!dir || !dir->is_dir)
		return -ENOTDIR;
	pthread_mutex_lock(&r->lock);
	/* a removed directory lists as empty */
	if (dir != r->root && !dir->parent)
		goto unlock;
	attr_of_text(dir->ino | INO_VERIFY, dir, 0, &a, VR_KIND_VERIFY);
	if (fill(ctx, "verify", &a))
		goto unlock;
	if (dir == r->root) {
		attr_of_text(INO_STATUS, r->root, 0, &a, VR_KIND_STATUS);
		if (fill(ctx, "status", &a))
			goto unlock;
	}
	for (struct vr_node *c = dir->children; c; c = c->next) {
		attr_of_node(c, &a);
		if (fill(ctx, c->name, &a))
			break;
		if (!c->is_dir && c->seal_json &&
		    (c->state == ST_SEALED || c->state == ST_QUARANTINED)) {
			snprintf(name, sizeof(name), "%s.seal", c->name);
			attr_of_text(c->ino | INO_SEAL, c, strlen(c->seal_json), &a, VR_KIND_SEAL);
			if (fill(ctx, name, &a))
				break;
		}
	}
unlock:
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Resolves the parent of a path to be created and validates the new name. Under r->lock. */
static int resolve_new(struct vr_residency *r, const char *path, bool is_file, struct lookup *l)
{
	int ret = resolve(r, path, l);

	if (ret == 0)
		return -EEXIST;
	if (ret != -ENOENT || !l->parent)
		return ret;
	ret = is_file ? vr_name_validate_file_n(l->last, l->last_len)
		      : vr_name_validate_n(l->last, l->last_len);
	/* a seal names its file by its relative path, which must fit */
	if (ret == 0 && path_len(l->parent) + l->last_len >= VR_SEAL_PATH_MAX)
		ret = -ENAMETOOLONG;
	return ret;
}

/* Copies the last component into a NUL-terminated buffer. */
static void last_name(const struct lookup *l, char out[VR_NAME_MAX + 1])
{
	memcpy(out, l->last, l->last_len);
	out[l->last_len] = '\0';
}

int vr_res_mkdir(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct lookup l;
	struct vr_node *n;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve_new(r, path, false, &l);
	if (ret)
		goto unlock;
	last_name(&l, name);
	n = node_new(r, name, true, mode, c);
	if (!n) {
		ret = -ENOMEM;
		goto unlock;
	}
	link_child(l.parent, n);
	now(&l.parent->mtime);
	l.parent->ctime = l.parent->mtime;
unlock:
	pthread_mutex_unlock(&r->lock);
	refused("mkdir", path, ret);
	return ret;
}

int vr_res_rmdir(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	struct lookup l;
	int ret;

	(void)c;
	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
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
	struct vr_node *parent = l.node->parent;

	unlink_child(l.node);
	now(&parent->mtime);
	parent->ctime = parent->mtime;
	node_put(r, l.node);
unlock:
	pthread_mutex_unlock(&r->lock);
	refused("rmdir", path, ret);
	return ret;
}

/*
 * Takes file N out of the tree and the counts and drops the tree's reference;
 * the caller holds another and then frees the device memory (scrub_removed).
 * Under r->lock.
 */
static void detach_file(struct vr_residency *r, struct vr_node *n)
{
	struct vr_node *parent = n->parent;
	char path[VR_SEAL_PATH_MAX];
	char *full;

	if (n->state == ST_SEALED || n->state == ST_QUARANTINED)
		r->sealed--;
	if (n->state == ST_QUARANTINED)
		r->quarantined--;
	r->files--;
	n->state = ST_REMOVED;
	n->held = 0;
	/* a detached node keeps its full path as its name, for the audit of the free */
	if (node_path(n, path, sizeof(path)) == 0 && (full = strdup(path))) {
		free(n->name);
		n->name = full;
	}
	unlink_child(n);
	now(&parent->mtime);
	parent->ctime = parent->mtime;
	n->refs--;
}

/* Scrubs and frees a detached file's device memory, then drops the caller's reference. */
static void scrub_removed(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	/* exclusive: no read or digest of these bytes is in flight */
	pthread_rwlock_wrlock(&n->io);
	release_device(r, n, n->name, c);
	pthread_rwlock_unlock(&n->io);
	pthread_mutex_lock(&r->lock);
	node_put(r, n);
	pthread_mutex_unlock(&r->lock);
}

int vr_res_unlink(struct vr_residency *r, const char *path, const struct vr_caller *c)
{
	char rel[VR_SEAL_PATH_MAX];
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret)
		goto unlock;
	if (l.kind == VR_KIND_DIR) {
		ret = -EISDIR;
		goto unlock;
	}
	if (l.kind != VR_KIND_FILE) {
		/* seals, verify and status go with their file or not at all */
		ret = -EPERM;
		audit(r, "policy_violation", path + 1, c, "denied", NULL,
		      "generated files cannot be removed");
		goto unlock;
	}
	node_path(l.node, rel, sizeof(rel));
	vr_log(LOG_DEBUG, "unlink %s", rel);
	struct vr_node *n = l.node;

	/* rm frees now, even while the file is open: readers then get ESTALE */
	n->refs++;
	detach_file(r, n);
	pthread_mutex_unlock(&r->lock);
	scrub_removed(r, n, c);
	return 0;
unlock:
	pthread_mutex_unlock(&r->lock);
	refused("unlink", path, ret);
	return ret;
}

/* Builds, signs and caches the seal of N for its current path. Under r->lock. */
static int sign_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s)
{
	char *json;
	int ret = node_path(n, s->path, sizeof(s->path));

	if (ret)
		return ret;
	ret = vr_seal_sign(s, r->cfg.keys);
	if (ret)
		return ret;
	ret = vr_seal_to_json(s, &json);
	if (ret)
		return ret;
	free(n->seal_json);
	n->seal_json = json;
	return 0;
}

/* Re-signs file N's seal for its current path and audits it. Under r->lock. */
static __attribute__((noinline)) int resign_file(struct vr_residency *r, struct vr_node *n,
						 const struct vr_caller *c)
{
	char old[VR_SEAL_PATH_MAX], detail[VR_SEAL_PATH_MAX + 16];
	int ret;

	if (!n->seal || (n->state != ST_SEALED && n->state != ST_QUARANTINED))
		return 0;
	strcpy(old, n->seal->path);
	ret = sign_seal(r, n, n->seal);
	snprintf(detail, sizeof(detail), "from %s", old);
	audit(r, "seal_renamed", n->seal->path, c, ret ? "failed" : "ok", n->seal->fsverity,
	      detail);
	return ret;
}

/* Re-signs every seal below N (after a rename); returns the first error. Under r->lock. */
static int resign_subtree(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	int ret = 0;

	if (!n->is_dir)
		return resign_file(r, n, c);
	for (struct vr_node *ch = n->children; ch; ch = ch->next) {
		int e = resign_subtree(r, ch, c);

		if (e && !ret)
			ret = e;
	}
	return ret;
}

/* Length of the longest relative path below N, N's own name included. Under r->lock. */
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

int vr_res_rename(struct vr_residency *r, const char *from, const char *to, unsigned flags,
		  const struct vr_caller *c)
{
	char name[VR_NAME_MAX + 1];
	struct vr_node *victim = NULL;
	struct lookup src, dst;
	int ret;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = resolve(r, from, &src);
	if (ret)
		goto unlock;
	if (src.kind != VR_KIND_DIR && src.kind != VR_KIND_FILE) {
		ret = -EPERM;
		goto unlock;
	}
	if (src.node == r->root) {
		ret = -EBUSY;
		goto unlock;
	}
	ret = resolve(r, to, &dst);
	if (ret == 0) {
		if (dst.node == src.node)
			goto unlock; /* same file: nothing to do */
		if (flags & RENAME_NOREPLACE) {
			ret = -EEXIST;
			goto unlock;
		}
		if (dst.kind != VR_KIND_DIR && dst.kind != VR_KIND_FILE) {
			ret = -EPERM;
			goto unlock;
		}
		if (dst.node == r->root) {
			ret = -EBUSY;
			goto unlock;
		}
		if (src.kind == VR_KIND_DIR && dst.kind == VR_KIND_FILE)
			ret = -ENOTDIR;
		else if (src.kind == VR_KIND_FILE && dst.kind == VR_KIND_DIR)
			ret = -EISDIR;
		else if (dst.kind == VR_KIND_DIR && dst.node->children)
			ret = -ENOTEMPTY;
		if (ret)
			goto unlock;
	} else if (ret != -ENOENT || !dst.parent) {
		goto unlock;
	}
	ret = src.kind == VR_KIND_FILE ? vr_name_validate_file_n(dst.last, dst.last_len)
				       : vr_name_validate_n(dst.last, dst.last_len);
	if (ret)
		goto unlock;
	if (src.kind == VR_KIND_DIR && is_ancestor(src.node, dst.parent)) {
		ret = -EINVAL;
		goto unlock;
	}
	/* every seal below must still fit its path, or nothing moves */
	if (path_len(dst.parent) + longest_below(src.node) - strlen(src.node->name) +
		dst.last_len >=
	    VR_SEAL_PATH_MAX) {
		ret = -ENAMETOOLONG;
		goto unlock;
	}
	last_name(&dst, name);
	char *copy = strdup(name);

	if (!copy) {
		ret = -ENOMEM;
		goto unlock;
	}
	if (dst.node) {
		if (dst.kind == VR_KIND_DIR) {
			unlink_child(dst.node);
			node_put(r, dst.node);
		} else {
			/* the replaced file is freed once the tree lock is dropped */
			victim = dst.node;
			victim->refs++;
			detach_file(r, victim);
		}
	}
	struct vr_node *oldp = src.node->parent;

	unlink_child(src.node);
	free(src.node->name);
	src.node->name = copy;
	link_child(dst.parent, src.node);
	now(&oldp->mtime);
	oldp->ctime = oldp->mtime;
	dst.parent->mtime = dst.parent->ctime = src.node->ctime = oldp->mtime;
	ret = resign_subtree(r, src.node, c);
	if (ret)
		vr_log(LOG_ERR, "rename %s -> %s: re-signing a seal failed: %s", from, to,
		       strerror(-ret));
unlock:
	pthread_mutex_unlock(&r->lock);
	if (victim)
		scrub_removed(r, victim, c);
	if (ret && ret != -ENOENT)
		vr_log(LOG_INFO, "rename %s -> %s refused: %s", from, to, strerror(-ret));
	return ret;
}

/* Applies a metadata change to a real node; generated files refuse. */
static int with_node(struct vr_residency *r, const char *path,
		     void (*apply)(struct vr_node *n, const void *arg), const void *arg)
{
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_DIR && l.kind != VR_KIND_FILE)
		ret = -EPERM;
	if (ret == 0) {
		apply(l.node, arg);
		now(&l.node->ctime);
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
	return with_node(r, path, apply_mode, &mode);
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

	return with_node(r, path, apply_owner, &o);
}

static void apply_times(struct vr_node *n, const void *arg)
{
	const struct timespec *tv = arg;
	struct timespec t;

	now(&t);
	if (tv[0].tv_nsec != UTIME_OMIT)
		n->atime = tv[0].tv_nsec == UTIME_NOW ? t : tv[0];
	if (tv[1].tv_nsec != UTIME_OMIT)
		n->mtime = tv[1].tv_nsec == UTIME_NOW ? t : tv[1];
}

int vr_res_utimens(struct vr_residency *r, const char *path, const struct timespec tv[2])
{
	struct timespec t[2];

	if (!tv) {
		t[0].tv_sec = t[1].tv_sec = 0;
		t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
		tv = t;
	}
	return with_node(r, path, apply_times, tv);
}

static struct vr_handle *handle_new(struct vr_node *n)
{
	struct vr_handle *h = calloc(1, sizeof(*h));

	if (h)
		h->node = n;
	return h;
}

/* Records a failed load: the file is removed at the writer's close. IO lock held. */
static void load_failed(struct vr_residency *r, struct vr_node *n, int err,
			const struct vr_caller *c)
{
	char path[VR_SEAL_PATH_MAX];

	pthread_mutex_lock(&r->lock);
	if (n->state == ST_WRITING) {
		n->state = ST_FAILED;
		n->load_err = err;
	}
	if (node_path(n, path, sizeof(path)) != 0)
		strcpy(path, n->name);
	pthread_mutex_unlock(&r->lock);
	vr_log(LOG_WARNING, "load of %s failed: %s; it will not be sealed", path, strerror(-err));
	audit(r, "vram_allocation_failed", path, c, "failed", NULL, strerror(-err));
}

int vr_res_create(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c,
		  struct vr_handle **out)
{
	char name[VR_NAME_MAX + 1], rel[VR_SEAL_PATH_MAX];
	struct vr_dev_file *dev;
	struct vr_handle *h;
	struct lookup l;
	struct vr_node *n;
	int ret;

	ret = vr_dev_file_new(r->cfg.backend, &dev);
	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	ret = resolve_new(r, path, true, &l);
	if (ret)
		goto unlock;
	last_name(&l, name);
	n = node_new(r, name, false, mode, c);
	h = n ? handle_new(n) : NULL;
	if (!h) {
		if (n)
			node_destroy(n);
		ret = -ENOMEM;
		goto unlock;
	}
	n->dev = dev;
	dev = NULL;
	n->state = ST_WRITING;
	n->writers = 1;
	n->refs++; /* the handle's */
	h->writer = true;
	link_child(l.parent, n);
	now(&l.parent->mtime);
	l.parent->ctime = l.parent->mtime;
	r->files++;
	node_path(n, rel, sizeof(rel));
	*out = h;
unlock:
	pthread_mutex_unlock(&r->lock);
	if (dev)
		vr_dev_file_free(r->cfg.backend, dev);
	if (ret == 0)
		audit(r, "vram_allocated", rel, c, "ok", NULL, NULL);
	else
		refused("create", path, ret);
	return ret;
}

static int text_handle(char *text, size_t len, int tail_err, struct vr_handle **out)
{
	struct vr_handle *h = handle_new(NULL);

	if (!h) {
		free(text);
		return -ENOMEM;
	}
	h->text = text;
	h->len = len;
	h->tail_err = tail_err;
	*out = h;
	return 0;
}

/* Result of re-checking one sealed file on the device. */
struct check {
	int ret; /* 0 ok, -EBADMSG mismatch or forged seal, other -errno: device error */
	const char *why;
	uint8_t fsv[32];
};

/* Quarantines N after a failed check and audits it (fsync'd). */
static void quarantine(struct vr_residency *r, struct vr_node *n, const char *path,
		       const struct check *k, const struct vr_caller *c)
{
	pthread_mutex_lock(&r->lock);
	if (n->state == ST_SEALED) {
		n->state = ST_QUARANTINED;
		r->quarantined++;
	}
	pthread_mutex_unlock(&r->lock);
	vr_log(LOG_ERR, "seal check of %s FAILED: %s; file quarantined", path, k->why);
	audit(r, "seal_verification_failed", path, c, "failed", k->fsv, k->why);
}

/*
 * Re-checks sealed file N: its seal's signature, then the fs-verity digest of
 * its bytes recomputed on the device against the seal's. Takes the IO lock
 * shared. On failure quarantines and audits. Returns as struct check.
 */
static void check_file(struct vr_residency *r, struct vr_node *n, const char *path,
		       const struct vr_caller *c, struct check *k)
{
	memset(k, 0, sizeof(*k));
	pthread_rwlock_rdlock(&n->io);
	pthread_mutex_lock(&r->lock);
	enum file_state st = n->state;
	struct vr_seal seal_copy;
	bool have_seal = n->seal != NULL;

	if (have_seal)
		seal_copy = *n->seal;
	pthread_mutex_unlock(&r->lock);
	if (st == ST_QUARANTINED) {
		k->ret = -EBADMSG;
		k->why = "quarantined by an earlier failed check";
		pthread_rwlock_unlock(&n->io);
		return;
	}
	if (st == ST_REMOVED) {
		k->ret = -ENOENT;
		k->why = "removed";
		pthread_rwlock_unlock(&n->io);
		return;
	}
	if (st != ST_SEALED || !have_seal) {
		k->ret = -EAGAIN;
		k->why = "not sealed";
		pthread_rwlock_unlock(&n->io);
		return;
	}
	k->ret = vr_seal_verify(&seal_copy, r->cfg.keys);
	if (k->ret) {
		k->why = "seal signature does not verify";
	} else if (strcmp(seal_copy.device.uuid, r->dev.uuid) != 0) {
		k->ret = -EBADMSG;
		k->why = "seal names another device";
	} else {
		k->ret = vr_dev_digest(r->cfg.backend, n->dev, NULL, k->fsv);
		if (k->ret) {
			k->why = "device digest failed";
		} else if (!memeql_sec(k->fsv, seal_copy.fsverity, 32)) {
			k->ret = -EBADMSG;
			k->why = "fs-verity digest of device memory differs from the seal";
		}
	}
	pthread_rwlock_unlock(&n->io);
	if (k->ret == 0)
		audit(r, "seal_verified", path, c, "ok", k->fsv, NULL);
	else
		quarantine(r, n, path, k, c);
}

/* Collects the files below DIR, with a reference each, and their paths. Under r->lock. */
struct pending_file {
	struct vr_node *node;
	char *path;
};

/* Adds file C to the list; kept out of collect() so deep recursion keeps small frames. */
static __attribute__((noinline)) int add_pending(struct vr_node *c, struct pending_file **list,
						 size_t *count, size_t *cap)
{
	char path[VR_SEAL_PATH_MAX];

	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pending_file *nl = realloc(*list, ncap * sizeof(**list));

		if (!nl)
			return -ENOMEM;
		*list = nl;
		*cap = ncap;
	}
	node_path(c, path, sizeof(path));
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	c->refs++;
	(*list)[(*count)++] = (struct pending_file){c, p};
	return 0;
}

static int collect(struct vr_node *n, struct pending_file **list, size_t *count, size_t *cap)
{
	for (struct vr_node *c = n->children; c; c = c->next) {
		int ret = 0;

		if (c->is_dir)
			ret = collect(c, list, count, cap);
		else if (c->state != ST_FAILED && c->state != ST_REMOVED)
			ret = add_pending(c, list, count, cap);
		if (ret)
			return ret;
	}
	return 0;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct pending_file *)a)->path,
		      ((const struct pending_file *)b)->path);
}

struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 3;

	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t ncap = (t->cap + n + 1) * 2;
		char *nb = realloc(t->buf, ncap);

		if (!nb) {
			t->oom = true;
			return;
		}
		t->buf = nb;
		t->cap = ncap;
	}
	t->len += (size_t)sprintf(t->buf + t->len, "%s %s%s%s\n", a, b, *c ? " " : "", c);
}

/* Runs verify for directory DIR (referenced by the caller); builds the report. */
static int run_verify(struct vr_residency *r, struct vr_node *dir, const struct vr_caller *c,
		      struct vr_handle **out)
{
	struct pending_file *list = NULL;
	size_t count = 0, cap = 0;
	struct text t = {0};
	int failed = 0, ret;

	pthread_mutex_lock(&r->lock);
	ret = collect(dir, &list, &count, &cap);
	pthread_mutex_unlock(&r->lock);
	if (ret)
		goto put;
	if (count > 1) /* qsort wants a non-NULL array even for none */
		qsort(list, count, sizeof(*list), by_path);
	for (size_t i = 0; i < count; i++) {
		struct vr_node *n = list[i].node;
		struct check k;
		char hex[72];

		pthread_mutex_lock(&r->lock);
		enum file_state st = n->state;

		pthread_mutex_unlock(&r->lock);
		if (st == ST_WRITING) {
			text_add(&t, "PENDING", list[i].path, "");
			continue;
		}
		if (st == ST_FAILED || st == ST_REMOVED)
			continue;
		check_file(r, n, list[i].path, c, &k);
		if (k.ret == -ENOENT)
			continue; /* removed since the list was made */
		if (k.ret == -EAGAIN) {
			text_add(&t, "PENDING", list[i].path, "");
		} else if (k.ret == 0) {
			strcpy(hex, "sha256:");
			vr_hex(k.fsv, 32, hex + 7);
			text_add(&t, "OK", list[i].path, hex);
		} else {
			failed++;
			text_add(&t, "FAILED", list[i].path, k.why);
		}
	}
	if (t.oom)
		ret = -ENOMEM;
put:
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < count; i++) {
		node_put(r, list[i].node);
		free(list[i].path);
	}
	pthread_mutex_unlock(&r->lock);
	free(list);
	if (ret) {
		free(t.buf);
		return ret;
	}
	if (!t.buf)
		t.buf = strdup("");
	if (!t.buf)
		return -ENOMEM;
	return text_handle(t.buf, t.len, failed ? -EIO : 0, out);
}

int vr_res_open(struct vr_residency *r, const char *path, int flags, const struct vr_caller *c,
		struct vr_handle **out)
{
	bool wants_write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	char rel[VR_SEAL_PATH_MAX];
	struct vr_handle *h;
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret)
		goto unlock;
	if (l.kind == VR_KIND_DIR) {
		ret = -EISDIR;
		goto unlock;
	}
	if (l.kind != VR_KIND_FILE) {
		char *text = NULL;
		size_t len = 0;

		if (wants_write) {
			ret = -EPERM; /* generated files are read-only */
			goto unlock;
		}
		if (l.kind == VR_KIND_SEAL) {
			text = strdup(l.node->seal_json);
			len = text ? strlen(text) : 0;
			pthread_mutex_unlock(&r->lock);
			return text ? text_handle(text, len, 0, out) : -ENOMEM;
		}
		if (l.kind == VR_KIND_STATUS) {
			pthread_mutex_unlock(&r->lock);
			ret = vr_res_status(r, &text, &len);
			return ret ? ret : text_handle(text, len, 0, out);
		}
		/* verify: keep the directory alive while its files are checked */
		struct vr_node *dir = l.node;

		dir->refs++;
		pthread_mutex_unlock(&r->lock);
		ret = run_verify(r, dir, c, out);
		pthread_mutex_lock(&r->lock);
		node_put(r, dir);
		goto unlock;
	}
	struct vr_node *n = l.node;

	node_path(n, rel, sizeof(rel));
	if (wants_write && n->state != ST_WRITING) {
		ret = n->state == ST_FAILED ? -n->load_err : -EPERM;
		pthread_mutex_unlock(&r->lock);
		if (ret == -EPERM) {
			vr_log(LOG_INFO, "open of sealed %s for writing refused", rel);
			audit(r, "policy_violation", rel, c, "denied",
			      n->seal ? n->seal->fsverity : NULL,
			      "sealed files are immutable: open for writing refused");
		}
		return ret;
	}
	if (!wants_write && n->state == ST_QUARANTINED) {
		ret = -EIO;
		goto unlock;
	}
	h = handle_new(n);
	if (!h) {
		ret = -ENOMEM;
		goto unlock;
	}
	n->refs++;
	if (wants_write) {
		h->writer = true;
		n->writers++;
	}
	bool check = !wants_write && n->state == ST_SEALED && r->cfg.verify_on_open;

	pthread_mutex_unlock(&r->lock);
	if (wants_write && (flags & O_TRUNC)) {
		ret = vr_res_ftruncate(r, h, 0, c);
		if (ret) {
			vr_res_release(r, h);
			return ret;
		}
	}
	if (check) {
		struct check k;

		check_file(r, n, rel, c, &k);
		if (k.ret) {
			vr_res_release(r, h);
			return -EIO; /* a mismatch (-EBADMSG) reads as EIO, as with fs-verity */
		}
	}
	*out = h;
	return 0;
unlock:
	pthread_mutex_unlock(&r->lock);
	refused("open", path, ret);
	return ret;
}

int vr_res_read(struct vr_residency *r, struct vr_handle *h, void *buf, size_t len, uint64_t off,
		size_t *got)
{
	struct vr_node *n = h->node;
	int ret = 0;

	if (!n) {
		if (off >= h->len) {
			*got = 0;
			return h->tail_err;
		}
		size_t k = h->len - off < len ? (size_t)(h->len - off) : len;

		memcpy(buf, h->text + off, k);
		*got = k;
		return 0;
	}
	pthread_rwlock_rdlock(&n->io);
	pthread_mutex_lock(&r->lock);
	enum file_state st = n->state;
	uint64_t size = n->size;

	pthread_mutex_unlock(&r->lock);
	if (st == ST_REMOVED) {
		ret = -ESTALE;
	} else if (st == ST_QUARANTINED || st == ST_FAILED) {
		ret = -EIO;
	} else if (off >= size) {
		*got = 0;
	} else {
		size_t k = size - off < len ? (size_t)(size - off) : len;

		ret = vr_dev_read(r->cfg.backend, n->dev, off, buf, k);
		if (ret == 0)
			*got = k;
		else
			vr_log(LOG_ERR, "device read of %s failed: %s", n->name, strerror(-ret));
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

/* Changes the file's size; IO lock held exclusively. */
static int set_size(struct vr_residency *r, struct vr_node *n, uint64_t size,
		    const struct vr_caller *c)
{
	int ret = vr_dev_resize(r->cfg.backend, n->dev, size);

	if (ret) {
		load_failed(r, n, ret, c);
		return ret;
	}
	uint64_t held = vr_dev_held(r->cfg.backend, n->dev);

	pthread_mutex_lock(&r->lock);
	n->size = size;
	n->held = held;
	now(&n->mtime);
	n->ctime = n->mtime;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Whether N may be changed; IO lock held. Returns 0, -EPERM (sealed) or the load error. */
static int writable(struct vr_residency *r, struct vr_node *n)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (n->state == ST_FAILED)
		ret = n->load_err;
	else if (n->state == ST_REMOVED)
		ret = -ESTALE;
	else if (n->state != ST_WRITING)
		ret = -EPERM;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_write(struct vr_residency *r, struct vr_handle *h, const void *buf, size_t len,
		 uint64_t off, const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret;

	if (!n || !h->writer)
		return -EBADF;
	if (off > UINT64_MAX - len || off + len > VR_SIZE_MAX_JSON)
		return -EFBIG;
	pthread_rwlock_wrlock(&n->io);
	ret = writable(r, n);
	if (ret == 0 && off + len > n->size)
		ret = set_size(r, n, off + len, c);
	h->dirty = true;
	if (ret == 0) {
		ret = vr_dev_write(r->cfg.backend, n->dev, off, buf, len);
		if (ret)
			load_failed(r, n, ret, c);
	}
	if (ret == 0) {
		pthread_mutex_lock(&r->lock);
		now(&n->mtime);
		n->ctime = n->mtime;
		pthread_mutex_unlock(&r->lock);
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

int vr_res_ftruncate(struct vr_residency *r, struct vr_handle *h, uint64_t size,
		     const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret;

	if (!n)
		return -EPERM;
	if (size > VR_SIZE_MAX_JSON)
		return -EFBIG;
	pthread_rwlock_wrlock(&n->io);
	ret = writable(r, n);
	if (ret == 0 && size != n->size) {
		ret = set_size(r, n, size, c);
		h->dirty = true;
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

int vr_res_truncate(struct vr_residency *r, const char *path, uint64_t size,
		    const struct vr_caller *c)
{
	struct vr_handle *h;
	struct lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_FILE)
		ret = l.kind == VR_KIND_DIR ? -EISDIR : -EPERM;
	if (ret) {
		pthread_mutex_unlock(&r->lock);
		return ret;
	}
	h = handle_new(l.node);
	if (!h) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	l.node->refs++;
	pthread_mutex_unlock(&r->lock);
	ret = vr_res_ftruncate(r, h, size, c);
	refused("truncate", path, ret);
	if (ret == -EPERM) {
		char rel[VR_SEAL_PATH_MAX];

		pthread_mutex_lock(&r->lock);
		node_path(l.node, rel, sizeof(rel));
		pthread_mutex_unlock(&r->lock);
		audit(r, "policy_violation", rel, c, "denied", NULL,
		      "sealed files are immutable: truncate refused");
	}
	vr_res_release(r, h);
	return ret;
}

/* Seals N: digests on the device, signs, publishes. IO lock held exclusively. */
static int seal_file(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	struct vr_seal *s = calloc(1, sizeof(*s));
	char rel[VR_SEAL_PATH_MAX];
	int ret;

	if (!s)
		return -ENOMEM;
	ret = vr_dev_digest(r->cfg.backend, n->dev, s->sha256, s->fsverity);
	if (ret) {
		load_failed(r, n, ret == -EBADMSG ? -EIO : ret, c);
		free(s);
		return ret == -EBADMSG ? -EIO : ret;
	}
	s->size = n->size;
	strcpy(s->device.backend, r->dev.backend);
	s->device.index = r->dev.index;
	strcpy(s->device.name, r->dev.name);
	strcpy(s->device.uuid, r->dev.uuid);
	vr_seal_now(s->sealed_at);
	pthread_mutex_lock(&r->lock);
	/* the seal text is cached now but stays hidden until the state says sealed */
	ret = sign_seal(r, n, s);
	strcpy(rel, s->path);
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		vr_log(LOG_ERR, "signing the seal of %s failed: %s", rel, strerror(-ret));
		goto fail;
	}
	/* a seal nobody could audit is no seal: the load fails instead */
	ret = audit_must(r, "vram_sealed", rel, c, "ok", s->fsverity, NULL);
	if (ret)
		goto fail;
	pthread_mutex_lock(&r->lock);
	free(n->seal);
	n->seal = s;
	n->state = ST_SEALED;
	r->sealed++;
	pthread_mutex_unlock(&r->lock);
	return 0;
fail:
	load_failed(r, n, ret, c);
	free(s);
	return ret;
}

/*
 * Seals N when no other writer has it open, or removes it when its load
 * failed. IO lock held exclusively. Returns the load's or the seal's error.
 */
static int finish_load(struct vr_residency *r, struct vr_node *n, unsigned other_writers,
		       const struct vr_caller *c)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	enum file_state st = n->state;

	pthread_mutex_unlock(&r->lock);
	if (other_writers == 0 && st == ST_WRITING)
		ret = seal_file(r, n, c);
	pthread_mutex_lock(&r->lock);
	if (n->state == ST_FAILED) {
		/* nothing of a failed load stays: entry and device memory go now */
		ret = n->load_err;
		n->refs++;
		detach_file(r, n);
		pthread_mutex_unlock(&r->lock);
		release_device(r, n, n->name, c); /* the IO lock is held already */
		pthread_mutex_lock(&r->lock);
		node_put(r, n);
	} else if (n->state == ST_REMOVED && n->load_err) {
		ret = n->load_err; /* a later close of the same failed load */
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_flush(struct vr_residency *r, struct vr_handle *h, const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret;

	if (!n || !h->writer)
		return 0;
	pthread_rwlock_wrlock(&n->io);
	pthread_mutex_lock(&r->lock);
	unsigned others = n->writers - 1;
	/*
	 * A shell's "> file" and dd open, dup2 and close the first descriptor
	 * before any byte is written: that flush must not seal an empty file
	 * the same handle is about to fill. Such a file is sealed at release.
	 */
	bool skip = !h->dirty && n->size == 0 && n->state == ST_WRITING;

	pthread_mutex_unlock(&r->lock);
	ret = skip ? 0 : finish_load(r, n, others, c);
	pthread_rwlock_unlock(&n->io);
	return ret;
}

void vr_res_release(struct vr_residency *r, struct vr_handle *h)
{
	struct vr_node *n = h->node;

	if (n && h->writer) {
		pthread_rwlock_wrlock(&n->io);
		pthread_mutex_lock(&r->lock);
		unsigned others = --n->writers;
		bool pending = n->state == ST_WRITING || n->state == ST_FAILED;

		pthread_mutex_unlock(&r->lock);
		/* normally done by flush; here only an empty file or a skipped flush remain */
		int ret = pending ? finish_load(r, n, others, NULL) : 0;

		if (ret)
			vr_log(LOG_ERR, "sealing %s at release failed: %s; it was removed", n->name,
			       strerror(-ret));
		pthread_rwlock_unlock(&n->io);
	}
	if (n) {
		pthread_mutex_lock(&r->lock);
		node_put(r, n);
		pthread_mutex_unlock(&r->lock);
	}
	free(h->text);
	free(h);
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

int vr_res_status(struct vr_residency *r, char **out, size_t *len)
{
	struct vr_device_info info;
	cJSON *o, *d;
	char *text, num[24];
	int ret = vr_backend_info(r->cfg.backend, &info);

	if (ret)
		return ret;
	o = cJSON_CreateObject();
	if (!o)
		return -ENOMEM;
	ret = -ENOMEM;
	pthread_mutex_lock(&r->lock);
	uint64_t files = r->files, sealed = r->sealed, quarantined = r->quarantined;

	pthread_mutex_unlock(&r->lock);
	if (!cJSON_AddStringToObject(o, "backend", info.backend))
		goto free_obj;
	if (strcmp(info.backend, "mock") == 0 &&
	    !cJSON_AddStringToObject(o, "warning",
				     "mock backend: file bytes are in host memory, not on a GPU"))
		goto free_obj;
	d = cJSON_AddObjectToObject(o, "device");
	if (!d || !cJSON_AddNumberToObject(d, "index", info.index) ||
	    !cJSON_AddStringToObject(d, "name", info.name) ||
	    !cJSON_AddStringToObject(d, "uuid", info.uuid))
		goto free_obj;
	/* integers as raw text: cJSON's number printer rounds to 15 digits */
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info.total_bytes);
	if (!cJSON_AddRawToObject(d, "total_bytes", num))
		goto free_obj;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info.free_bytes);
	if (!cJSON_AddRawToObject(d, "free_bytes", num))
		goto free_obj;
	snprintf(num, sizeof(num), "%llu",
		 (unsigned long long)(info.total_bytes - info.free_bytes));
	if (!cJSON_AddRawToObject(o, "used_bytes", num) ||
	    !cJSON_AddNumberToObject(o, "files", (double)files) ||
	    !cJSON_AddNumberToObject(o, "sealed", (double)sealed) ||
	    !cJSON_AddNumberToObject(o, "quarantined", (double)quarantined))
		goto free_obj;
	text = cJSON_Print(o);
	if (!text)
		goto free_obj;
	size_t n = strlen(text);

	*out = malloc(n + 2);
	if (*out) {
		memcpy(*out, text, n);
		(*out)[n] = '\n';
		(*out)[n + 1] = '\0';
		*len = n + 1;
		ret = 0;
	}
	cJSON_free(text);
free_obj:
	cJSON_Delete(o);
	return ret;
}
