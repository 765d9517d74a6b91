/* tree.c - the residency's tree: nodes, references, lookup, attributes, and file states. */
#include "log.h"
#include "name.h"
#include "digest.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void res_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

int res_audit_must(struct vr_residency *r, const char *event, const char *path,
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
void res_audit(struct vr_residency *r, const char *event, const char *path,
	       const struct vr_caller *c, const char *outcome, const uint8_t *digest,
	       const char *detail)
{
	(void)res_audit_must(r, event, path, c, outcome, digest, detail);
}

/* Logs why an operation was refused; a missing name is ordinary and not logged. */
void res_refused(const char *op, const char *path, int err)
{
	if (err && err != -ENOENT)
		vr_log(LOG_INFO, "%s %s refused: %s", op, path, strerror(-err));
}

/* A new node, counted to no one. */
static struct vr_node *node_alloc(struct vr_residency *r, const char *name, bool is_dir,
				  mode_t mode, const struct vr_caller *c)
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
	res_now(&n->mtime);
	n->atime = n->ctime = n->mtime;
	n->meta_uid = n->uid;
	n->refs = 1;
	pthread_rwlock_init(&n->io, NULL);
	return n;
}

int res_node_new(struct vr_residency *r, const char *name, bool is_dir, mode_t mode,
		 const struct vr_caller *c, struct vr_node **out)
{
	struct vr_node *n = node_alloc(r, name, is_dir, mode, c);
	int ret = n ? res_meta_add(r, n, RES_META_NODE) : -ENOMEM;

	if (ret) {
		if (n)
			res_node_destroy(r, n);
		return ret;
	}
	*out = n;
	return 0;
}

void res_node_destroy(struct vr_residency *r, struct vr_node *n)
{
	if (r && n->meta_bytes)
		res_meta_sub(r, n, n->meta_bytes);
	for (size_t i = 0; i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->target);
	pthread_rwlock_destroy(&n->io);
	free(n->written);
	vr_sha256_async_free(n->wsha);
	free(n->seal);
	free(n->seal_json);
	free(n->check_why);
	free(n->keep_lens);
	free(n->bytes_why);
	free(n->index);
	res_source_free(n->source);
	free(n->name);
	free(n);
}

/* Relative path of N (no leading '/') into BUF; returns 0 or -ENAMETOOLONG. [T] */
int res_node_path(const struct vr_node *n, char *buf, size_t cap)
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
		/* cppcheck-suppress uninitvar ; chain[0, depth) was filled by the loop above */
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

/* How many directories lie between directory DIR and the root (the root: 0). [T] */
size_t res_depth(const struct vr_node *dir)
{
	size_t depth = 0;

	for (const struct vr_node *d = dir; d->parent; d = d->parent)
		depth++;
	return depth;
}

/* Length of directory DIR's relative path ("" for the root). [T] */
size_t res_path_len(const struct vr_node *dir)
{
	size_t len = 0;

	for (; dir && dir->parent; dir = dir->parent)
		len += strlen(dir->name) + 1;
	return len;
}

/* FNV-1a of a name's LEN bytes. */
static uint64_t name_hash(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 0x100000001b3ULL;
	return h;
}

