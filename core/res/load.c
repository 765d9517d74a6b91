/* load.c - the writer's half: create, open for writing, write, truncate, sealing at close. */
#include "digest.h"
#include "log.h"
#include "manifest.h"
#include "name.h"
#include "res_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Records a failed load: the file is removed at the writer's close. IO held. */
void res_load_failed(struct vr_residency *r, struct vr_node *n, int err, const struct vr_caller *c)
{
	char path[VR_SEAL_PATH_MAX];

	res_lock(r);
	if (n->state == ST_WRITING) {
		res_set_state(r, n, ST_FAILED);
		n->load_err = err;
	}
	if (res_node_path(n, path, sizeof(path)) != 0)
		strcpy(path, n->name);
	res_unlock(r);
	vr_log(LOG_WARNING, "load of %s failed: %s; it will not be sealed", path, strerror(-err));
	res_audit(r, "vram_allocation_failed", path, c, "failed", NULL, strerror(-err));
}

/* Records that [START, END) of N was written. IO held exclusively. Returns 0 or -ENOMEM. */
static int mark_written(struct vr_node *n, uint64_t start, uint64_t end)
{
	res_io_held(n);

	struct res_range *w = n->written;
	size_t i = n->nwritten;

	/* the usual case, a load in order: the last range grows */
	if (i > 0 && w[i - 1].start <= start && start <= w[i - 1].end) {
		if (end > w[i - 1].end)
			w[i - 1].end = end;
		return 0;
	}
	if (n->nwritten == n->capwritten) {
		size_t cap = n->capwritten ? n->capwritten * 2 : 4;
		struct res_range *nw = realloc(w, cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		n->written = w = nw;
		n->capwritten = cap;
	}
	/* insert in order of start, then merge what now touches or overlaps */
	while (i > 0 && w[i - 1].start > start) {
		w[i] = w[i - 1];
		i--;
	}
	w[i] = (struct res_range){start, end};
	n->nwritten++;
	size_t out = 0;

	for (size_t k = 1; k < n->nwritten; k++) {
		if (w[k].start <= w[out].end) {
			if (w[k].end > w[out].end)
				w[out].end = w[k].end;
		} else {
			w[++out] = w[k];
		}
	}
	n->nwritten = out + 1;
	return 0;
}

/* Forgets what was written at or past SIZE (a truncation). IO held exclusively. */
static void cut_written(struct vr_node *n, uint64_t size)
{
	res_io_held(n);

	while (n->nwritten > 0 && n->written[n->nwritten - 1].start >= size)
		n->nwritten--;
	if (n->nwritten > 0 && n->written[n->nwritten - 1].end > size)
		n->written[n->nwritten - 1].end = size;
}

/* How many bytes of N were written (the written ranges' sum). IO held, or no writer open. */
uint64_t res_written_total(const struct vr_node *n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n->nwritten; i++)
		sum += n->written[i].end - n->written[i].start;
	return sum;
}

/* Whether every byte of N was written, none only reserved. IO held. */
static bool all_written(const struct vr_node *n)
{
	if (n->reserved_to > n->size)
		return false; /* fallocate'd past the end and never written there */
	return n->size == 0 ||
	       (n->nwritten == 1 && n->written[0].start == 0 && n->written[0].end >= n->size);
}

/* Why N's load is not complete, or NULL when it is. IO held. */
const char *res_incomplete_reason(const struct vr_node *n)
{
	if (n->reserved_to > n->size)
		return "bytes reserved past its end (fallocate) were never written";
	if (!all_written(n))
		return "bytes were never written (reserved by a truncate or fallocate, or holes "
		       "writes skipped: a sparse copy needs cp --sparse=never, or vram-load)";
	if (n->reserve_failed && n->size == 0)
		return "its reservation (fallocate) failed and nothing was written";
	return NULL;
}

/* A new file node of C's: its entry and the seal it will hold counted to C up front, so its
 * sealing never fails for the count (-EDQUOT now instead). [T] */
