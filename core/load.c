/* load.c - loading files: create, open for writing, write, truncate, and sealing at close. */
#include "digest.h"
#include "log.h"
#include "name.h"
#include "res_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records a failed load: the file is removed at the writer's close. IO held. */
static void load_failed(struct vr_residency *r, struct vr_node *n, int err,
			const struct vr_caller *c)
{
	char path[VR_SEAL_PATH_MAX];

	pthread_mutex_lock(&r->lock);
	if (n->state == ST_WRITING) {
		res_set_state(r, n, ST_FAILED);
		n->load_err = err;
	}
	if (res_node_path(n, path, sizeof(path)) != 0)
		strcpy(path, n->name);
	pthread_mutex_unlock(&r->lock);
	vr_log(LOG_WARNING, "load of %s failed: %s; it will not be sealed", path, strerror(-err));
	res_audit(r, "vram_allocation_failed", path, c, "failed", NULL, strerror(-err));
}

int vr_res_create(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c,
		  struct vr_handle **out)
{
	char name[VR_NAME_MAX + 1], rel[VR_SEAL_PATH_MAX];
	struct vr_dev_file *dev;
	struct vr_handle *h;
	struct res_lookup l;
	struct vr_node *n;
	int ret;

	ret = vr_dev_file_new(r->cfg.backend, &dev);
	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	ret = res_resolve_new(r, path, true, &l);
	if (ret)
		goto unlock;
	res_last_name(&l, name);
	n = res_node_new(r, name, false, mode, c);
	h = n ? res_handle_new(n) : NULL;
	if (!h) {
		if (n)
			res_node_destroy(n);
		ret = -ENOMEM;
		goto unlock;
	}
	n->dev = dev;
	dev = NULL;
	n->writers = 1;
	n->refs++; /* the handle's */
	h->writer = true;
	res_link_child(l.parent, n);
	res_touch_dir(l.parent);
	res_set_state(r, n, ST_WRITING);
	res_node_path(n, rel, sizeof(rel));
	*out = h;
unlock:
	pthread_mutex_unlock(&r->lock);
	if (dev)
		vr_dev_file_free(dev);
	if (ret == 0)
		res_audit(r, "vram_allocated", rel, c, "ok", NULL, NULL);
	else
		res_refused("create", path, ret);
	return ret;
}

/*
 * Opens file N for writing (FLAGS from open(2)); called with the tree lock
 * held, which it drops. Only a file still being loaded can be; a sealed one
 * is -EPERM (audited), one whose load failed returns that load's error.
 */
int res_open_writer(struct vr_residency *r, struct vr_node *n, int flags, const struct vr_caller *c,
		    struct vr_handle **out)
{
	char rel[VR_SEAL_PATH_MAX];
	struct vr_handle *h;
	int ret;

