/* verify.c - checking: the seal check of one file, quarantine, the verify run. */
#include "digest.h"
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/memops.h>

/* Result of re-checking one sealed file on the device. */
struct check {
	int ret; /* 0 ok, -EBADMSG mismatch or forged seal, other -errno: device error */
	const char *why;
	uint8_t fsv[VR_DIGEST_SIZE];	 /* the fs-verity digest: recomputed, else the seal's */
	uint8_t b3[VR_DIGEST_SIZE];	 /* the BLAKE3 recomputed, when B3_CHECKED */
	bool fsv_checked, b3_checked;	 /* which digests of the bytes were recomputed */
	char why_buf[VR_WHY_MAX];	 /* a reason copied from the node */
	char scope[VR_SEAL_PATH_MAX];	 /* ok but unexpected: the source that does not list it */
	bool oms_scope;			 /* ... and a signature's directory is above it */
	bool evicted;			 /* its bytes are in host memory: checked there (evict.c) */
	char disputed[VR_SEAL_PATH_MAX]; /* a source that may not vouch for it names other bytes */
};

/* Copies the node's reason into K (it may change once the tree lock is dropped). [T] */
static const char *node_why(struct check *k, const struct vr_node *n, const char *fallback)
{
	snprintf(k->why_buf, sizeof(k->why_buf), "%s", n->check_why ? n->check_why : fallback);
	return k->why_buf;
}

/*
 * The expected digests' side of a check of N, whose device bytes match its
 * seal: a source that names other bytes fails it (-EBADMSG); a refused
 * source fails it (-EACCES, not quarantined: the bytes are the loaded ones);
 * a source above that does not list it marks it unexpected. [T]
 */
static void check_expected(struct vr_node *n, struct check *k)
{
	struct res_expect e;
	const char *refusal = res_source_refusal(n);

	/* a seal made under sha256=off holds no SHA-256 to compare, nor every seal a BLAKE3
	 * (take_missing first) */
	res_expect_of_seal(n, n->seal, &e);
	if (e.mismatch) {
		k->ret = -EBADMSG;
		res_expect_why(&e, k->why_buf, sizeof(k->why_buf));
		k->why = k->why_buf;
	} else if (refusal) {
		k->ret = -EACCES;
		snprintf(k->why_buf, sizeof(k->why_buf), "%s", refusal);
		k->why = k->why_buf;
	} else if (res_expect_unexpected(n, &e)) {
		res_node_path(e.oms_scope ? e.oms_src : e.scope, k->scope, sizeof(k->scope));
		k->oms_scope = e.oms_scope;
	}
	if (!e.mismatch && e.disputed)
		res_node_path(e.disputed, k->disputed, sizeof(k->disputed));
}

/*
 * Checks N's bytes again against every source covering it that lists shards
 * or a BLAKE2b (its seal's digests cannot answer those), so verify compares
 * the listed digests with the bytes each time; check_expected then reads the
 * verdicts. IO held shared. Returns 0 or the -errno of the device read, WHY in
 * K.
 */
static int take_bytes(struct vr_residency *r, struct vr_node *n, struct check *k)
{
	int ret = res_bytes_settle(r, n, true);

	if (ret) {
		snprintf(k->why_buf, sizeof(k->why_buf),
			 "could not be checked against its source's shards: %s", strerror(-ret));
		k->why = k->why_buf;
		return ret == -EBADMSG ? -EIO : ret;
	}
	return 0;
}

/*
 * Named by a source that may vouch for it whose digest its seal lacks (a
 * SHA-256 under sha256=off, a BLAKE3: it was renamed there, or its owner
 * changed, after it was sealed): takes that digest of its device bytes now,
 * so the check below compares the listed digest with the bytes, and re-signs
 * the seal with it when they agree (a mismatch is then check_expected's). IO
 * held shared, as hash_unhashed() in expect.c. Returns 0 or the -errno of the
 * device read, WHY in K.
 */
