/* open.c - opening, reading and releasing: every open dispatches here to a reader, a writer
 * (load.c) or a generated entry (vnames.c); reads of files and texts; the last release. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* Opens sealed (or loading) file N for reading, re-checking it first when so configured. */
static int open_reader(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		       struct vr_handle **out)
{
	char rel[VR_SEAL_PATH_MAX];
	struct vr_handle *h;

	if (n->state == ST_QUARANTINED || n->state == ST_REFUSED) {
		res_unlock(r);
		return -EIO;
	}
	h = res_handle_new(n);
	if (!h) {
		res_unlock(r);
		return -ENOMEM;
	}
	n->refs++;
	h->cacheable = n->state == ST_SEALED;
	/*
	 * The first read open of a sealed file drops whatever the kernel cached
	 * for this path (an earlier version's pages, after a replacement);
	 * after it, the cache can hold only these sealed bytes, so later opens
	 * keep it (and processes mapping one model share its pages).
	 */
	h->keep_cache = h->cacheable && n->cache_ok;
	if (h->cacheable)
		n->cache_ok = true;
	bool check = n->state == ST_SEALED && (r->cfg.verify_on_open || res_expect_unchecked(n));

	res_node_path(n, rel, sizeof(rel));
	res_unlock(r);
	/* evicted: back on the device, checked there against its seal, before a byte is read;
	 * the handle's reference keeps it there while open */
	int ret = res_make_resident(r, n, c);

	if (ret) {
		vr_res_release(r, h);
		return ret;
	}
	if (check) {
		/* shared with a check of N running now, and held to the caller's limits */
		ret = res_check_open(r, n, rel, c);

		if (ret) {
			vr_res_release(r, h);
			/* past the limits, or being replaced: EAGAIN; a mismatch (-EBADMSG)
			 * reads as EIO, as with fs-verity */
			return ret == -EAGAIN ? -EAGAIN : -EIO;
		}
	}
	*out = h;
	return 0;
}

int vr_res_open(struct vr_residency *r, const char *path, int flags, const struct vr_caller *c,
		struct vr_handle **out)
{
	bool wants_write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	struct res_lookup l;
	int ret;

	res_lock(r);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind == VR_KIND_DIR)
		ret = -EISDIR;
	else if (ret == 0 && l.kind == VR_KIND_LINK)
		ret = -ELOOP; /* the kernel follows links itself: this one it did not */
	else if (ret == 0 && l.gen && wants_write)
		ret = -EPERM; /* generated entries are read-only */
	if (ret) {
		res_unlock(r);
		res_refused("open", path, ret);
		return ret;
	}
	if (l.gen) {
		/* its text is made without the tree lock: keep the owner alive meanwhile */
		l.node->refs++;
		res_unlock(r);
		ret = res_vname_open(r, &l, c, out);
		res_lock(r);
		res_node_put(r, l.node);
		res_unlock(r);
	} else if (wants_write) {
		/* drops the lock, and logs and audits its own refusals */
		return res_open_writer(r, l.node, flags, c, out);
	} else {
		ret = open_reader(r, l.node, c, out); /* drops the lock */
	}
	res_refused("open", path, ret);
	return ret;
}

bool vr_res_handle_cacheable(const struct vr_handle *h)
{
	return h->cacheable;
}

bool vr_res_handle_keep_cache(const struct vr_handle *h)
{
	return h->keep_cache;
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
	res_lock(r);
	enum file_state st = n->state;
	uint64_t size = n->size;

	res_unlock(r);
	if (st == ST_REMOVED) {
		ret = -ESTALE;
	} else if (st == ST_QUARANTINED || st == ST_FAILED || st == ST_REFUSED) {
		ret = -EIO;
	} else if (off >= size) {
		*got = 0;
	} else {
		size_t k = size - off < len ? (size_t)(size - off) : len;

		ret = vr_dev_read(n->dev, off, buf, k);
		if (ret == 0)
			*got = k;
		else
			vr_log(LOG_ERR, "device read of %s failed: %s", n->name, strerror(-ret));
	}
	pthread_rwlock_unlock(&n->io);
	return ret;
}

void vr_res_release(struct vr_residency *r, struct vr_handle *h)
{
	struct vr_node *n = h->node;

	if (n && h->writer)
		res_release_writer(r, h);
	if (n) {
		res_lock(r);
		if (h->dir_counted)
			res_dirs_give(r, h->opener.uid);
		res_node_put(r, n);
		res_unlock(r);
	}
	free(h->text);
	free(h);
}
