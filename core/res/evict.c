/* evict.c - eviction: a sealed file's bytes moved to host memory and its device memory freed,
 * and back, checked on the device against its seal before anything is served
 * (docs/operations.md, "Sharing the GPU"). */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/memops.h>

double res_mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A new file of FROM's size on backend TO holding FROM's bytes; returns 0 or -errno. */
static int copy_to(struct vr_dev_file *from, struct vr_backend *to, struct vr_dev_file **out)
{
	struct vr_dev_file *f;
	int ret = vr_dev_file_new(to, &f);

	if (ret)
		return ret;
	ret = vr_dev_resize(f, from->size);
	if (ret == 0)
		ret = vr_dev_copy(from, f);
	if (ret) {
		vr_dev_file_free(f);
		return ret;
	}
	*out = f;
	return 0;
}

/*
 * Why N may not be evicted now, with its error in *ERR, or NULL: PINS are the references
 * beside the tree's the caller holds; an open or a mapping keeps a file where it is. [T]
 */
static const char *evict_refusal(const struct vr_node *n, unsigned pins, int *err)
{
	*err = -EINVAL;
	if (n->is_dir || n->target)
		return "not a regular file";
	if (n->state == ST_REMOVED) {
		*err = -ENOENT;
		return "removed";
	}
	if (n->state != ST_SEALED)
		return "not sealed: only sealed files are evicted";
	*err = -EBUSY;
	if (n->leases || n->revoked)
		return "mapped by a process through the socket";
	if (n->refs > 1 + pins)
		return "open";
	*err = 0;
	return NULL;
}

static double ms_since(double t0)
{
	return (res_mono() - t0) * 1e3;
}

int res_evict_node(struct vr_residency *r, struct vr_node *n, unsigned pins,
		   const struct vr_caller *c, const char *reason, bool policy, char *why,
		   size_t cap)
{
	char path[VR_SEAL_PATH_MAX], detail[VR_WHY_MAX + 160];
	struct vr_dev_file *host = NULL, *dev;
	const char *no;
	uint64_t size;
	double t0 = res_mono();
	int ret;

	if (!r->cfg.evict_store)
		return -EOPNOTSUPP;
	pthread_rwlock_wrlock(&n->io);
	res_lock(r);
	bool already = n->evicted;

	no = already ? NULL : evict_refusal(n, pins, &ret);
	size = n->size;
	res_node_path(n, path, sizeof(path));
	res_unlock(r);
	if (already || no) {
		pthread_rwlock_unlock(&n->io);
		snprintf(why, cap, "%s", no ? no : "evicted already");
		return no ? ret : -EALREADY;
	}
	ret = copy_to(n->dev, r->cfg.evict_store, &host);
	res_lock(r);
	/* an open or a map may have come meanwhile: it keeps the file */
	no = ret ? NULL : evict_refusal(n, pins, &ret);
	if (ret == 0) {
		dev = n->dev;
		n->dev = host;
		n->evicted = true;
		n->evicted_by_policy = policy;
		n->held = 0;
		n->evict_seq = ++r->ev.seq;
		r->ev.files++;
		r->ev.bytes += size;
		r->ev.evicted++;
		res_keep_drop(r, n); /* its device memory goes: the keeper lets it go */
		res_changed(r);
	} else {
		r->ev.refused++;
	}
	res_unlock(r);
	if (ret) {
		if (host)
			vr_dev_file_free(host);
		pthread_rwlock_unlock(&n->io);
		snprintf(why, cap, "%s",
			 no		  ? no
			 : ret == -ENOSPC ? "host memory for evicted files is full (evict_host_max)"
					  : strerror(-ret));
		vr_log(LOG_WARNING, "eviction of %s (%s) refused: %s", path, reason, why);
		res_audit(r, "vram_evicted", path, c, "failed", NULL, why);
		return ret;
	}
	ret = vr_dev_file_free(dev); /* scrubbed: nothing of it stays on the device */
	res_keep_sealed(r, n, path); /* its host copy outlives a restart in its place */
	pthread_rwlock_unlock(&n->io);
	snprintf(detail, sizeof(detail), "%s; %llu bytes to host memory in %.0f ms%s", reason,
		 (unsigned long long)size, ms_since(t0),
		 ret ? "; the scrub of its device memory reported an error" : "");
	vr_log(LOG_NOTICE, "%s evicted: %s", path, detail);
	res_audit(r, "vram_evicted", path, c, "ok", NULL, detail);
	return 0;
}

/* Back on the device: DEV holds N's bytes now, checked (MATCH) or not. IO held exclusively. */
static struct vr_dev_file *put_back(struct vr_residency *r, struct vr_node *n,
				    struct vr_dev_file *dev, bool match)
{
	struct vr_dev_file *host = n->dev;

	res_lock(r);
	res_keep_drop(r, n); /* the host copy's names: res_keep_sealed gives the device's */
	n->dev = dev;
	n->evicted = false;
	n->evicted_by_policy = false;
	n->held = vr_dev_held(dev);
	n->resident_since = res_mono();
	r->ev.files--;
	r->ev.bytes -= n->size;
	r->ev.restored++;
	if (!match && n->state == ST_SEALED) {
		res_set_state(r, n, ST_QUARANTINED);
		res_set_check_why(n, "its bytes changed in host memory while it was evicted: the "
				     "device digest differs from its seal's");
	}
	res_changed(r);
	res_unlock(r);
	return host;
}

