/* test_res_import.c - the socket's import (import.c): who may create or replace a file, the
 * sticky-folder and fs.protected_regular rules, and the check made in the create's own hold. */
#include "res_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* Imports nothing into PATH as P (an empty file, sealed at the close); returns the open's
 * result. */
static int import_as(struct vr_residency *r, const char *path, const struct vr_peer *p)
{
	struct vr_caller c = {.uid = p->uid, .gid = p->gid, .pid = p->pid, .tgid = p->pid};
	struct vr_handle *h = NULL;
	int ret = vr_res_import_open(r, path, 0644, p, &c, &h);

	if (ret == 0) {
		CHECK_EQ(vr_res_flush(r, h, &c), 0);
		vr_res_release(r, h);
	}
	return ret;
}

/* A file PATH owned by UID with MODE, loaded by root. */
static void file_of(struct vr_residency *r, const char *path, uid_t uid, mode_t mode)
{
	CHECK_EQ(load(r, path, "x", 1), 0);
	CHECK_EQ(vr_res_chown(r, path, uid, uid), 0);
	CHECK_EQ(vr_res_chmod(r, path, mode), 0);
}

/* The sticky bit (only the file's owner, the folder's owner or root replace) and
 * fs.protected_regular (another user's file in a sticky folder others, or at level 2 the
 * group, may write: refused to everyone, root included), as the kernel orders them. */
static void sticky_rules(struct vr_residency *r)
{
	struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};
	struct vr_peer downer = {.uid = 300, .gid = 300, .pid = 6};

	vr_res_set_protected_regular(r, 0);
	CHECK_EQ(vr_res_mkdir(r, "/t", 01777, &me), 0);
	file_of(r, "/t/roots", 0, 0666);
	CHECK_EQ(import_as(r, "/t/roots", &other), -EPERM); /* writable, but sticky */
	CHECK_EQ(vr_res_may_load(r, "/t/roots", &other), -EPERM);
	CHECK_EQ(import_as(r, "/t/new", &other), 0); /* a new name: write on the folder */
	CHECK_EQ(import_as(r, "/t/new", &other), 0); /* its own file */
	CHECK_EQ(import_as(r, "/t/new", &root), 0);
	vr_res_set_protected_regular(r, 1);
	CHECK_EQ(import_as(r, "/t/roots", &other), -EPERM); /* the folder's owner's: sticky */
	file_of(r, "/t/others", 202, 0666);
	CHECK_EQ(import_as(r, "/t/others", &root), -EACCES);
	CHECK_EQ(import_as(r, "/t/new", &root), -EACCES); /* root too: another user's file */
	CHECK_EQ(import_as(r, "/t/new", &other), 0);
	vr_res_set_protected_regular(r, 7); /* clamped to 2 */
	/* a folder of user 300: its owner replaces others' files only where the rule allows */
	CHECK_EQ(vr_res_mkdir(r, "/u", 01775, &me), 0);
	CHECK_EQ(vr_res_chown(r, "/u", 300, 300), 0);
	file_of(r, "/u/f", 202, 0666);
	CHECK_EQ(import_as(r, "/u/f", &downer), -EACCES); /* level 2: group-writable */
	vr_res_set_protected_regular(r, 1);
	CHECK_EQ(import_as(r, "/u/f", &downer), 0); /* not world-writable: sticky allows it */
	CHECK_EQ(vr_res_chmod(r, "/u", 01777), 0);
	file_of(r, "/u/g", 202, 0666);
	CHECK_EQ(import_as(r, "/u/g", &downer), -EACCES);
	file_of(r, "/u/h", 300, 0666); /* the folder's owner's file: no rule refuses it */
	CHECK_EQ(import_as(r, "/u/h", &other), -EPERM); /* but sticky does */
	CHECK_EQ(import_as(r, "/u/h", &downer), 0);
	vr_res_set_protected_regular(r, -1); /* clamped to 0 */
	CHECK_EQ(import_as(r, "/u/g", &downer), 0);
	CHECK_EQ(import_as(r, "/u/g", &root), 0);
	/* without the sticky bit the file's own mode decides */
	CHECK_EQ(vr_res_mkdir(r, "/w", 0777, &me), 0);
	file_of(r, "/w/open", 0, 0666);
	file_of(r, "/w/closed", 0, 0644);
	CHECK_EQ(import_as(r, "/w/open", &other), 0);
	CHECK_EQ(import_as(r, "/w/closed", &other), -EACCES);
	CHECK_EQ(import_as(r, "/w", &other), -EISDIR);
	CHECK_EQ(import_as(r, "/status", &root), -EPERM); /* a generated entry */
	CHECK_EQ(vr_res_mkdir(r, "/w/shut", 0700, &me), 0);
	CHECK_EQ(import_as(r, "/w/shut/x", &other), -EACCES);
	CHECK_EQ(vr_res_mkdir(r, "/ro", 0755, &me), 0);
	CHECK_EQ(import_as(r, "/ro/x", &other), -EACCES); /* no write on the folder */
}