	res_node_path(n, rel, sizeof(rel));
	if (n->state != ST_WRITING) {
		/* load_err is already a negative errno */
		ret = n->state == ST_FAILED ? n->load_err : -EPERM;
		const uint8_t *digest = n->seal ? n->seal->fsverity : NULL;

		pthread_mutex_unlock(&r->lock);
		if (ret == -EPERM) {
			vr_log(LOG_INFO, "open of sealed %s for writing refused", rel);
			res_audit(r, "policy_violation", rel, c, "denied", digest,
				  "sealed files are immutable: open for writing refused");
		} else {
			vr_log(LOG_INFO, "open of %s for writing refused: its load failed (%s)",
			       rel, strerror(-ret));
		}
		return ret;
	}
	h = res_handle_new(n);
	if (!h) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	n->refs++;
	h->writer = true;
	n->writers++;
	pthread_mutex_unlock(&r->lock);
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

/* Changes the file's size; IO held exclusively. */
static int set_size(struct vr_residency *r, struct vr_node *n, uint64_t size,
		    const struct vr_caller *c)
{
	int ret = vr_dev_resize(n->dev, size);

	if (ret) {
		load_failed(r, n, ret, c);
		return ret;
	}
	uint64_t held = vr_dev_held(n->dev);

	pthread_mutex_lock(&r->lock);
	n->size = size;
	n->held = held;
	res_now(&n->mtime);
	n->ctime = n->mtime;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* Whether N may be changed; IO held. Returns 0, -EPERM (sealed), -ESTALE or the load error. */
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
		ret = vr_dev_write(n->dev, off, buf, len);
		if (ret)
			load_failed(r, n, ret, c);
	}
	if (ret == 0) {
		pthread_mutex_lock(&r->lock);
		res_now(&n->mtime);
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
	struct res_lookup l;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = res_resolve(r, path, &l);
	if (ret == 0 && l.kind != VR_KIND_FILE)
		ret = l.kind == VR_KIND_DIR ? -EISDIR : -EPERM;
	if (ret) {
		pthread_mutex_unlock(&r->lock);
		return ret;
	}
	h = res_handle_new(l.node);
	if (!h) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	l.node->refs++;
	pthread_mutex_unlock(&r->lock);
	ret = vr_res_ftruncate(r, h, size, c);
	res_refused("truncate", path, ret);
	if (ret == -EPERM) {
		char rel[VR_SEAL_PATH_MAX];

		pthread_mutex_lock(&r->lock);
		res_node_path(l.node, rel, sizeof(rel));
		pthread_mutex_unlock(&r->lock);
		res_audit(r, "policy_violation", rel, c, "denied", NULL,
			  "sealed files are immutable: truncate refused");
	}
	vr_res_release(r, h);
	return ret;
}

/* Builds, signs and caches the seal of N for its current path. [T] */
int res_sign_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s)
{
	char *json;
	int ret = res_node_path(n, s->path, sizeof(s->path));

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

struct sha_job {
	struct vr_dev_file *f;
	uint8_t sha[VR_DIGEST_SIZE];
	int ret;
};

static void *sha_worker(void *arg)
{
	struct sha_job *j = arg;

	j->ret = vr_dev_sha256(j->f, j->sha);
	return NULL;
}

/*
 * Both digests of F: the fs-verity tree on the device, and beside it on a
 * host thread the plain SHA-256 (sequential host work, kept out of the
 * device op). Returns 0 or the first -errno.
 */
static int digest_both(struct vr_dev_file *f, uint8_t sha[VR_DIGEST_SIZE],
		       uint8_t fsv[VR_DIGEST_SIZE])
{
	struct sha_job job = {.f = f};
	pthread_t t;

	/* counted before the tree starts, so a host tree leaves the hashing thread its core */
	vr_digest_thread_busy(1);
	bool threaded = pthread_create(&t, NULL, sha_worker, &job) == 0;

	if (!threaded)
		vr_digest_thread_busy(-1);
	int ret = vr_dev_fsverity(f, fsv);

	if (threaded) {
		pthread_join(t, NULL);
		vr_digest_thread_busy(-1);
	} else {
		job.ret = vr_dev_sha256(f, job.sha);
	}
	if (ret == 0)
		ret = job.ret;
	if (ret == 0)
		memcpy(sha, job.sha, VR_DIGEST_SIZE);
	return ret;
}

/* Seals N: digests, signs, publishes. IO held exclusively. */
static int seal_file(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	struct vr_seal *s = calloc(1, sizeof(*s));
	char rel[VR_SEAL_PATH_MAX];
	int ret;

	if (!s)
		return -ENOMEM;
	ret = digest_both(n->dev, s->sha256, s->fsverity);
	if (ret) {
		/* a device that cannot digest is an I/O error to the writer, not a mismatch */
		ret = ret == -EBADMSG ? -EIO : ret;
		load_failed(r, n, ret, c);
		free(s);
		return ret;
	}
	s->size = n->size;
	strcpy(s->device.backend, r->dev.backend);
	s->device.index = r->dev.index;
	strcpy(s->device.name, r->dev.name);
	strcpy(s->device.uuid, r->dev.uuid);
	vr_seal_now(s->sealed_at);
	pthread_mutex_lock(&r->lock);
	/* the seal text is cached now but stays hidden until the state says sealed */
	ret = res_sign_seal(r, n, s);
	strcpy(rel, s->path);
	pthread_mutex_unlock(&r->lock);
	if (ret) {
		vr_log(LOG_ERR, "signing the seal of %s failed: %s", rel, strerror(-ret));
		goto fail;
	}
	/* a seal nobody could audit is no seal: the load fails instead */
	ret = res_audit_must(r, "vram_sealed", rel, c, "ok", s->fsverity, NULL);
	if (ret)
		goto fail;
	pthread_mutex_lock(&r->lock);
	free(n->seal);
	n->seal = s;
	res_set_state(r, n, ST_SEALED);
	pthread_mutex_unlock(&r->lock);
	return 0;
fail:
	load_failed(r, n, ret, c);
	free(s);
	return ret;
}

/*
 * Seals N when no other writer has it open, or removes it when its load
 * failed. IO held exclusively. Returns the load's or the seal's error.
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
		res_detach_file(r, n);
		pthread_mutex_unlock(&r->lock);
		res_release_device(r, n, n->name, c); /* IO is held already */
		pthread_mutex_lock(&r->lock);
		res_node_put(r, n);
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
		res_node_put(r, n);
		pthread_mutex_unlock(&r->lock);
	}
	free(h->text);
	free(h);
}