/* Whether HOST, a failed restore's source, no longer holds the sealed bytes WANT names: it
 * does not read whole (a file of evict_dir= cut short or removed) or its digest differs. The
 * device failed otherwise. */
static bool host_copy_lost(struct vr_dev_file *host, const uint8_t want[VR_DIGEST_SIZE])
{
	uint8_t fsv[VR_DIGEST_SIZE];

	return vr_dev_fsverity(host, fsv) != 0 || !memeql_sec(fsv, want, sizeof(fsv));
}

/* Evicted N's host copy is lost: quarantined where it is (it was never served), audited. IO
 * held exclusively, which it drops. Returns -EIO. */
static int lost(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		const char *path)
{
	static const char why[] = "its bytes in host memory changed or were lost while it was "
				  "evicted: they no longer read whole, or differ from its seal";

	res_lock(r);
	if (n->state == ST_SEALED) {
		res_set_state(r, n, ST_QUARANTINED);
		res_set_check_why(n, why);
	}
	r->ev.refused++;
	res_unlock(r);
	pthread_rwlock_unlock(&n->io);
	vr_log(LOG_ERR, "restore of %s FAILED: %s; file quarantined", path, why);
	res_audit(r, "vram_restored", path, c, "failed", NULL, why);
	res_audit(r, "seal_verification_failed", path, c, "failed", NULL, why);
	return -EIO;
}

int res_restore_node(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		     const char *reason, char *why, size_t cap)
{
	char path[VR_SEAL_PATH_MAX], detail[VR_WHY_MAX + 160];
	uint8_t fsv[VR_DIGEST_SIZE], want[VR_DIGEST_SIZE];
	struct vr_dev_file *dev = NULL;
	double t0 = res_mono();
	bool evicted;
	int ret;

	pthread_rwlock_wrlock(&n->io);
	res_lock(r);
	evicted = n->evicted && n->state != ST_REMOVED && n->seal;
	if (evicted)
		memcpy(want, n->seal->fsverity, sizeof(want));
	res_node_path(n, path, sizeof(path));
	res_unlock(r);
	if (!evicted) {
		pthread_rwlock_unlock(&n->io);
		return 0; /* restored by another caller meanwhile, or gone */
	}
	ret = copy_to(n->dev, r->cfg.backend, &dev);
	if (ret == 0)
		ret = vr_dev_fsverity(dev, fsv);
	if (ret && ret != -ENOSPC && ret != -ENOMEM && host_copy_lost(n->dev, want)) {
		if (dev)
			vr_dev_file_free(dev);
		snprintf(why, cap, "its bytes changed or were lost while evicted: quarantined");
		return lost(r, n, c, path);
	}
	if (ret) {
		if (dev)
			vr_dev_file_free(dev);
		pthread_rwlock_unlock(&n->io);
		res_lock(r);
		r->ev.refused++;
		res_unlock(r);
		snprintf(why, cap, "%s",
			 ret == -ENOSPC ? "no room on the device"
					: strerror(ret == -EBADMSG ? EIO : -ret));
		vr_log(LOG_WARNING, "restore of %s (%s) failed: %s; it stays evicted", path, reason,
		       why);
		res_audit(r, "vram_restored", path, c, "failed", NULL, why);
		return ret == -EBADMSG ? -EIO : ret;
	}
	bool match = memeql_sec(fsv, want, sizeof(fsv));
	uint64_t size = dev->size;

	vr_dev_file_free(put_back(r, n, dev, match));
	if (match)
		res_keep_sealed(r, n, path); /* kept across a restart again */
	pthread_rwlock_unlock(&n->io);
	snprintf(detail, sizeof(detail),
		 "%s; from host memory, %llu bytes, checked on the device "
		 "against its seal, in %.0f ms",
		 reason, (unsigned long long)size, ms_since(t0));
	if (!match) {
		snprintf(why, cap, "its bytes changed while evicted: quarantined");
		vr_log(LOG_ERR, "restore of %s FAILED its check: %s; file quarantined", path,
		       detail);
		res_audit(r, "vram_restored", path, c, "failed", fsv,
			  "its bytes changed in host memory while it was evicted: quarantined");
		res_audit(r, "seal_verification_failed", path, c, "failed", fsv,
			  "restored from host memory: the device digest differs from its seal");
		return -EIO;
	}
	vr_log(LOG_NOTICE, "%s restored: %s", path, detail);
	res_audit(r, "vram_restored", path, c, "ok", fsv, detail);
	return 0;
}

int res_make_resident(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	char why[VR_WHY_MAX];
	bool evicted;

	res_lock(r);
	evicted = n->evicted;
	n->used_at = res_mono();
	res_unlock(r);
	if (!evicted)
		return 0;
	if (r->cfg.restore_manual)
		return -EAGAIN;
	return res_restore_node(r, n, c, "restored for its use", why, sizeof(why));
}
