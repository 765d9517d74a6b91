/* close.c - what a writer's close decides: the flush by the opener of the only writable
 * description (or the last release) settles the load, sealed when complete (both digests read
 * back from the device, the expected digests checked, the seal signed), else INCOMPLETE, saying
 * why; a failed load is removed. */
#include "digest.h"
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A read-back SHA-256 of a file, run beside its fs-verity digest. */
struct sha_job {
	struct vr_dev_file *f;
	uint8_t sha[VR_DIGEST_SIZE];
	int ret;
	double secs; /* how long the read-back hash took */
};

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *sha_worker(void *arg)
{
	struct sha_job *j = arg;
	double t0 = seconds();

	j->ret = vr_dev_sha256(j->f, j->sha);
	j->secs = seconds() - t0;
	return NULL;
}

/* What sealing took, for the log line that makes the next bottleneck visible. */
struct seal_times {
	double tree;  /* the fs-verity digest on the device */
	double sha;   /* the read-back plain hash (beside the tree), or 0 */
	bool in_line; /* the plain hash came from the write path */
};

/*
 * Both digests of N's bytes: the fs-verity tree on the device, and the plain
 * SHA-256 from the in-line hash when the writes came in order, else beside the
 * tree on a host thread reading the bytes back (sequential host work, kept out
 * of the device op). IO held exclusively. Returns 0 or the first -errno.
 */
static int digest_both(struct vr_node *n, uint8_t sha[VR_DIGEST_SIZE], uint8_t fsv[VR_DIGEST_SIZE],
		       struct seal_times *tm)
{
	res_io_held(n);

	struct vr_dev_file *f = n->dev;
	struct sha_job job = {.f = f};
	double t0 = seconds();
	pthread_t t;

	memset(tm, 0, sizeof(*tm));
	if (!sha) { /* sha256=off: the tree alone */
		int ret = vr_dev_fsverity(f, fsv);

		tm->tree = seconds() - t0;
		return ret;
	}
	if (!n->hash_lost && n->hashed_to == n->size && (n->wsha || n->size == 0)) {
		int ret = n->wsha ? vr_sha256_async_final(n->wsha, job.sha) : 0;

		if (!n->wsha)
			vr_sha256("", 0, job.sha);
		res_hash_drop(n);
		/* the stream is spent: a later write (a withdrawn seal) reads back instead */
		n->hash_lost = true;
		tm->in_line = true;
		if (ret == 0)
			ret = vr_dev_fsverity(f, fsv);
		tm->tree = seconds() - t0;
		if (ret == 0)
			memcpy(sha, job.sha, VR_DIGEST_SIZE);
		return ret;
	}

	/* counted before the tree starts, so a host tree leaves the hashing thread its core */
	vr_digest_thread_busy(1);
	bool threaded = pthread_create(&t, NULL, sha_worker, &job) == 0;

	if (!threaded)
		vr_digest_thread_busy(-1);
	int ret = vr_dev_fsverity(f, fsv);

	tm->tree = seconds() - t0;

	if (threaded) {
		pthread_join(t, NULL);
		vr_digest_thread_busy(-1);
	} else {
		sha_worker(&job);
	}
	tm->sha = job.secs;
	if (ret == 0)
		ret = job.ret;
	if (ret == 0)
		memcpy(sha, job.sha, VR_DIGEST_SIZE);
	return ret;
}

/* Removes N after its load failed (entry and device memory go now). IO held exclusively.
 * Returns the load's error. */
static int remove_failed(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	res_io_held(n);

	int ret;

	res_lock(r);
	ret = n->load_err;
	if (n->state == ST_FAILED) {
		n->refs++;
		res_detach_file(r, n);
		res_unlock(r);
		res_release_device(r, n, n->name, c); /* IO is held already */
		res_lock(r);
		res_node_put(r, n);
	}
	res_unlock(r);
	return ret;
}

/*
 * Refuses to seal N, whose bytes (digests in S, taken over) a publisher's
 * digest does not vouch for: it stays, unsealed and unreadable, until it is
 * replaced (or, when AWAITING, until a source covering it arrives). IO held
 * exclusively. Returns -EIO, the writer's close() error.
 */
static int refuse_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
		       const char *rel, const char *why, const char *detail, bool awaiting,
		       const struct vr_caller *c)
{
	res_io_held(n);

	res_lock(r);
	free(n->seal);
	n->seal = s;
	n->sealed_gen = n->gen;
	n->awaiting_source = awaiting;
	res_set_check_why(n, why);
	res_set_state(r, n, ST_REFUSED);
	res_unlock(r);
	vr_log(LOG_ERR, "seal of %s refused: %s; reads fail until it is replaced", rel, detail);
	res_audit(r, "vram_seal_refused", rel, c, "denied", s->fsverity, detail);
	return -EIO;
}