static int take_missing(struct vr_residency *r, struct vr_node *n, struct check *k)
{
	struct res_expect e;
	uint8_t sha[VR_DIGEST_SIZE], b3[VR_DIGEST_SIZE];
	bool need_sha = false, need_b3 = false;
	int ret = 0;

	res_lock(r);
	if (n->state == ST_SEALED && n->seal) {
		res_expect_of_seal(n, n->seal, &e);
		need_sha = n->seal->no_sha256 && e.need_sha256;
		need_b3 = e.need_blake3;
	}
	res_unlock(r);
	if (!need_sha && !need_b3)
		return 0;
	if (need_sha)
		ret = vr_dev_sha256(n->dev, sha);
	if (ret == 0 && need_b3)
		ret = vr_dev_blake3(n->dev, b3);
	if (ret) {
		snprintf(k->why_buf, sizeof(k->why_buf),
			 "could not be checked against its source: the %s failed (%s)",
			 need_b3 ? "digest" : "SHA-256", strerror(-ret));
		k->why = k->why_buf;
		return ret == -EBADMSG ? -EIO : ret;
	}
	res_lock(r);
	if (n->state == ST_SEALED && n->seal &&
	    ((need_sha && n->seal->no_sha256) || (need_b3 && !n->seal->has_blake3))) {
		struct vr_seal t = *n->seal;

		if (need_sha) {
			memcpy(t.sha256, sha, sizeof(sha));
			t.no_sha256 = false;
		}
		if (need_b3) {
			memcpy(t.blake3, b3, sizeof(b3));
			t.has_blake3 = true;
		}
		/* agreeing: signed with it and the source; differing: check_expected fails it */
		ret = res_place_seal(r, n, &t, &e);
		if (ret == 0 || ret == -EBADMSG)
			*n->seal = t;
	}
	res_unlock(r);
	if (ret && ret != -EBADMSG) {
		snprintf(k->why_buf, sizeof(k->why_buf),
			 "could not be re-signed with its SHA-256 (%s)", strerror(-ret));
		k->why = k->why_buf;
		return ret;
	}
	return 0;
}

/* K's WHY and answer for a digest of N's bytes (WHAT) that could not be taken: ERR. */
static int digest_failed(struct check *k, int err, const char *what)
{
	if (k->evicted && err != -ENOMEM) {
		/* evicted: its host copy is the file, and it no longer reads whole */
		k->why = "its bytes in host memory (evicted) no longer read whole: changed or lost";
		return -EBADMSG;
	}
	/* could not check is not "differs": nothing is quarantined for it */
	snprintf(k->why_buf, sizeof(k->why_buf), "could not be checked: the %s failed (%s)", what,
		 strerror(-err));
	k->why = k->why_buf;
	return err == -EBADMSG ? -EIO : err;
}

/*
 * N's bytes against SEAL, recomputed where they live (device_digest=): the
 * fs-verity digest (fsverity, both, or a seal without a BLAKE3), and the
 * BLAKE3 when the seal records one. IO held shared. Returns 0, -EBADMSG
 * (differs: quarantined) or the -errno of a digest that could not be taken,
 * WHY in K.
 */
static int check_device(struct vr_residency *r, struct vr_node *n, const struct vr_seal *seal,
			struct check *k)
{
	unsigned dd = r->cfg.device_digest ? r->cfg.device_digest : VR_DEVICE_DIGEST_FSVERITY;
	int ret;

	k->fsv_checked = (dd & VR_DEVICE_DIGEST_FSVERITY) || !seal->has_blake3;
	memcpy(k->fsv, seal->fsverity, VR_DIGEST_SIZE);
	if (k->fsv_checked) {
		ret = vr_dev_fsverity(n->dev, k->fsv);
		if (ret)
			return digest_failed(k, ret, "device digest");
		if (!memeql_sec(k->fsv, seal->fsverity, VR_DIGEST_SIZE)) {
			k->why = k->evicted
				     ? "fs-verity digest of its bytes in host memory "
				       "(evicted) differs from the seal"
				     : "fs-verity digest of device memory differs from the seal";
			return -EBADMSG;
		}
	}
	if (!seal->has_blake3)
		return 0;
	ret = vr_dev_blake3(n->dev, k->b3);
	if (ret)
		return digest_failed(k, ret, "BLAKE3 of device memory");
	k->b3_checked = true;
	if (!memeql_sec(k->b3, seal->blake3, VR_DIGEST_SIZE)) {
		k->why = k->evicted ? "blake3 of its bytes in host memory (evicted) differs from "
				      "the seal"
				    : "blake3 of device memory differs from the seal";
		return -EBADMSG;
	}
	return 0;
}

/* Quarantines N after a failed check and audits it (fsync'd). */
static void quarantine(struct vr_residency *r, struct vr_node *n, const char *path,
		       const struct check *k, const struct vr_caller *c)
{
	res_lock(r);
	if (n->state == ST_SEALED) {
		res_set_state(r, n, ST_QUARANTINED);
		res_set_check_why(n, k->why);
	}
	res_unlock(r);
	vr_log(LOG_ERR, "seal check of %s FAILED: %s; file quarantined", path, k->why);
	res_audit(r, "seal_verification_failed", path, c, "failed", k->fsv, k->why);
}