int res_new_file_node(struct vr_residency *r, const char *name, mode_t mode,
		      const struct vr_caller *c, struct vr_node **out)
{
	int ret = res_node_new(r, name, false, mode, c, out);

	if (ret == 0 && (ret = res_meta_add(r, *out, RES_META_SEAL)) != 0)
		res_node_destroy(r, *out);
	return ret;
}

/* Puts the new file N into PARENT as a load in progress on DEV, written through H. [T] */
static void begin_load(struct vr_residency *r, struct vr_node *parent, struct vr_node *n,
		       struct vr_handle *h, struct vr_dev_file *dev, const struct vr_caller *c)
{
	res_held(r);

	n->dev = dev;
	n->writers = 1;
	n->load_tgid = c ? c->tgid : 0;
	n->refs++; /* the handle's */
	h->writer = true;
	if (c)
		h->opener = *c;
	res_link_child(parent, n);
	res_set_state(r, n, ST_WRITING);
}

int res_create_held(struct vr_residency *r, const char *path, mode_t mode,
		    const struct vr_caller *c, struct vr_dev_file **dev, char rel[VR_SEAL_PATH_MAX],
		    struct vr_handle **out)
{
	res_held(r);

	char name[VR_NAME_MAX + 1];
	struct vr_handle *h;
	struct res_lookup l;
	struct vr_node *n;
	int ret = res_resolve_new(r, path, true, &l);

	if (ret)
		return ret;
	res_last_name(&l, name);
	ret = res_new_file_node(r, name, mode, c, &n);
	if (ret)
		return ret;
	h = res_handle_new(n);
	if (!h) {
		res_node_destroy(r, n);
		return -ENOMEM;
	}
	begin_load(r, l.parent, n, h, *dev, c);
	*dev = NULL;
	res_touch_dir(r, l.parent);
	res_node_path(n, rel, VR_SEAL_PATH_MAX);
	*out = h;
	return 0;
}

int vr_res_create(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c,
		  struct vr_handle **out)
{
	char rel[VR_SEAL_PATH_MAX];
	struct vr_dev_file *dev;
	int ret;

	ret = vr_dev_file_new(r->cfg.backend, &dev);
	if (ret)
		return ret;
	res_lock(r);
	ret = res_create_held(r, path, mode, c, &dev, rel, out);
	res_unlock(r);
	if (dev)
		vr_dev_file_free(dev);
	if (ret == 0)
		res_audit(r, "vram_allocated", rel, c, "ok", NULL, NULL);
	else
		res_refused("create", path, ret);
	return ret;
}

/*
 * Replaces sealed file N by a new, empty file of the same name, owner and
 * mode, open for writing through a new handle (open with O_TRUNC: cp over a
 * model, shell >, lock files, ref files). The old bytes are scrubbed and
 * freed; descriptors still open on them read ESTALE, as after rm. Called
 * with the tree lock held, which it drops. Returns 0 or -errno.
 */
static int replace_sealed(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
			  struct vr_handle **out)
{
	char rel[VR_SEAL_PATH_MAX], name[VR_NAME_MAX + 1];
	uint8_t old_digest[VR_DIGEST_SIZE];
	struct vr_dev_file *dev = NULL;
	struct vr_node *parent = n->parent, *fresh = NULL;
	struct vr_handle *h = NULL;
	int ret = vr_dev_file_new(r->cfg.backend, &dev);

	res_node_path(n, rel, sizeof(rel));
	snprintf(name, sizeof(name), "%s", n->name);
	/* N is sealed (the caller's test), so it has its seal */
	// NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker)
	memcpy(old_digest, n->seal->fsverity, VR_DIGEST_SIZE);
	if (ret == 0)
		ret = res_new_file_node(r, name, n->mode, c, &fresh);
	h = ret ? NULL : res_handle_new(fresh);
	if (!h) {
		if (ret == 0)
			res_node_destroy(r, fresh);
		res_unlock(r);
		vr_dev_file_free(dev);
		return ret ? ret : -ENOMEM;
	}
	/* the same inode number and owner: to its users the file was truncated and rewritten */
	fresh->ino = n->ino;
	fresh->uid = n->uid;
	fresh->gid = n->gid;
	n->refs++; /* ours, until the old bytes are scrubbed */
	res_detach_file(r, n);
	begin_load(r, parent, fresh, h, dev, c);
	res_unlock(r);
	res_scrub_removed(r, n, c);
	res_audit(r, "vram_replaced", rel, c, "ok", old_digest,
		  "opened with O_TRUNC: the sealed bytes were scrubbed and a new load begins");
	vr_log(LOG_INFO, "%s replaced: a new load begins", rel);
	*out = h;
	return 0;
}