/*
 * Gives back what the device holds past N's size: a reservation past its
 * end, and the slack a backend kept for growth (a resize to the same size
 * fits). IO held exclusively.
 */
static int trim_to_size(struct vr_residency *r, struct vr_node *n)
{
	res_io_held(n);

	int ret = vr_dev_resize(n->dev, n->size);

	if (ret == 0) {
		uint64_t held = vr_dev_held(n->dev);

		n->reserved_to = 0;
		res_lock(r);
		n->held = held;
		res_unlock(r);
	}
	return ret;
}

/* Takes N's digests into S from the device: the fs-verity digest, and the SHA-256 unless
 * sha256=off and no expected digest names the file. IO held exclusively. */
static int take_digests(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
			struct seal_times *tm)
{
	res_io_held(n);

	struct res_expect e;
	int ret;

	if (r->cfg.sha256_off) {
		res_lock(r);
		res_expect_of(n, NULL, NULL, &e);
		s->no_sha256 = !e.need_sha256 && !r->cfg.expect_require;
		res_unlock(r);
	}
	ret = digest_both(n, s->no_sha256 ? NULL : s->sha256, s->fsverity, tm);
	/* a device that cannot digest is an I/O error to the writer, not a mismatch */
	return ret == -EBADMSG ? -EIO : ret;
}

/*
 * Fills S's size and device, checks it against the publishers' digests that
 * cover N's path, and signs it; the seal text is cached now but stays hidden
 * until the state says sealed. REL gets N's path. Returns 0; -EBADMSG (a
 * source names other bytes) or -ENOKEY (expect=require and none covers it),
 * WHY and DETAIL saying so; or -errno. IO held exclusively.
 */
static int sign_in_place(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
			 char rel[VR_SEAL_PATH_MAX], char why[VR_WHY_MAX],
			 char detail[2 * VR_WHY_MAX])
{
	res_io_held(n);

	struct res_expect e;
	int ret;

	s->size = n->size;
	strcpy(s->device.backend, r->dev.backend);
	s->device.index = r->dev.index;
	strcpy(s->device.name, r->dev.name);
	strcpy(s->device.uuid, r->dev.uuid);
	vr_seal_now(s->sealed_at);
	if (r->cfg.device_digest & VR_DEVICE_DIGEST_BLAKE3) {
		/* device_digest=blake3|both: every seal records the BLAKE3 verify recomputes */
		ret = vr_dev_blake3(n->dev, s->blake3);
		s->has_blake3 = ret == 0;
		if (ret)
			return ret == -EBADMSG ? -EIO : ret;
	}
	res_lock(r);
	ret = res_place_seal(r, n, s, &e);
	res_node_path(n, rel, VR_SEAL_PATH_MAX);
	if (ret == 0 && e.need_blake3) {
		/* a checksums.blake3 names it: its BLAKE3 from the device bytes, then place again
		 */
		res_unlock(r);
		ret = vr_dev_blake3(n->dev, s->blake3);
		s->has_blake3 = ret == 0;
		res_lock(r);
		if (ret == 0)
			ret = res_place_seal(r, n, s, &e);
	}
	for (int tries = 0; ret == 0 && e.need_bytes && tries < 2; tries++) {
		/* a source lists shards or a BLAKE2b: its bytes checked on the host, then again */
		struct res_bytes_job j;

		ret = res_bytes_job_take(&e, s->fsverity, &j);
		res_unlock(r);
		if (ret == 0)
			ret = res_bytes_run(r, n, &j);
		res_bytes_job_free(&j);
		res_lock(r);
		if (ret == 0)
			ret = res_place_seal(r, n, s, &e);
	}
	if (ret == 0 && s->no_sha256 && e.need_sha256) {
		/* a SHA-256 source arrived meanwhile: take the SHA-256 after all, then place again
		 */
		res_unlock(r);
		ret = vr_dev_sha256(n->dev, s->sha256);
		s->no_sha256 = ret != 0;
		res_lock(r);
		if (ret == 0)
			ret = res_place_seal(r, n, s, &e);
	}
	if (ret == -EBADMSG) {
		res_expect_why(&e, why, VR_WHY_MAX);
		res_expect_detail(&e, s, detail, 2 * VR_WHY_MAX);
	} else if (ret == 0 && r->cfg.expect_require && !e.covered &&
		   !res_is_source_name(n->name)) {
		ret = -ENOKEY;
		snprintf(why, VR_WHY_MAX, "%s", "no expected digest covers it (expect=require)");
		snprintf(detail, 2 * VR_WHY_MAX, "%s", why);
	}
	res_unlock(r);
	return ret;
}