/*
 * Counts check K of N, which took SECONDS, and audits it: a pass, unless at open (AT_OPEN)
 * with a pass at open audited since N was sealed or a check of it failed; a failure always,
 * quarantining N for a mismatch.
 */
static void check_done(struct vr_residency *r, struct vr_node *n, const char *path,
		       const struct vr_caller *c, bool at_open, const struct check *k,
		       double seconds)
{
	res_lock(r);
	res_count_check(r, k->ret, seconds);
	bool recorded = at_open && n->open_audited; /* nothing changed since the last pass */

	if (k->ret)
		n->open_audited = false;
	else if (at_open)
		n->open_audited = true;
	res_unlock(r);
	if (k->ret == 0) {
		if (!recorded)
			res_audit(r, "seal_verified", path, c, "ok", k->fsv, NULL);
	} else if (k->ret == -EACCES) {
		/* its bytes are the loaded ones; the source they state is what failed */
		res_audit(r, "seal_verification_failed", path, c, "failed", k->fsv, k->why);
	} else if (k->ret != -EBADMSG) {
		/* the check did not run: the file stays sealed, this check fails */
		vr_log(LOG_ERR, "seal check of %s: %s", path, k->why);
		res_audit(r, "seal_check_error", path, c, "failed", NULL, k->why);
	} else {
		quarantine(r, n, path, k, c);
	}
}

/*
 * Re-checks sealed file N: its seal's signature, then the fs-verity digest of
 * its bytes recomputed on the device against the seal's. Takes IO shared.
 * On failure quarantines and audits; a pass is audited too, but one at open (AT_OPEN) only
 * when no pass at open was since N was sealed or a check of it failed. The result comes back
 * in K.
 */