static struct vr_node *child(const struct vr_node *dir, const char *name, size_t len)
{
	if (dir->index) {
		uint64_t h = name_hash(name, len);

		for (struct vr_node *c = dir->index[h % dir->index_size]; c; c = c->hnext)
			if (c->hash == h && strlen(c->name) == len &&
			    memcmp(c->name, name, len) == 0)
				return c;
		return NULL;
	}
	for (struct vr_node *c = dir->children; c; c = c->next)
		if (strlen(c->name) == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

/* Files every entry of DIR in a new index of SIZE buckets; keeps the old one if out of
 * memory (longer chains, still right). [T] */
static void reindex(struct vr_node *dir, uint32_t size)
{
	/* an array of pointers: its element is rightly a pointer's size */
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	struct vr_node **idx = calloc(size, sizeof(*idx));

	if (!idx)
		return;
	for (struct vr_node *c = dir->children; c; c = c->next) {
		c->hnext = idx[c->hash % size];
		idx[c->hash % size] = c;
	}
	free(dir->index);
	dir->index = idx;
	dir->index_size = size;
}

struct vr_node *res_child(const struct vr_node *dir, const char *name)
{
	return dir ? child(dir, name, strlen(name)) : NULL;
}

void res_link_child(struct vr_node *dir, struct vr_node *n)
{
	n->dpos = ++dir->next_dpos;
	n->parent = dir;
	n->prev = NULL;
	n->next = dir->children;
	if (dir->children)
		dir->children->prev = n;
	dir->children = n;
	n->hash = name_hash(n->name, strlen(n->name));
	dir->nchildren++;
	dir->nsubdirs += n->is_dir;
	/* small directories scan; past 8 entries an index, doubled as it fills */
	if (dir->nchildren > 8 && dir->nchildren > dir->index_size) {
		reindex(dir, dir->index_size ? 2 * dir->index_size : 16);
	} else if (dir->index) {
		n->hnext = dir->index[n->hash % dir->index_size];
		dir->index[n->hash % dir->index_size] = n;
	}
}

void res_unlink_child(struct vr_node *n)
{
	struct vr_node *dir = n->parent;

	if (n->prev)
		n->prev->next = n->next;
	else
		dir->children = n->next;
	if (n->next)
		n->next->prev = n->prev;
	if (dir->index) {
		/* by the hash taken when it was linked: the name may have changed since */
		struct vr_node **pp = &dir->index[n->hash % dir->index_size];

		while (*pp && *pp != n)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = n->hnext;
	}
	dir->nchildren--;
	dir->nsubdirs -= n->is_dir;
	n->next = n->prev = n->hnext = NULL;
	n->parent = NULL;
}

/* A directory's entries changed: its mtime and ctime move, and the keeper's record is due. [T] */
void res_touch_dir(struct vr_residency *r, struct vr_node *dir)
{
	res_now(&dir->mtime);
	dir->ctime = dir->mtime;
	res_changed(r);
}

/*
 * Resolves PATH. [T] Returns 0, -ENOENT (with L->parent and L->last set when
 * only the last component is missing), -ENOTDIR or -ENAMETOOLONG.
 */
/* res_resolve(), and with PEER, each directory searched as PEER may (res_resolve_as()). */
static int walk(struct vr_residency *r, const char *path, const struct vr_peer *peer,
		struct res_lookup *l)
{
	res_held(r);

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
		if (peer && !res_may(cur, peer, 1))
			return -EACCES; /* as open(2): a directory it may not search hides its names
					 */
		if (len > VR_NAME_MAX)
			return -ENAMETOOLONG;
		n = child(cur, p, len);
		if (last) {
			l->parent = cur;
			l->last = p;
			l->last_len = len;
			if (n) {
				l->kind = n->is_dir   ? VR_KIND_DIR
					  : n->target ? VR_KIND_LINK
						      : VR_KIND_FILE;
				l->node = n;
				return 0;
			}
			return res_vname_find(cur, cur == r->root, p, len, l);
		}
		if (!n)
			return -ENOENT;
		cur = n;
		p = slash + strspn(slash, "/");
	}
}

int res_resolve(struct vr_residency *r, const char *path, struct res_lookup *l)
{
	return walk(r, path, NULL, l);
}

int res_resolve_as(struct vr_residency *r, const char *path, const struct vr_peer *p,
		   struct res_lookup *l)
{
	return walk(r, path, p, l);
}

/* Links followed in one resolution at most, as the kernel's limit of nested links. */
#define FOLLOW_MAX 40

/* res_follow(), with *BUDGET the links it may still follow, links on the way included. */
static int follow(const struct vr_node *link, const struct vr_peer *peer, struct vr_node **out,
		  unsigned *budget)
{
	const struct vr_node *n = link;
	bool must_dir = false;

	while (n->target) {
		struct vr_node *cur = n->parent;
		const char *p = n->target;

		if (*budget == 0 || !cur)
			return -ELOOP; /* or a link removed from the tree meanwhile */
		(*budget)--;
		for (;;) {
			size_t len = strcspn(p, "/");
			const char *next = p + len + strspn(p + len, "/");

			if (peer && !res_may(cur, peer, 1))
				return -EACCES; /* followed as the reader would: no oracle */
			if (len == 2 && memcmp(p, "..", 2) == 0)
				n = cur->parent ? cur->parent : cur; /* the root's ".." is itself */
			else if (len == 0 || (len == 1 && *p == '.'))
				n = cur;
			else
				n = child(cur, p, len);
			if (!n)
				return -ENOENT;
			if (*next == '\0') {
				/* "g/" names a folder: the kernel answers ENOTDIR for a file */
				must_dir = must_dir || p[len] == '/';
				break; /* a link there is followed by the outer loop */
			}
			if (n->target) {
				struct vr_node *mid;
				int ret = follow(n, peer, &mid, budget);

				if (ret)
					return ret;
				n = mid;
			}
			if (!n->is_dir)
				return -ENOTDIR;
			cur = (struct vr_node *)n;
			p = next;
		}
	}
	if (must_dir && !n->is_dir)
		return -ENOTDIR;
	*out = (struct vr_node *)n;
	return 0;
}

int res_follow(struct vr_residency *r, const struct vr_node *link, const struct vr_peer *p,
	       struct vr_node **out)
{
	res_held(r);