/* Makes S N's seal, N sealed, and says so. IO held exclusively. */
static void publish_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
			 const char *rel, const struct seal_times *tm)
{
	res_io_held(n);

	res_lock(r);
	free(n->seal);
	n->seal = s;
	n->sealed_gen = n->gen;
	res_set_state(r, n, ST_SEALED);
	res_unlock(r);
	if (s->no_sha256)
		vr_log(LOG_INFO, "sealed %s (%llu bytes): tree %.3f s, no sha256 (sha256=off)", rel,
		       (unsigned long long)s->size, tm->tree);
	else if (tm->in_line)
		vr_log(LOG_INFO, "sealed %s (%llu bytes): tree %.3f s, sha256 hashed as written",
		       rel, (unsigned long long)s->size, tm->tree);
	else
		vr_log(LOG_INFO, "sealed %s (%llu bytes): tree %.3f s, sha256 read back %.3f s",
		       rel, (unsigned long long)s->size, tm->tree, tm->sha);
}

/*
 * Seals N, complete: trims its memory to its size, takes both digests from
 * the device, checks and signs the seal, audits it (a seal nobody could audit
 * is no seal: the load fails instead), publishes it. IO held exclusively.
 * Returns 0, -EIO (refused: a publisher's digest does not vouch for it; N
 * stays), or the error that made the load fail (N was removed).
 */
static int seal_now(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	res_io_held(n);

	struct vr_seal *s = calloc(1, sizeof(*s));
	char rel[VR_SEAL_PATH_MAX], why[VR_WHY_MAX], detail[2 * VR_WHY_MAX];
	struct seal_times tm;
	int ret = trim_to_size(r, n);

	if (ret == 0 && !s)
		ret = -ENOMEM;
	if (ret == 0)
		ret = take_digests(r, n, s, &tm);
	if (ret == 0) {
		ret = sign_in_place(r, n, s, rel, why, detail);
		if (ret == -EBADMSG || ret == -ENOKEY)
			return refuse_seal(r, n, s, rel, why, detail, ret == -ENOKEY, c);
		if (ret)
			vr_log(LOG_ERR, "signing the seal of %s failed: %s", rel, strerror(-ret));
	}
	if (ret == 0)
		ret = res_audit_must(r, "vram_sealed", rel, c, "ok", s->fsverity, NULL);
	if (ret) {
		free(s);
		res_load_failed(r, n, ret, c);
		return remove_failed(r, n, c);
	}
	publish_seal(r, n, s, rel, &tm);
	res_keep_sealed(r, n, rel); /* its memory outlives the daemon, when a keeper holds it */
	res_source_load(r, n, c);   /* a model.sig or SHA256SUMS now vouches for its directory */
	return 0;
}

/*
 * Settles N's load as it stands: seals it when complete (unless its seal
 * already describes these bytes), else marks it INCOMPLETE, saying why. A
 * failed load is removed. IO held exclusively. Returns 0 or the load's error.
 */
static int settle(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c)
{
	res_io_held(n);

	char rel[VR_SEAL_PATH_MAX];
	const char *why = n->abandoned ? "its import failed (the log says why)"
			  : n->killed  ? "its writer was killed by a signal"
				       : res_incomplete_reason(n);

	res_lock(r);
	enum file_state st = n->state;
	/*
	 * A resumed load is complete only once the resume added bytes (appended, or
	 * wrote what was never written); closed having only rewritten or cut what the
	 * stopped load wrote, or nothing at all (touch), its bytes are still that
	 * load's partial ones: incomplete, never sealed. Said only if it changed.
	 */
	bool added = res_written_total(n) > n->resume_base;
	bool no_progress = n->resuming && !added && !why && st == ST_WRITING;
	bool untouched = n->gen == n->resume_gen;

	if (n->resuming && added && !why)
		n->resuming = false; /* the resume is a load again, settled as one below */
	if (no_progress) {
		res_set_state(r, n, ST_INCOMPLETE);
		n->incomplete_why =
		    untouched && n->resume_why
			? n->resume_why
			: "its resumed load added no bytes to what the stopped load wrote";
		why = n->incomplete_why;
		res_node_path(n, rel, sizeof(rel));
		res_unlock(r);
		if (!untouched) {
			vr_log(LOG_WARNING, "load of %s is incomplete (%s): not sealed", rel, why);
			res_audit(r, "vram_load_incomplete", rel, c, "failed", NULL, why);
		}
		return 0;
	}
	bool now_incomplete =
	    why && st != ST_INCOMPLETE && st != ST_FAILED && st != ST_REMOVED && st != ST_REFUSED;

	if (now_incomplete) {
		res_set_state(r, n, ST_INCOMPLETE);
		res_node_path(n, rel, sizeof(rel));
	}
	if (why && (now_incomplete || st == ST_INCOMPLETE))
		n->incomplete_why = why;
	res_unlock(r);
	if (st == ST_FAILED)
		return remove_failed(r, n, c);
	if (st == ST_REMOVED)
		return n->load_err;
	if (now_incomplete) {
		vr_log(LOG_WARNING, "load of %s is incomplete (%s): not sealed", rel, why);
		res_audit(r, "vram_load_incomplete", rel, c, "failed", NULL, why);
		return 0;
	}
	/* INCOMPLETE: settled so, and nothing written since (a write makes it WRITING again) */
	if (why || (st == ST_SEALED && n->sealed_gen == n->gen) || st == ST_QUARANTINED ||
	    st == ST_REFUSED || st == ST_INCOMPLETE)
		return 0;
	return seal_now(r, n, c);
}