static void check_file(struct vr_residency *r, struct vr_node *n, const char *path,
		       const struct vr_caller *c, bool at_open, struct check *k)
{
	memset(k, 0, sizeof(*k));
	pthread_rwlock_rdlock(&n->io);
	res_lock(r);
	enum file_state st = n->state;
	struct vr_seal seal_copy;
	bool have_seal = n->seal != NULL;

	k->evicted = n->evicted;
	if (have_seal)
		seal_copy = *n->seal;
	res_unlock(r);
	if (st == ST_QUARANTINED || st == ST_REFUSED) {
		res_lock(r);
		k->why = node_why(k, n, "quarantined by an earlier failed check");
		res_unlock(r);
		k->ret = -EBADMSG;
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
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	k->ret = vr_seal_verify(&seal_copy, r->cfg.keys);
	if (k->ret) {
		k->why = "seal signature does not verify";
	} else if (strcmp(seal_copy.device.uuid, r->dev.uuid) != 0) {
		k->ret = -EBADMSG;
		k->why = "seal names another device";
	} else {
		if ((k->ret = check_device(r, n, &seal_copy, k)) == 0 &&
		    (k->ret = take_missing(r, n, k)) == 0 && (k->ret = take_bytes(r, n, k)) == 0) {
			res_lock(r);
			if (n->state == ST_SEALED && n->seal)
				check_expected(n, k);
			res_unlock(r);
		}
	}
	pthread_rwlock_unlock(&n->io);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	check_done(r, n, path, c, at_open, k,
		   (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

int res_check_node(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		   bool at_open, char *why, size_t cap)
{
	char path[VR_SEAL_PATH_MAX];
	struct check k;

	res_lock(r);
	if (res_node_path(n, path, sizeof(path)) != 0)
		snprintf(path, sizeof(path), "%s", n->name);
	res_unlock(r);
	check_file(r, n, path, c, at_open, &k);
	snprintf(why, cap, "%s", k.ret && k.why ? k.why : "");
	return k.ret;
}

/* The files below DIR, each referenced, with their paths. [T] */
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
	res_node_path(c, path, sizeof(path));
	char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	c->refs++;
	(*list)[(*count)++] = (struct pending_file){c, p};
	/* cppcheck-suppress memleak ; P is kept in the list, freed by res_verify_text */
	return 0;
}

static int collect(struct vr_node *n, struct pending_file **list, size_t *count, size_t *cap)
{
	for (struct vr_node *c = n->children; c; c = c->next) {
		int ret = 0;

		if (c->is_dir)
			ret = collect(c, list, count, cap);
		else if (!c->target && c->state != ST_FAILED && c->state != ST_REMOVED)
			ret = add_pending(c, list, count, cap); /* verify checks files, not links */
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

/* Orders lines "VERDICT path ..." by path (then verdict). */
static int by_line_path(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int c = strcmp(strchr(x, ' ') + 1, strchr(y, ' ') + 1);

	return c ? c : strcmp(x, y);
}

/* Sorts T's lines by path; returns 0 or -ENOMEM. */
static int sort_lines(struct vr_text *t)
{
	size_t n = 0, k = 0;
	char **lines, *out;

	for (size_t i = 0; i < t->len; i++)
		n += t->buf[i] == '\n';
	if (n < 2)
		return 0;
	lines = malloc(n * sizeof(*lines));
	out = malloc(t->len + 1);
	if (!lines || !out) {
		free(lines);
		free(out);
		return -ENOMEM;
	}
	for (char *p = t->buf; k < n; k++) {
		char *nl = strchr(p, '\n');

		*nl = '\0';
		lines[k] = p;
		p = nl + 1;
	}
	qsort(lines, n, sizeof(*lines), by_line_path);
	size_t len = 0;

	for (k = 0; k < n; k++) {
		size_t l = strlen(lines[k]);

		memcpy(out + len, lines[k], l);
		out[len + l] = '\n';
		len += l + 1;
	}
	out[len] = '\0';
	free(lines);
	free(t->buf);
	t->buf = out;
	t->cap = len + 1;
	return 0;
}

/*
 * Checks every file below directory DIR (referenced by the caller) and makes
 * the report, in path order: "OK path sha256:<fsverity>" (and " blake3:<BLAKE3>" where
 * that was recomputed, or the BLAKE3 alone under device_digest=blake3), "FAILED path why",
 * "PENDING path", "INCOMPLETE path why", and against the expected digests of
 * the sources covering DIR "MISSING path listed in <source>" and
 * "UNEXPECTED path not listed in <source>" (a failure under a signature).
 * *TAIL_ERR is -EIO when a file failed. Returns 0 or -errno.
 */
/*
 * Whether file N, being written, fails the report: it is a source (the files
 * it would cover are unchecked meanwhile), a source lists it, or a signature
 * covers its folder. Else a load in progress is only PENDING. [T]
 */
static bool pending_vouched(const struct vr_node *n)
{
	struct res_expect e;

	if (res_is_source_name(n->name))
		return true;
	res_expect_of(n, NULL, NULL, &e);
	return e.covered || e.need_blake3 || e.need_bytes || (e.oms_scope && !e.ignored);
}

/* Room for "sha256:<64 hex> blake3:<64 hex>". */
#define VR_CHECKED_MAX 144

/* What K recomputed, as the report shows it: "sha256:<fs-verity digest>" (fsverity digest's
 * form), "blake3:<BLAKE3>" (b3sum's), or both. */
static void checked_digests(const struct check *k, char out[VR_CHECKED_MAX])
{
	size_t at = 0;

	out[0] = 0;
	if (k->fsv_checked) {
		strcpy(out, "sha256:");
		vr_hex(k->fsv, VR_DIGEST_SIZE, out + 7);
		at = strlen(out);
	}
	if (k->b3_checked) {
		strcpy(out + at, at ? " blake3:" : "blake3:");
		at = strlen(out);
		vr_hex(k->b3, VR_DIGEST_SIZE, out + at);
	}
}

/* Checks file F (referenced) for the verify report: appends its line to T, counting a failure
 * in *FAILED. */
static void verify_line(struct vr_residency *r, const struct pending_file *f,
			const struct vr_caller *c, struct vr_text *t, unsigned *failed)
{
	char hex[VR_CHECKED_MAX], detail[VR_SEAL_PATH_MAX + VR_CHECKED_MAX + 64];
	struct vr_node *n = f->node;
	struct check k;

	res_lock(r);
	enum file_state st = n->state;
	const char *why = n->incomplete_why;
	bool vouched = st == ST_WRITING && pending_vouched(n);

	res_unlock(r);
	if (st == ST_WRITING) {
		/* unsealed: what a source names, or a source itself, is not verified yet */
		vr_text_line(t, "PENDING", f->path,
			     vouched ? "not sealed yet: a source names it, so the report fails"
				     : "");
		*failed += vouched;
		return;
	}
	if (st == ST_INCOMPLETE) {
		/* nothing vouches for a partial load: verify fails until it is resumed */
		(*failed)++;
		vr_text_line(t, "INCOMPLETE", f->path, why ? why : "");
		return;
	}
	if (st == ST_FAILED || st == ST_REMOVED)
		return;
	check_file(r, n, f->path, c, false, &k);
	if (k.ret == -ENOENT)
		return; /* removed since the list was made */
	if (k.ret == -EAGAIN) {
		vr_text_line(t, "PENDING", f->path, "");
	} else if (k.ret == 0 && k.scope[0]) {
		/* present, checked, but not part of what its directory's source lists */
		snprintf(detail, sizeof(detail), "not listed in %s%s", k.scope,
			 k.evicted ? "; evicted: checked in host memory" : "");
		vr_text_line(t, "UNEXPECTED", f->path, detail);
		*failed += k.oms_scope; /* unsigned files fail a signed model */
	} else if (k.ret == 0 && k.evicted) {
		/* not on the device: its bytes in host memory matched, and its restore checks
		 * them again on the device */
		checked_digests(&k, hex);
		snprintf(detail, sizeof(detail), "%s%s", hex,
			 " in host memory, checked there; restored at its next open");
		vr_text_line(t, "EVICTED", f->path, detail);
	} else if (k.ret == 0) {
		checked_digests(&k, hex);
		vr_text_line(t, "OK", f->path, hex);
	} else {
		(*failed)++;
		vr_text_line(t, "FAILED", f->path, k.why);
	}
	if (k.ret == 0 && k.disputed[0]) {
		/* reported, never acted on: the file stays as its owner loaded it */
		snprintf(detail, sizeof(detail),
			 "%s lists other bytes; its owner may not vouch for "
			 "this file, so it is not acted on",
			 k.disputed);
		vr_text_line(t, "DISPUTED", f->path, detail);
	}
}

/*
 * Drops from LIST the files P could not open for reading (search on every
 * directory above, read on the file), so a verify neither checks nor names
 * them; returns how many of them P could see listed in their folder. Without supplementary groups
 * (the front end does not pass them), a file readable only through one is dropped too: never more
 * than the caller may read. [T]
 */
static size_t drop_unreadable(struct vr_residency *r, struct pending_file *list, size_t *count,
			      const struct vr_peer *p)
{
	size_t kept = 0, n = *count;

	size_t shown = 0;

	res_held(r);
	for (size_t i = 0; i < n; i++) {
		const struct vr_node *f = list[i].node;

		if (res_may_read(f, p)) {
			list[kept++] = list[i];
			continue;
		}
		/* counted only where P could list it: no count of what lies where P cannot look */
		shown += res_may_read(f->parent, p);
		res_node_put(r, list[i].node);
		free(list[i].path);
	}
	*count = kept;
	return shown;
}

int res_run_verify(struct vr_residency *r, struct vr_node *dir, const struct vr_caller *c,
		   char **text, size_t *len, int *tail_err)
{
	struct pending_file *list = NULL;
	size_t count = 0, cap = 0;
	struct vr_peer p = {.uid = c ? c->uid : 0, .gid = c ? c->gid : 0};
	char dirpath[VR_SEAL_PATH_MAX], skip[64] = "";
	struct vr_text t = {0};
	unsigned failed = 0;
	size_t skipped = 0;
	int ret;

	res_lock(r);
	ret = collect(dir, &list, &count, &cap);
	if (ret == 0)
		skipped = drop_unreadable(r, list, &count, &p);
	if (ret == 0 && skipped && res_node_path(dir, dirpath, sizeof(dirpath)) == 0)
		snprintf(skip, sizeof(skip), "%zu files this user may not read, not checked",
			 skipped);
	res_unlock(r);
	if (ret == 0 && count > 1) /* qsort wants a non-NULL array even for none */
		qsort(list, count, sizeof(*list), by_path);
	for (size_t i = 0; ret == 0 && i < count; i++)
		verify_line(r, &list[i], c, &t, &failed);
	if (ret == 0) {
		/* links a shards or BLAKE2b statement lists: their targets' bytes hashed first */
		struct res_link_jobs links = {0};

		res_lock(r);
		res_expect_link_jobs(r, dir, &p, &links);
		res_unlock(r);
		res_link_jobs_run(r, &links);
		/* what the sources expect but is not there, and refused sources above */
		res_lock(r);
		res_expect_lines(r, dir, &p, &t, &failed);
		res_unlock(r);
		if (skip[0])
			vr_text_line(&t, "SKIPPED", dirpath[0] ? dirpath : ".", skip);
		ret = t.oom ? -ENOMEM : sort_lines(&t);
	}
	res_lock(r);
	for (size_t i = 0; i < count; i++) {
		res_node_put(r, list[i].node);
		free(list[i].path);
	}
	res_unlock(r);
	free(list);
	if (ret == 0 && !t.buf)
		t.buf = strdup("");
	if (ret == 0 && !t.buf)
		ret = -ENOMEM;
	if (ret) {
		free(t.buf);
		return ret;
	}
	*text = t.buf;
	*len = t.len;
	*tail_err = failed ? -EIO : 0;
	return 0;
}