/*
 * Opens file N for writing (FLAGS from open(2)); called with the tree lock
 * held, which it drops. A file being loaded can be, by the process loading it
 * (more descriptors, threads); another process gets -ETXTBSY, so two loads
 * never mix. An incomplete file can be, to resume its load. A sealed one is
 * replaced when opened with O_TRUNC (unless immutable=1), else -EPERM; one
 * whose load failed returns that load's error. Refusals are logged.
 */
int res_open_writer(struct vr_residency *r, struct vr_node *n, int flags, const struct vr_caller *c,
		    struct vr_handle **out)
{
	const uint8_t *digest = n->seal ? n->seal->fsverity : NULL;
	const char *why = NULL;
	char rel[VR_SEAL_PATH_MAX];
	struct vr_handle *h;
	pid_t tgid = c ? c->tgid : 0;
	int ret = 0;

	res_node_path(n, rel, sizeof(rel));
	/* a description still open for writing: the load goes on, whatever its close settled */
	bool loading = n->writers > 0 && n->state != ST_FAILED && n->state != ST_QUARANTINED &&
		       n->state != ST_REFUSED;

	if (n->state == ST_FAILED) {
		ret = n->load_err; /* already a negative errno */
	} else if (loading && tgid && n->load_tgid && tgid != n->load_tgid) {
		ret = -ETXTBSY;
		why = "another process is loading this file: one load at a time";
	} else if (!loading &&
		   (n->state == ST_SEALED || n->state == ST_QUARANTINED ||
		    n->state == ST_REFUSED) &&
		   (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && !r->cfg.immutable) {
		ret = res_leased(r, n, "replacement", rel, c);
		if (ret) {
			res_unlock(r);
			return ret;
		}
		return replace_sealed(r, n, c, out);
	} else if (!loading && n->state != ST_WRITING && n->state != ST_INCOMPLETE) {
		ret = -EPERM;
		why = r->cfg.immutable
			  ? "sealed files are immutable (immutable=1): open for "
			    "writing refused"
			  : "sealed files are immutable: appends and in-place writes are "
			    "refused; only a whole replacement (O_TRUNC) may change one";
	}
	if (ret == 0 && !(h = res_handle_new(n)))
		ret = -ENOMEM;
	if (ret) {
		res_unlock(r);
		vr_log(LOG_INFO, "open of %s for writing refused: %s", rel,
		       why ? why : strerror(-ret));
		if (why)
			res_audit(r, "policy_violation", rel, c, "denied", digest, why);
		return ret;
	}
	if (n->state == ST_INCOMPLETE && n->writers == 0) {
		/* resuming (curl -C -, wget -c, an append): a load again */
		/* no writer is open, so nothing changes GEN now: the last writer's release
		 * ordered its changes before this, through the tree lock */
		n->resuming = !(flags & O_TRUNC); /* O_TRUNC: a new load over it */
		n->resume_gen = n->gen;
		n->resume_base = res_written_total(n);
		n->resume_why = n->incomplete_why;
		res_set_state(r, n, ST_WRITING);
		n->incomplete_why = NULL;
		n->killed = n->abandoned = false;
		vr_log(LOG_INFO, "load of incomplete %s resumed", rel);
	}
	if (n->writers == 0)
		n->load_tgid = tgid;
	n->refs++;
	h->writer = true;
	if (c)
		h->opener = *c;
	n->writers++;
	res_unlock(r);
	if (flags & O_TRUNC) {
		ret = vr_res_ftruncate(r, h, 0, c);
		if (ret) {
			vr_res_release(r, h);
			return ret;
		}
	}
	*out = h;
	return 0;
}

/*
 * Feeds the bytes just written at OFF to N's plain SHA-256 when they continue
 * what was hashed (cp, curl, rsync write in order); a write anywhere else
 * (out of order, an overwrite) drops the in-line hash and the seal reads the
 * bytes back instead. Only where a read-back is a copy over a bus (CUDA): there
 * the hash overlaps the upload's DMA and saves reading the whole file back.
 * Where device memory is the host's (the mock) the seal reads it back and
 * hashes it beside the tree on another core, which measured faster on two
 * cores than hashing in the write path (docs/benchmarks.md). IO held
 * exclusively.
 */
void res_hash_drop(struct vr_node *n)
{
	res_io_held(n);

	vr_sha256_async_free(n->wsha); /* its thread stops: no lent slot is read after */
	n->wsha = NULL;
	n->hash_epoch++;
}

/* Feeds BUF to N's hasher: in place when a stage lent it (S: the slot waits for the hash
 * before it is reused), else a copy. Returns 0 or -errno. IO held exclusively. */
static int hash_feed(struct vr_node *n, const void *buf, size_t len, struct vr_res_stage *s)
{
	uint64_t ticket;
	int ret;

	if (!s)
		return vr_sha256_async_feed(n->wsha, buf, len);
	ret = vr_sha256_async_feed_ref(n->wsha, buf, len, &ticket);
	if (ret == 0)
		res_stage_lend(n, s, buf, ticket);
	return ret;
}

static void hash_written(struct vr_node *n, const void *buf, size_t len, uint64_t off,
			 struct vr_res_stage *s)
{
	res_io_held(n);