	unsigned budget = FOLLOW_MAX;

	return follow(link, p, out, &budget);
}

void res_attr_of_node(const struct vr_node *n, struct vr_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->kind = n->is_dir ? VR_KIND_DIR : n->target ? VR_KIND_LINK : VR_KIND_FILE;
	a->ino = n->ino;
	a->mode = n->mode;
	a->uid = n->uid;
	a->gid = n->gid;
	a->atime = n->atime;
	a->mtime = n->mtime;
	a->ctime = n->ctime;
	if (n->is_dir) {
		a->nlink = 2 + n->nsubdirs; /* kept by link and unlink: no scan per stat */
	} else if (n->target) {
		a->nlink = 1;
		a->size = strlen(n->target);
	} else {
		a->nlink = n->state == ST_REMOVED ? 0 : 1; /* removed, still open: fstat says so */
		a->size = n->size;
		a->blocks = n->held / 512;
	}
}

void res_attr_of_text(uint64_t ino, const struct vr_node *like, size_t size, struct vr_attr *a,
		      enum vr_kind kind)
{
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->ino = ino;
	a->mode = S_IFREG | 0444;
	a->nlink = 1;
	a->size = size;
	/* a seal is as readable as its file: its digests are an oracle of the file's content */
	if (like && kind == VR_KIND_SEAL)
		a->mode = S_IFREG | (like->mode & 0444);
	if (like) {
		a->uid = like->uid;
		a->gid = like->gid;
		a->atime = like->atime;
		a->mtime = like->mtime;
		a->ctime = like->ctime;
	}
}

/* What a file in state ST adds to the counters files, sealed, quarantined, incomplete and
 * refused. */
static void counted(enum file_state st, uint64_t c[5])
{
	c[0] = st != ST_NONE && st != ST_REMOVED;
	c[1] = st == ST_SEALED || st == ST_QUARANTINED;
	c[2] = st == ST_QUARANTINED;
	c[3] = st == ST_INCOMPLETE;
	c[4] = st == ST_REFUSED;
}

/* Moves file N to state ST and keeps the counters in step: the one place either changes. [T] */
void res_set_state(struct vr_residency *r, struct vr_node *n, enum file_state st)
{
	res_held(r);

	uint64_t was[5], now[5];

	counted(n->state, was);
	counted(st, now);
	if (st != ST_SEALED) {
		n->cache_ok =
		    false; /* its bytes may change: cached pages must go at the next open */
		n->open_audited = false; /* a new seal: its first pass at open is audited */
	}
	r->files = r->files - was[0] + now[0];
	r->sealed = r->sealed - was[1] + now[1];
	r->quarantined = r->quarantined - was[2] + now[2];
	r->incomplete = r->incomplete - was[3] + now[3];
	r->refused = r->refused - was[4] + now[4];
	if (r->metrics && st != n->state) {
		r->metrics->loads += st == ST_WRITING && n->state == ST_NONE;
		r->metrics->seals += st == ST_SEALED;
		r->metrics->quarantines += st == ST_QUARANTINED;
	}
	if (st != n->state)
		res_changed(r);
	if (st == ST_SEALED && n->state != ST_SEALED)
		n->resident_since = res_mono(); /* the policy lets it stay min_resident */
	n->state = st;
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
	r->metrics = calloc(1, sizeof(*r->metrics));
	r->root = r->metrics ? node_alloc(r, "", true, 0755, NULL) : NULL;
	if (!r->root) {
		free(r->metrics);
		free(r);
		return -ENOMEM;
	}
	r->root->parent = NULL;
	r->root->uid = cfg->root_uid;
	r->root->gid = cfg->root_gid;
	r->next_ino = 16;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->bg_done, NULL);
	pthread_cond_init(&r->stage_back, NULL);
	*out = r;
	return 0;
}

/* Scrubs and frees a file's device memory; audits it. Caller holds IO or the last ref. */
void res_release_device(struct vr_residency *r, struct vr_node *n, const char *path,
			const struct vr_caller *c)
{
	int ret;

	if (!n->dev)
		return;
	res_keep_drop(r, n);
	ret = vr_dev_file_free(n->dev);
	n->dev = NULL;
	res_audit(r, "vram_deallocated", path, c, ret ? "failed" : "ok", NULL,
		  ret ? "scrub of device memory reported an error; memory freed" : NULL);
}

