/* checks.c - checks shared while they run, and held to limits: a verify of one directory, or
 * one file's check (the socket's, or an open's with verify_on_open), taken by whoever asks
 * the same meanwhile; every caller, running one or waiting on one, holds a check slot of its
 * user's (VR_VERIFY_PER_UID a user, VR_RES_CHECKS_OTHERS for all users but root and the user
 * who mounted, who are not limited). */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A check while it runs: callers asking the same meanwhile wait for it and
 * take its result, rather than checking every file again (four `cat verify`
 * loops cost one check, and write one audit record per file, not four).
 */
struct res_verify_run {
	const struct vr_node *node; /* the directory a verify reports on, or the file checked */
	bool file;		    /* one file's check, not a directory's report */
	uid_t uid;		    /* who started it */
	gid_t gid;
	unsigned joiners; /* [T] waiting for the result, or still copying it */
	bool done;	  /* [T] */
	int ret, tail_err;
	char *text; /* [T] the report (a file check: its reason), kept for the joiners */
	size_t len;
	pthread_cond_t cond;
	struct res_verify_run *next; /* [T] r->runs */
};

enum slot_refusal { SLOT_TAKEN, SLOT_USER_FULL, SLOT_ALL_FULL };

/* Whether UID's checks are not limited: root's, and those of the user who mounted (a user's
 * own mount is theirs). [C] */
static bool unlimited(const struct vr_residency *r, uid_t uid)
{
	return uid == 0 || uid == r->cfg.root_uid;
}

/* Takes a check slot for UID, or says which limit refuses it; root and the user who mounted
 * are neither counted nor refused. [T] */
static enum slot_refusal slot_take(struct vr_residency *r, uid_t uid)
{
	struct res_check_slot *mine = NULL, *spare = NULL;

	res_held(r);
	if (unlimited(r, uid))
		return SLOT_TAKEN;
	for (size_t i = 0; i < VR_RES_CHECKS_OTHERS; i++) {
		struct res_check_slot *s = &r->slots[i];

		if (s->held && s->uid == uid)
			mine = s;
		else if (!s->held && !spare)
			spare = s;
	}
	if (mine && mine->held >= VR_VERIFY_PER_UID)
		return SLOT_USER_FULL;
	/* each entry in use holds one at least: below the cap, one is spare */
	if (r->slots_held >= VR_RES_CHECKS_OTHERS || (!mine && !spare))
		return SLOT_ALL_FULL;
	if (!mine) {
		mine = spare;
		mine->uid = uid;
	}
	mine->held++;
	r->slots_held++;
	return SLOT_TAKEN;
}

/* Gives back a slot slot_take took for UID. [T] */
static void slot_put(struct vr_residency *r, uid_t uid)
{
	res_held(r);
	for (size_t i = 0; !unlimited(r, uid) && i < VR_RES_CHECKS_OTHERS; i++)
		if (r->slots[i].held && r->slots[i].uid == uid) {
			r->slots[i].held--;
			r->slots_held--;
			return;
		}
}

unsigned vr_res_checks_held(struct vr_residency *r, uid_t uid)
{
	unsigned n = 0;

	res_lock(r);
	if (uid == (uid_t)-1)
		n = r->slots_held;
	for (size_t i = 0; uid != (uid_t)-1 && i < VR_RES_CHECKS_OTHERS; i++)
		if (r->slots[i].held && r->slots[i].uid == uid)
			n = r->slots[i].held;
	res_unlock(r);
	return n;
}

static void run_unlink(struct vr_residency *r, struct res_verify_run *run)
{
	for (struct res_verify_run **p = &r->runs; *p; p = &(*p)->next)
		if (*p == run) {
			*p = run->next;
			return;
		}
}

typedef int (*run_fn)(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		      char **text, size_t *len, int *tail_err);

/* What a caller asks of shared_run. */
struct run_req {
	struct vr_node *node;
	bool file;	  /* one file's check: shared by every user (a report is the caller's) */
	run_fn fn;	  /* what runs when none is running */
	const char *what; /* for the log: "verify", ... */
	char why[96];	  /* out: why it was refused (-EAGAIN) */
};

/* Waits for RUN, running, and takes its result (a copy of its report) as this caller's. [T] */
static int join_run(struct vr_residency *r, struct res_verify_run *run, char **text, size_t *len,
		    int *tail_err)
{
	res_held(r);

	int ret;

	run->joiners++;
	while (!run->done)
		res_wait(r, &run->cond);
	ret = run->ret;
	if (run->text && (ret == 0 || run->file)) { /* a failed verify has no report */
		*text = malloc(run->len + 1);
		if (*text) {
			memcpy(*text, run->text, run->len + 1);
			*len = run->len;
			*tail_err = run->tail_err;
		} else {
			ret = -ENOMEM;
		}
	}
	if (--run->joiners == 0) { /* the last joiner frees it */
		free(run->text);
		pthread_cond_destroy(&run->cond);
		free(run);
	}
	return ret;
}

/* Ends RUN, which returned RET and TEXT: hands its result to its joiners, if any. [T] */
static void run_end(struct vr_residency *r, struct res_verify_run *run, int ret, const char *text,
		    size_t len, int tail_err)
{
	res_held(r);
	run_unlink(r, run);
	run->done = true;
	run->ret = ret;
	if (run->joiners && text && (ret == 0 || run->file)) {
		run->text = malloc(len + 1);
		if (run->text) {
			memcpy(run->text, text, len + 1);
			run->len = len;
			run->tail_err = tail_err;
		} else {
			run->ret = -ENOMEM;
		}
	}
	if (run->joiners) {
		pthread_cond_broadcast(&run->cond); /* the last joiner frees it */
	} else {
		pthread_cond_destroy(&run->cond);
		free(run);
	}
}