	if (n->hash_lost || vr_dev_host_memory(n->dev))
		return;
	if (off != n->hashed_to || (!n->wsha && vr_sha256_async_new(&n->wsha) != 0) ||
	    hash_feed(n, buf, len, s) != 0) {
		n->hash_lost = true;
		res_hash_drop(n); /* the seal reads back */
		return;
	}
	n->hashed_to += len;
}

/* Starts N's in-line hash over (a truncation to 0, a replacement). IO held exclusively. */
static void hash_restart(struct vr_node *n)
{
	res_io_held(n);

	res_hash_drop(n);
	n->hashed_to = 0;
	n->hash_lost = false;
}

/*
 * Gives N SIZE bytes, holding device memory for DEV_SIZE (at least SIZE: a
 * reservation past the end). All or nothing: a failure changes nothing. IO
 * held exclusively. Returns 0 or the backend's -errno.
 */
static int resize_to(struct vr_residency *r, struct vr_node *n, uint64_t size, uint64_t dev_size)
{
	res_io_held(n);

	int ret = vr_dev_resize(n->dev, dev_size);

	if (ret)
		return ret;
	uint64_t held = vr_dev_held(n->dev);

	cut_written(n, size);
	if (n->resuming && res_written_total(n) < n->resume_base)
		n->resume_base = res_written_total(n); /* what a resume adds counts from here */
	if (size == 0)
		hash_restart(n);
	else if (size < n->hashed_to) {
		n->hash_lost = true; /* what was hashed is no longer all there */
		res_hash_drop(n);
	}
	n->gen++;
	res_lock(r);
	n->size = size;
	n->held = held;
	res_now(&n->mtime);
	n->ctime = n->mtime;
	res_unlock(r);
	return 0;
}

/* Changes the file's size as a load does; a failure fails the load. IO held exclusively. */
static int set_size(struct vr_residency *r, struct vr_node *n, uint64_t size,
		    const struct vr_caller *c)
{
	res_io_held(n);

	/* a KEEP_SIZE reservation keeps its device memory until the seal trims it */
	int ret = resize_to(r, n, size, size > n->reserved_to ? size : n->reserved_to);

	if (ret)
		res_load_failed(r, n, ret, c);
	return ret;
}

/*
 * Whether N may be changed through writer handle H; IO held exclusively.
 * While a description is still open for writing, a file its opener's close
 * already settled (sealed, or incomplete) is loaded again: the seal is
 * withdrawn (audited), and the load goes on. Returns 0, -EPERM (sealed for
 * good), -ESTALE (removed) or the load's error.
 */
static int writable(struct vr_residency *r, struct vr_node *n, const struct vr_handle *h,
		    const struct vr_caller *c)
{
	res_io_held(n);

	char rel[VR_SEAL_PATH_MAX];
	bool withdrawn = false;
	int ret = 0;

	res_lock(r);
	if (n->state == ST_FAILED) {
		ret = n->load_err;
	} else if (n->state == ST_REMOVED) {
		ret = -ESTALE;
	} else if ((n->state == ST_SEALED || n->state == ST_INCOMPLETE) && h->writer &&
		   n->writers > 0) {
		withdrawn = n->state == ST_SEALED;
		res_set_state(r, n, ST_WRITING);
		n->incomplete_why = NULL;
		res_node_path(n, rel, sizeof(rel));
	} else if (n->state != ST_WRITING) {
		ret = -EPERM;
	}
	res_unlock(r);
	if (withdrawn)
		res_audit(r, "seal_withdrawn", rel, c, "ok", NULL,
			  "written again through a descriptor still open after the sealing close");
	return ret;
}

/* A write from BUF, or from the slot stage S handed out (BUF then). */
static int res_write(struct vr_residency *r, struct vr_handle *h, const void *buf, size_t len,
		     uint64_t off, const struct vr_caller *c, struct vr_res_stage *s)
{
	struct vr_node *n = h->node;
	int ret;

	if (!n || !h->writer)
		return -EBADF;
	if (off > UINT64_MAX - len || off + len > VR_SIZE_MAX_JSON)
		return -EFBIG;
	pthread_rwlock_wrlock(&n->io);
	ret = writable(r, n, h, c);
	if (ret == 0 && s && s->dev->file != n->dev)
		ret = -ESTALE; /* lent for memory the file no longer has */
	if (ret == 0 && off + len > n->size)
		ret = set_size(r, n, off + len, c);
	h->dirty = true;
	if (ret == 0) {
		ret =
		    s ? vr_dev_stage_write(s->dev, off, len) : vr_dev_write(n->dev, off, buf, len);
		n->gen++;
		if (ret == 0)
			ret = mark_written(n, off, off + len);
		if (ret == 0 && !r->cfg.sha256_off)
			hash_written(n, buf, len, off, s);
		if (ret)
			res_load_failed(r, n, ret, c);
	}
	if (ret == 0) {
		res_lock(r);
		res_now(&n->mtime);
		n->ctime = n->mtime;
		/* a write without CAP_FSETID (here: by anyone but root) drops set-user-ID, and
		 * set-group-ID where it means that (group-executable), as every Linux fs does */
		if (c && c->uid != 0 && (n->mode & (S_ISUID | S_ISGID))) {
			n->mode &= ~(mode_t)S_ISUID;
			if (n->mode & S_IXGRP)
				n->mode &= ~(mode_t)S_ISGID;
		}
		res_unlock(r);
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

int vr_res_write(struct vr_residency *r, struct vr_handle *h, const void *buf, size_t len,
		 uint64_t off, const struct vr_caller *c)
{
	return res_write(r, h, buf, len, off, c, NULL);
}

int vr_res_write_staged(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
			size_t len, uint64_t off, const struct vr_caller *c)
{
	if (!s->cur || len > s->cap)
		return -EINVAL;
	void *slot = s->cur;

	s->cur = NULL; /* the device's (and the hasher's) now */
	return res_write(r, h, slot, len, off, c, s);
}

int vr_res_ftruncate(struct vr_residency *r, struct vr_handle *h, uint64_t size,
		     const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret;

	if (!n)
		return -EPERM;
	/* larger than the device could ever hold: the maximum file size, as POSIX has it */
	if (size > VR_SIZE_MAX_JSON || size > r->dev.total_bytes)
		return -EFBIG;
	pthread_rwlock_wrlock(&n->io);
	ret = writable(r, n, h, c);
	/*
	 * A truncate that does not fit fails and changes nothing (POSIX); the load
	 * goes on, unlike a write the device cannot take. The resize is all or nothing.
	 */
	if (ret == 0 && n->reserved_to && size == n->size) {
		/* a truncate states the size: a reservation past it goes (as on ext4) */
		ret = resize_to(r, n, size, size);
		if (ret == 0)
			n->reserved_to = 0;
	}
	if (ret == 0 && size != n->size) {
		ret = resize_to(r, n, size, size);
		if (ret == 0) {
			n->reserved_to = 0;
			h->dirty = true;
		}
	}
	pthread_rwlock_unlock(&n->io);
	if (ret)
		vr_log(LOG_INFO, "truncate of %s to %llu refused: %s; the file is unchanged",
		       n->name, (unsigned long long)size, strerror(-ret));
	return ret;
}

int vr_res_truncate(struct vr_residency *r, const char *path, uint64_t size,
		    const struct vr_caller *c)
{
	struct vr_handle *h;
	struct res_lookup l;
	int ret;

	res_lock(r);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_FILE)
		ret = l.kind == VR_KIND_DIR ? -EISDIR : -EPERM;
	if (ret) {
		res_unlock(r);
		return ret;
	}
	h = res_handle_new(l.node);
	if (!h) {
		res_unlock(r);
		return -ENOMEM;
	}
	l.node->refs++;
	res_unlock(r);
	ret = vr_res_ftruncate(r, h, size, c);
	res_refused("truncate", path, ret);
	if (ret == -EPERM) {
		char rel[VR_SEAL_PATH_MAX];

		res_lock(r);
		res_node_path(l.node, rel, sizeof(rel));
		res_unlock(r);
		res_audit(r, "policy_violation", rel, c, "denied", NULL,
			  "sealed files are immutable: truncate refused");
	}
	vr_res_release(r, h);
	return ret;
}

int vr_res_fallocate(struct vr_residency *r, struct vr_handle *h, int mode, uint64_t off,
		     uint64_t len, const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	uint64_t end;
	int ret;

	if (!n || !h->writer)
		return -EBADF;
	if (mode & ~VR_FALLOC_KEEP_SIZE) {
		/* punching holes, zeroing, collapsing: bytes would change */
		pthread_rwlock_wrlock(&n->io);
		n->reserve_failed = true;
		pthread_rwlock_unlock(&n->io);
		vr_log(LOG_INFO,
		       "fallocate mode 0x%x of %s refused: only reservations are supported",
		       (unsigned)mode, n->name);
		return -EOPNOTSUPP;
	}
	if (len == 0 || off > UINT64_MAX - len)
		return -EINVAL;
	end = off + len;
	if (end > VR_SIZE_MAX_JSON)
		return -EFBIG;
	pthread_rwlock_wrlock(&n->io);
	ret = writable(r, n, h, c);
	if (ret == 0 && end > n->size && (mode & VR_FALLOC_KEEP_SIZE) && end > n->reserved_to) {
		/* device memory past the end, the size unchanged */
		ret = resize_to(r, n, n->size, end);
		if (ret == 0)
			n->reserved_to = end;
	} else if (ret == 0 && end > n->size && !(mode & VR_FALLOC_KEEP_SIZE)) {
		/* the size grows over bytes reserved, not written: incomplete until written */
		ret = resize_to(r, n, end, end > n->reserved_to ? end : n->reserved_to);
	}
	/* a reservation that does not fit changes nothing: the load goes on */
	if (ret && ret != -EPERM && ret != -ESTALE)
		n->reserve_failed = true;
	pthread_rwlock_unlock(&n->io);
	if (ret)
		vr_log(LOG_INFO, "fallocate of %s refused: %s", n->name, strerror(-ret));
	return ret;
}