/*
 * The race the two-step import had: the name was free when the importer was checked, a
 * file of root's took it before the create, and the create's fallback open replaced it
 * with the importer's bytes. The check now runs again in the create's own hold.
 */
static void check_then_create(struct vr_residency *r)
{
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};

	vr_res_set_protected_regular(r, 0);
	CHECK_EQ(vr_res_may_load(r, "/t/late", &other), 0); /* free, and the folder writable */
	file_of(r, "/t/late", 0, 0666);			    /* root's file takes the name */
	CHECK_EQ(import_as(r, "/t/late", &other), -EPERM);
	char buf[8];
	size_t len = 0;

	CHECK_EQ(slurp(r, "/t/late", buf, sizeof(buf), &len), 0);
	CHECK(len == 1 && buf[0] == 'x'); /* root's bytes stay */
}

struct stage_try {
	struct vr_residency *r;
	struct vr_handle *h;
	struct vr_caller c;
	struct vr_res_stage *s;
	int ret; /* checked by the main thread once DONE (the checks' counters are its own) */
	atomic_int done;
};

static void *stage_opener(void *arg)
{
	struct stage_try *t = arg;

	t->ret = vr_res_stage_open(t->r, t->h, &t->c, &t->s);
	atomic_store(&t->done, 1);
	return NULL;
}

/* Waits up to MS milliseconds for T's open to return; whether it did. */
static bool opened_within(struct stage_try *t, int ms)
{
	for (int i = 0; i < ms / 10 && !atomic_load(&t->done); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	return atomic_load(&t->done);
}

/*
 * Stages held by loads, shared among users: with 8 stages a user holds 2 at
 * most, and a third of its loads waits for one of its own to end, while
 * another user's load (and root's) takes one at once.
 */
static void stage_shares(void)
{
	char vram[] = "/tmp/vr-stage-XXXXXX";
	struct vr_backend_opt o[] = {{"capacity", "32M"}, {"vram", vram}, {"staging", "64Kx2x8"}};
	struct vr_backend_params p = {.opts = o, .nopts = 3};
	struct vr_backend b;
	struct vr_residency *r;
	struct vr_handle *h[5];
	struct vr_res_stage *s[5] = {NULL};
	struct vr_caller a = {.uid = 1000, .gid = 1000, .pid = 2, .tgid = 2};
	struct vr_caller other = {.uid = 1001, .gid = 1001, .pid = 3, .tgid = 3};
	pthread_t th;

	CHECK(mkdtemp(vram) != NULL);
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	for (int i = 0; i < 5; i++) {
		char path[16];

		snprintf(path, sizeof(path), "/f%d", i);
		CHECK_EQ(vr_res_create(r, path, 0644, &me, &h[i]), 0);
	}
	CHECK_EQ(vr_res_stage_open(r, h[0], &a, &s[0]), 0);
	CHECK_EQ(vr_res_stage_open(r, h[1], &a, &s[1]), 0);
	struct stage_try t = {.r = r, .h = h[2], .c = a};

	CHECK_EQ(pthread_create(&th, NULL, stage_opener, &t), 0);
	CHECK(!opened_within(&t, 300));				/* the user's third waits */
	CHECK_EQ(vr_res_stage_open(r, h[3], &other, &s[3]), 0); /* another user's: at once */
	CHECK_EQ(vr_res_stage_open(r, h[4], &me, &s[4]), 0);	/* root's too */
	CHECK(!atomic_load(&t.done));
	CHECK_EQ(vr_res_stage_close(r, h[0], s[0], &a), 0); /* one of its own ends */
	CHECK(opened_within(&t, 5000));
	pthread_join(th, NULL);
	CHECK_EQ(t.ret, 0);
	s[0] = NULL;
	s[2] = t.s;
	for (int i = 0; i < 5; i++)
		CHECK_EQ(vr_res_stage_close(r, h[i], s[i], &me), 0);
	for (int i = 0; i < 5; i++)
		vr_res_release(r, h[i]);
	vr_res_free(r);
	vr_backend_close(&b);
	CHECK_EQ(rmdir(vram), 0);
}

int main(void)
{
	struct res_fixture fx;
	struct vr_residency *r;

	res_fixture_open(&fx, false);
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	sticky_rules(r);
	check_then_create(r);
	vr_res_free(r);
	stage_shares();
	res_fixture_close(&fx);
	return check_summary();
}