/* Says in the log and in Q->why which limit refused UID's check Q. */
static void refused(struct run_req *q, uid_t uid, enum slot_refusal why)
{
	if (why == SLOT_USER_FULL) {
		vr_log(LOG_INFO,
		       "%s refused to uid %u: %u checks of theirs already run (the per-user limit)",
		       q->what, (unsigned)uid, VR_VERIFY_PER_UID);
		snprintf(q->why, sizeof(q->why),
			 "%d checks of this user's run already (the per-user limit)",
			 VR_VERIFY_PER_UID);
	} else {
		vr_log(LOG_INFO,
		       "%s refused to uid %u: %u checks of users other than root already run "
		       "(the limit for all of them)",
		       q->what, (unsigned)uid, VR_RES_CHECKS_OTHERS);
		snprintf(q->why, sizeof(q->why),
			 "%d checks of users other than root run already (the limit for all)",
			 VR_RES_CHECKS_OTHERS);
	}
}

/*
 * Runs Q over its node for C, shared: while one runs over it, others asking the same take its
 * result instead of running their own (one pass over the device, one audit record per file).
 * Every caller but root (and the user who mounted), running one or waiting on one, holds a
 * check slot meanwhile (it holds a thread of the front end): past VR_VERIFY_PER_UID of one
 * user's, or VR_RES_CHECKS_OTHERS of all, the check is refused with -EAGAIN at once, never
 * waiting. The result text, when there is one, is copied to every caller.
 */
static int shared_run(struct vr_residency *r, struct run_req *q, const struct vr_caller *c,
		      char **text, size_t *len, int *tail_err)
{
	struct res_verify_run *run;
	uid_t uid = c ? c->uid : 0;
	gid_t gid = c ? c->gid : 0;
	enum slot_refusal slot;
	int ret;

	*text = NULL;
	*len = 0;
	res_lock(r);
	slot = slot_take(r, uid);
	if (slot != SLOT_TAKEN) {
		res_unlock(r);
		refused(q, uid, slot);
		return -EAGAIN;
	}
	/* a report shows what its caller may read: shared by the same user and group alone */
	for (run = r->runs; run && (run->node != q->node || run->file != q->file ||
				    (!q->file && (run->uid != uid || run->gid != gid)));
	     run = run->next)
		;
	if (run) {
		ret = join_run(r, run, text, len, tail_err);
		slot_put(r, uid);
		res_unlock(r);
		return ret;
	}
	run = calloc(1, sizeof(*run));
	if (!run) {
		slot_put(r, uid);
		res_unlock(r);
		return -ENOMEM;
	}
	*run = (struct res_verify_run){.node = q->node, .file = q->file, .uid = uid, .gid = gid};
	pthread_cond_init(&run->cond, NULL);
	run->next = r->runs;
	r->runs = run;
	res_unlock(r);

	ret = q->fn(r, q->node, c, text, len, tail_err);

	res_lock(r);
	run_end(r, run, ret, *text, *len, *tail_err);
	slot_put(r, uid);
	res_unlock(r);
	return ret;
}

int res_verify_text(struct vr_residency *r, struct vr_node *dir, const struct vr_caller *c,
		    char **text, size_t *len, int *tail_err)
{
	struct run_req q = {.node = dir, .fn = res_run_verify, .what = "verify"};

	return shared_run(r, &q, c, text, len, tail_err);
}

/* One file's check, its reason as the text (NULL if it could not be copied). */
static int check_text(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		      bool at_open, char **text, size_t *len)
{
	char why[VR_WHY_MAX];
	int ret = res_check_node(r, n, c, at_open, why, sizeof(why));

	*text = strdup(why);
	*len = *text ? strlen(*text) : 0;
	return ret;
}

static int check_as_text(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
			 char **text, size_t *len, int *tail_err)
{
	(void)tail_err;
	return check_text(r, n, c, false, text, len);
}

static int check_at_open(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
			 char **text, size_t *len, int *tail_err)
{
	(void)tail_err;
	return check_text(r, n, c, true, text, len);
}

int res_check_shared(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		     char *why, size_t cap)
{
	struct run_req q = {.node = n, .file = true, .fn = check_as_text, .what = "a file check"};
	char *text;
	size_t len;
	int unused = 0;
	int ret = shared_run(r, &q, c, &text, &len, &unused);

	if (text)
		snprintf(why, cap, "%s", text);
	else if (q.why[0])
		snprintf(why, cap, "%s", q.why);
	else
		snprintf(why, cap, "%s", ret ? strerror(-ret) : "");
	free(text);
	return ret;
}

int res_check_open(struct vr_residency *r, struct vr_node *n, const char *path,
		   const struct vr_caller *c)
{
	char what[VR_SEAL_PATH_MAX + 32];
	struct run_req q = {.node = n, .file = true, .fn = check_at_open, .what = what};
	char *text;
	size_t len;
	int unused = 0, ret;

	snprintf(what, sizeof(what), "the check at open of %s", path);
	ret = shared_run(r, &q, c, &text, &len, &unused);
	free(text);
	return ret;
}