static void free_subtree(struct vr_residency *r, struct vr_node *n)
{
	while (n->children) {
		struct vr_node *c = n->children;

		n->children = c->next;
		free_subtree(r, c);
	}
	if (!n->is_dir)
		res_free_at_stop(r, n);
	res_node_destroy(NULL, n); /* the whole tree goes: nothing is counted any more */
}

void vr_res_free(struct vr_residency *r)
{
	if (!r)
		return;
	res_bg_drain(r);		      /* renamed files still being checked hold nodes */
	pthread_cond_destroy(&r->stage_back); /* every load's stage was closed before */
	free_subtree(r, r->root);
	res_meta_free(r);
	pthread_mutex_destroy(&r->lock);
	free(r->metrics);
	free(r);
}

/* Drops one reference; frees the node at zero. [T] */
void res_node_put(struct vr_residency *r, struct vr_node *n)
{
	res_held(r);

	if (--n->refs > 0)
		return;
	/* files are detached and scrubbed before their last reference goes */
	if (!n->is_dir)
		res_release_device(r, n, n->name, NULL);
	res_node_destroy(r, n);
}

struct vr_handle *res_handle_new(struct vr_node *n)
{
	struct vr_handle *h = calloc(1, sizeof(*h));

	if (h)
		h->node = n;
	return h;
}

/* A handle over generated TEXT (taken over, freed on failure); returns 0 or -ENOMEM. */
int res_text_handle(char *text, size_t len, int tail_err, struct vr_handle **out)
{
	struct vr_handle *h = res_handle_new(NULL);

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

/*
 * Takes file N out of the tree and the counts and drops the tree's reference;
 * the caller holds another and then frees the device memory
 * (res_scrub_removed). [T]
 */
void res_detach_file(struct vr_residency *r, struct vr_node *n)
{
	res_held(r);

	char path[VR_SEAL_PATH_MAX];
	char *full;

	res_set_state(r, n, ST_REMOVED);
	if (n->evicted) {
		/* its bytes in host memory go with it (res_scrub_removed frees DEV) */
		r->ev.files--;
		r->ev.bytes -= n->size;
		n->evicted = false;
	}
	/* its holders may still map what a revoke left them: counted until they let go */
	if (n->revoked && !r->dev.sees_client_memory) {
		n->client_bytes = n->held;
		r->client_bytes += n->held;
	}
	n->held = 0;
	res_source_free(n->source); /* a removed source vouches for nothing */
	n->source = NULL;
	/* a detached node keeps its full path as its name, for the audit of the free */
	if (res_node_path(n, path, sizeof(path)) == 0 && (full = strdup(path))) {
		free(n->name);
		n->name = full;
	}
	res_touch_dir(r, n->parent);
	res_unlink_child(n);
	n->refs--;
}

/* Scrubs and frees a detached file's device memory, then drops the caller's reference. */
void res_scrub_removed(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	/* exclusive: no read or digest of these bytes is in flight */
	pthread_rwlock_wrlock(&n->io);
	res_release_device(r, n, n->name, c);
	pthread_rwlock_unlock(&n->io);
	res_lock(r);
	res_node_put(r, n);
	res_unlock(r);
}

/* Resolves the parent of a path to be created and validates the new name. [T] */
int res_resolve_new(struct vr_residency *r, const char *path, bool is_file, struct res_lookup *l)
{
	res_held(r);

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

static bool in_groups(gid_t g, const struct vr_peer *p)
{
	if (g == p->gid)
		return true;
	for (size_t i = 0; i < p->ngroups; i++)
		if (p->groups[i] == g)
			return true;
	return false;
}

/* Whether P has all of BITS (4 read, 1 search) on N, by its mode as open(2) decides. [T] */
bool res_may(const struct vr_node *n, const struct vr_peer *p, unsigned bits)
{
	unsigned have;

	if (p->uid == 0)
		return true; /* root reads and searches whatever the mode says */
	if (n->uid == p->uid)
		have = (n->mode >> 6) & 7;
	else if (in_groups(n->gid, p))
		have = (n->mode >> 3) & 7;
	else
		have = n->mode & 7;
	return (have & bits) == bits;
}

/* Whether P could open N for reading: search on every directory above it, read on it. [T] */
bool res_may_read(const struct vr_node *n, const struct vr_peer *p)
{
	for (const struct vr_node *d = n->parent; d; d = d->parent)
		if (!res_may(d, p, 1))
			return false;
	return res_may(n, p, 4);
}