bool vr_res_handle_writes(const struct vr_handle *h)
{
	return h && h->node && h->writer;
}

bool vr_res_handle_sealed(struct vr_residency *r, const struct vr_handle *h, uint64_t *ino)
{
	const struct vr_node *n = h ? h->node : NULL;
	bool sealed;

	if (!n)
		return false;
	res_lock(r);
	sealed = n->state == ST_SEALED;
	if (ino)
		*ino = n->ino;
	res_unlock(r);
	return sealed;
}

int vr_res_flush(struct vr_residency *r, struct vr_handle *h, const struct vr_caller *c)
{
	struct vr_node *n = h->node;
	int ret = 0;

	if (!n || !h->writer)
		return 0;
	pthread_rwlock_wrlock(&n->io);
	if (c && c->abandoned && !n->killed) {
		n->killed = n->abandoned = true; /* the importer logs why */
	} else if (c && c->killed && !n->killed) {
		n->killed = true;
		vr_log(LOG_WARNING,
		       "a writer of %s (pid %d) was killed by a signal: the load is "
		       "incomplete and will not be sealed",
		       n->name, (int)c->pid);
	}
	res_lock(r);
	enum file_state st = n->state;
	bool sole = n->writers == 1;
	int load_err = n->load_err;

	res_unlock(r);
	/*
	 * The opener's close of the file's only description open for writing
	 * settles the load now (a killed closer's too), so the seal, or its
	 * error, is there when close() returns; release only confirms it. A
	 * duplicate's close by another process does nothing, and neither does the
	 * opener's close of a duplicate before anything was written (a shell's
	 * "> f", dd: open, dup2, close). A later write through a descriptor still
	 * open withdraws the seal (writable()). Where the front end can tell that
	 * the closing process still holds another descriptor open for writing
	 * (holds_more), the load goes on and that one's close settles it: a load
	 * is sealed once, when complete.
	 */
	bool opener = c && c->tgid && c->tgid == h->opener.tgid;
	bool before_writing = !h->dirty && n->size == 0 && st == ST_WRITING && !n->killed;
	/* the opener still writes through another descriptor: its last close settles */
	bool goes_on = c && c->holds_more && !n->killed;

	if (st == ST_FAILED)
		ret = remove_failed(r, n, c);
	else if (st == ST_REMOVED && load_err)
		ret = load_err; /* a later close of the same failed load */
	else if (sole && (opener || n->killed) && !before_writing && !goes_on)
		ret = settle(r, n, c);
	pthread_rwlock_unlock(&n->io);
	return ret;
}

/*
 * The writer's half of a release: the last writable description's release
 * settles the load if anything changed since (or removes a failed one).
 */
void res_release_writer(struct vr_residency *r, struct vr_handle *h)
{
	struct vr_node *n = h->node;
	int ret = 0;

	pthread_rwlock_wrlock(&n->io);
	res_lock(r);
	unsigned others = --n->writers;
	enum file_state st = n->state;

	res_unlock(r);
	if (st == ST_FAILED || (others == 0 && st != ST_REMOVED))
		ret = settle(r, n, &h->opener);
	if (ret)
		vr_log(LOG_ERR, "sealing %s at release failed: %s; it was removed", n->name,
		       strerror(-ret));
	pthread_rwlock_unlock(&n->io);
}
