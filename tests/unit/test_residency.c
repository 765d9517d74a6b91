/* test_residency.c - the tree over the mock: loads, seals, refusals, tamper, rename, ENOSPC. */
#include "res_fixture.h"
#include "seal.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct listing {
	const char *want;
	bool seen;
};

static int find_name(void *ctx, const char *name, const struct vr_attr *a)
{
	struct listing *l = ctx;

	(void)a;
	if (strcmp(name, l->want) == 0)
		l->seen = true;
	return 0;
}

/*
 * stat, readdir, open and mkdir agree on every generated name at every level:
 * a name exists for all of them or for none, and mkdir says EEXIST exactly
 * when it exists. (mkdir d/status once said EEXIST while stat said ENOENT.)
 */
static void generated_names_agree(struct vr_residency *r)
{
	static const char *const dirs[] = {"", "/a", "/a/b"};
	static const char *const names[] = {"verify", "status", "f.seal",
					    "g.seal", "h.seal", ".seal"};
	struct vr_handle *g[3], *h;
	char path[128];
	static uint8_t bytes[5000];

	CHECK_EQ(vr_res_mkdir(r, "/a", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/a/b", 0755, &me), 0);
	for (int d = 0; d < 3; d++) {
		snprintf(path, sizeof(path), "%s/f", dirs[d]);
		CHECK_EQ(load(r, path, bytes, sizeof(bytes)), 0);
		snprintf(path, sizeof(path), "%s/g", dirs[d]); /* still being loaded: no seal */
		CHECK_EQ(vr_res_create(r, path, 0644, &me, &g[d]), 0);
	}
	for (int d = 0; d < 3; d++) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			struct vr_attr a;
			struct listing l = {names[i], false};

			snprintf(path, sizeof(path), "%s/%s", dirs[d], names[i]);
			bool st = vr_res_getattr(r, path, &a) == 0;
			bool op = vr_res_open(r, path, O_RDONLY, &me, &h) == 0;

			if (op)
				vr_res_release(r, h);
			CHECK_EQ(vr_res_opendir(r, d ? dirs[d] : "/", &h), 0);
			vr_res_readdir(r, h, find_name, &l);
			vr_res_release(r, h);
			int mk = vr_res_mkdir(r, path, 0755, &me);

			if (st != l.seen || st != op || st != (mk == -EEXIST))
				fprintf(stderr, "%s: stat %d, listed %d, open %d, mkdir %d\n", path,
					st, l.seen, op, mk);
			CHECK_EQ(st, l.seen);
			CHECK_EQ(st, op);
			CHECK_EQ(mk == -EEXIST, st);
			if (mk == 0) { /* an ordinary name here: it became a directory */
				CHECK_EQ(vr_res_getattr(r, path, &a), 0);
				CHECK_EQ(a.kind, VR_KIND_DIR);
				CHECK_EQ(vr_res_rmdir(r, path, &me), 0);
			}
			if (strcmp(names[i], "status") == 0)
				CHECK_EQ(st, d == 0);
			if (strcmp(names[i], "verify") == 0 || strcmp(names[i], "f.seal") == 0)
				CHECK(st);
		}
	}
	for (int d = 2; d >= 0; d--) {
		vr_res_release(r, g[d]);
		snprintf(path, sizeof(path), "%s/f", dirs[d]);
		CHECK_EQ(vr_res_unlink(r, path, &me), 0);
		snprintf(path, sizeof(path), "%s/g", dirs[d]);
		CHECK_EQ(vr_res_unlink(r, path, &me), 0);
	}
	CHECK_EQ(vr_res_rmdir(r, "/a/b", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/a", &me), 0);
}

static int count_entry(void *ctx, const char *name, const struct vr_attr *a)
{
	(void)name;
	(void)a;
	(*(int *)ctx)++;
	return 0;
}

/*
 * A directory past its index's growth points: every name found, renamed
 * within and across directories, removed, re-created, and the listing agrees
 * (the name index must follow every link, unlink and rename).
 */
static void many_names(struct vr_residency *r)
{
	const int n = 3000;
	struct vr_attr a;
	char p[64], q[64];
	int listed = 0, found = 0;

	CHECK_EQ(vr_res_mkdir(r, "/many", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/other", 0755, &me), 0);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/many/f%d", i);
		CHECK_EQ(load(r, p, "", 0), 0); /* empty: no device memory each */
	}
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/many/f%d", i);
		found += vr_res_getattr(r, p, &a) == 0;
	}
	CHECK_EQ(found, n);
	for (int i = 0; i < n; i += 3) { /* a third renamed within, a third moved out */
		snprintf(p, sizeof(p), "/many/f%d", i);
		snprintf(q, sizeof(q), "/many/g%d", i);
		CHECK_EQ(vr_res_rename(r, p, q, 0, &me), 0);
		snprintf(p, sizeof(p), "/many/f%d", i + 1);
		snprintf(q, sizeof(q), "/other/f%d", i + 1);
		if (i + 1 < n)
			CHECK_EQ(vr_res_rename(r, p, q, 0, &me), 0);
	}
	found = 0;
	for (int i = 0; i < n; i++) {
		int k = i % 3;

		snprintf(p, sizeof(p), "/many/%c%d", k == 0 ? 'g' : 'f', i);
		snprintf(q, sizeof(q), "/many/f%d", i);
		found += (k == 1 ? vr_res_getattr(r, q, &a) == -ENOENT
				 : vr_res_getattr(r, p, &a) == 0) &&
			 (k != 0 || vr_res_getattr(r, q, &a) == -ENOENT);
	}
	CHECK_EQ(found, n);
	for (int i = 2; i < n; i += 3) {
		snprintf(p, sizeof(p), "/many/f%d", i);
		CHECK_EQ(vr_res_unlink(r, p, &me), 0);
		CHECK_EQ(vr_res_getattr(r, p, &a), -ENOENT);
	}
	CHECK_EQ(load(r, "/many/f2", "", 0), 0); /* a removed name comes back */
	struct vr_handle *h;

	CHECK_EQ(vr_res_opendir(r, "/many", &h), 0);
	CHECK_EQ(vr_res_readdir(r, h, count_entry, &listed), 0);
	vr_res_release(r, h);
	/* g0, g3, ... (1000) and f2: generated entries are listed too (list_generated) */
	int files = 0;

	for (int i = 0; i < n; i += 3)
		files++;
	CHECK(listed >= files + 1);
	CHECK_EQ(vr_res_getattr(r, "/many/f2", &a), 0);
	CHECK_EQ(a.kind, VR_KIND_FILE);
	/* a directory's nlink counts its subdirectories through mkdir, rename and rmdir */
	CHECK_EQ(vr_res_mkdir(r, "/many/d1", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/many/d2", 0755, &me), 0);
	CHECK_EQ(vr_res_getattr(r, "/many", &a), 0);
	CHECK_EQ(a.nlink, 4);
	CHECK_EQ(vr_res_rename(r, "/many/d1", "/other/d1", 0, &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/many/d2", &me), 0);
	CHECK_EQ(vr_res_getattr(r, "/many", &a), 0);
	CHECK_EQ(a.nlink, 2);
	CHECK_EQ(vr_res_getattr(r, "/other", &a), 0);
	CHECK_EQ(a.nlink, 3);
}

/* The mock calls this at each digest: while the gate is shut, digests wait here, counted. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_shut;
static unsigned digests, waiting;

void vr_test_digest_hook(void);
void vr_test_digest_hook(void)
{
	pthread_mutex_lock(&gate_lock);
	digests++;
	waiting++;
	pthread_cond_broadcast(&gate_cond);
	while (gate_shut)
		pthread_cond_wait(&gate_cond, &gate_lock);
	waiting--;
	pthread_mutex_unlock(&gate_lock);
}

static void gate(bool shut)
{
	pthread_mutex_lock(&gate_lock);
	gate_shut = shut;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* Waits until N digests are held at the gate (MS milliseconds at most); returns whether they
 * are. */
static bool held_within(unsigned n, long ms)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&gate_lock);
	while (waiting < n && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
		;
	ok = waiting >= n;
	pthread_mutex_unlock(&gate_lock);
	return ok;
}

static bool held(unsigned n)
{
	return held_within(n, 5000);
}

struct opener {
	struct vr_residency *r;
	const char *path;
	struct vr_caller who;
	int ret;
	char text[4096];
	size_t len;
	pthread_t t;
};

static void *open_verify(void *arg)
{
	struct opener *o = arg;
	struct vr_handle *h;
	size_t got = 0;

	o->ret = vr_res_open(o->r, o->path, O_RDONLY, &o->who, &h);
	if (o->ret == 0) {
		vr_res_read(o->r, h, o->text, sizeof(o->text) - 1, 0, &got);
		vr_res_release(o->r, h);
	}
	o->text[got] = '\0';
	o->len = got;
	return NULL;
}

typedef void *(*check_fn)(void *);

/* TOP with directories a, b and c, a sealed file f of DATA in each. */
static void three_dirs(struct vr_residency *r, const char *top, const uint8_t *data, size_t n)
{
	char path[64];

	CHECK_EQ(vr_res_mkdir(r, top, 0755, &me), 0);
	for (const char *d = "abc"; *d; d++) {
		snprintf(path, sizeof(path), "%s/%c", top, *d);
		CHECK_EQ(vr_res_mkdir(r, path, 0755, &me), 0);
		snprintf(path, sizeof(path), "%s/%c/f", top, *d);
		CHECK_EQ(load(r, path, data, n), 0);
	}
}

/* A and B check at once through FN: B joins A's check, so one digest reaches the device. */
static void one_digest_for_two(struct opener *a, struct opener *b, check_fn fn)
{
	pthread_mutex_lock(&gate_lock);
	digests = 0;
	pthread_mutex_unlock(&gate_lock);
	gate(true);
	pthread_create(&a->t, NULL, fn, a);
	CHECK(held(1));
	pthread_create(&b->t, NULL, fn, b);
	/* were B to run its own check, a second digest would reach the gate */
	CHECK(!held_within(2, 300));
	gate(false);
	pthread_join(a->t, NULL);
	pthread_join(b->t, NULL);
	CHECK_EQ(a->ret, 0);
	CHECK_EQ(b->ret, 0);
	pthread_mutex_lock(&gate_lock);
	CHECK_EQ(digests, 1);
	pthread_mutex_unlock(&gate_lock);
}

/* The per-user limit: U1 (through FN1) and U2 (FN2) running, U3 (FN) is refused at once,
 * ROOT (FN) let through; U3 passes once the others ended. */
static void user_limit(struct opener *u1, check_fn fn1, struct opener *u2, check_fn fn2,
		       struct opener *u3, struct opener *root, check_fn fn)
{
	gate(true);
	pthread_create(&u1->t, NULL, fn1, u1);
	pthread_create(&u2->t, NULL, fn2, u2);
	CHECK(held(2));
	fn(u3);
	CHECK_EQ(u3->ret, -EAGAIN);
	pthread_create(&root->t, NULL, fn, root);
	CHECK(held(3));
	gate(false);
	pthread_join(u1->t, NULL);
	pthread_join(u2->t, NULL);
	pthread_join(root->t, NULL);
	CHECK_EQ(u1->ret, 0);
	CHECK_EQ(u2->ret, 0);
	CHECK_EQ(root->ret, 0);
	fn(u3);
	CHECK_EQ(u3->ret, 0);
}

/*
 * Concurrent opens of one verify share one check (the second waits for the
 * first's report: one digest, not two); a user other than root runs at most
 * VR_VERIFY_PER_UID verifies at once, and the next is refused; root is not
 * limited.
 */
static void shared_verify(struct vr_residency *r)
{
	static const uint8_t data[9000] = {1, 2, 3};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 77, .tgid = 77};
	struct opener a = {.r = r, .path = "/sv/a/verify", .who = me};
	struct opener b = {.r = r, .path = "/sv/a/verify", .who = me};
	struct opener u1 = {.r = r, .path = "/sv/a/verify", .who = user};
	struct opener u2 = {.r = r, .path = "/sv/b/verify", .who = user};
	struct opener u3 = {.r = r, .path = "/sv/c/verify", .who = user};
	struct opener root = {.r = r, .path = "/sv/c/verify", .who = me};

	three_dirs(r, "/sv", data, sizeof(data));
	one_digest_for_two(&a, &b, open_verify);
	CHECK(a.len > 0 && a.len == b.len && strcmp(a.text, b.text) == 0);
	CHECK(strstr(a.text, "OK sv/a/f sha256:") != NULL);

	/* the per-user limit: two running, the third refused at once, root let through */
	pthread_mutex_lock(&gate_lock);
	digests = 0;
	pthread_mutex_unlock(&gate_lock);
	user_limit(&u1, open_verify, &u2, open_verify, &u3, &root, open_verify);
}

/* A chunk file in the mock's directory DIR whose bytes start with HEAD[0..16), opened for
 * writing as an attacker with access to device memory would; -1 if none. */
static int open_chunk_starting(const char *dir, const uint8_t *head)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = -1;

	while (d && found < 0 && (e = readdir(d)) != NULL) {
		char path[512];
		uint8_t got[16];
		int fd;

		if (strncmp(e->d_name, "chunk-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fd = open(path, O_RDWR);
		if (fd >= 0 && pread(fd, got, 16, 0) == 16 && memcmp(got, head, 16) == 0)
			found = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * The namespace's answers where POSIX names one: rename and rmdir across kinds, the root,
 * flags; symbolic links that could lead outside the mount; readlink of what is no link;
 * extended attributes' create and replace flags, names and sizes; chown and utimens that
 * leave a field as it is.
 */
static void namespace_edges(struct vr_residency *r, const uint8_t *data)
{
	char buf[64];
	size_t len;
	struct vr_attr a, b;
	struct timespec keep[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

	CHECK_EQ(vr_res_mkdir(r, "/ne", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/ne/d", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/ne/full", 0755, &me), 0);
	CHECK_EQ(load(r, "/ne/full/x", data, 10), 0);
	CHECK_EQ(load(r, "/ne/f", data, 100), 0);
	CHECK_EQ(load(r, "/ne/g", data, 200), 0);
	/* rename across kinds, and what cannot move */
	CHECK_EQ(vr_res_rename(r, "/ne/d", "/ne/f", 0, &me), -ENOTDIR);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/d", 0, &me), -EISDIR);
	CHECK_EQ(vr_res_rename(r, "/ne/d", "/ne/full", 0, &me), -ENOTEMPTY);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/g", RENAME_NOREPLACE, &me), -EEXIST);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/h", 1u << 7, &me), -EINVAL);
	CHECK_EQ(vr_res_rename(r, "/", "/ne/root", 0, &me), -EBUSY);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/nowhere/f", 0, &me), -ENOENT);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/f", 0, &me), 0); /* itself: nothing to do */
	CHECK_EQ(vr_res_rename(r, "/ne/f.seal", "/ne/s", 0, &me), -EPERM);
	CHECK_EQ(vr_res_rename(r, "/ne/f", "/ne/g", 0, &me), 0); /* over a file: it goes */
	CHECK_EQ(vr_res_getattr(r, "/ne/g", &a), 0);
	CHECK_EQ(a.size, 100);
	CHECK_EQ(vr_res_rename(r, "/ne/d", "/ne/full/x/in", 0, &me), -ENOTDIR);
	CHECK_EQ(vr_res_mkdir(r, "/ne/empty", 0755, &me), 0);
	CHECK_EQ(vr_res_rename(r, "/ne/d", "/ne/empty", 0, &me), 0); /* over an empty folder */
	/* rmdir of what is no folder */
	CHECK_EQ(vr_res_rmdir(r, "/ne/g", &me), -ENOTDIR);
	CHECK_EQ(vr_res_rmdir(r, "/ne/g.seal", &me), -EPERM);
	CHECK_EQ(vr_res_rmdir(r, "/", &me), -EBUSY);
	CHECK_EQ(vr_res_unlink(r, "/ne/empty", &me), -EISDIR);
	/* symbolic links stay inside the mount */
	CHECK_EQ(vr_res_symlink(r, "", "/ne/l0", &me), -EPERM);
	CHECK_EQ(vr_res_symlink(r, "/etc/passwd", "/ne/l1", &me), -EPERM);
	CHECK_EQ(vr_res_symlink(r, "../../x", "/ne/l2", &me), -EPERM);
	CHECK_EQ(vr_res_symlink(r, "full/../../../x", "/ne/l3", &me), -EPERM);
	CHECK_EQ(vr_res_symlink(r, "../ne/./full//x", "/ne/l4", &me), 0);
	CHECK_EQ(vr_res_readlink(r, "/ne/l4", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "../ne/./full//x");
	CHECK_EQ(vr_res_readlink(r, "/ne/l4", buf, 4), 0); /* cut, as readlink(2) */
	CHECK_EQ(memcmp(buf, "../", 3), 0);
	CHECK_EQ(vr_res_readlink(r, "/ne/g", buf, sizeof(buf)), -EINVAL);
	/* extended attributes */
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.a", "1", 1, 2 /* XATTR_REPLACE */), -ENODATA);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.a", "1", 1, 1 /* XATTR_CREATE */), 0);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.a", "2", 1, 1 /* XATTR_CREATE */), -EEXIST);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.a", "22", 2, 2 /* XATTR_REPLACE */), 0);
	CHECK_EQ(vr_res_getxattr(r, "/ne/g", "user.a", buf, 1, &len), -ERANGE);
	CHECK_EQ(vr_res_getxattr(r, "/ne/g", "user.a", buf, sizeof(buf), &len), 0);
	CHECK(len == 2 && memcmp(buf, "22", 2) == 0);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.", "1", 1, 0), -ERANGE);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "trusted.a", "1", 1, 0), -EOPNOTSUPP);
	/* other namespaces are unsupported, not empty: ls and cp stop asking per file */
	CHECK_EQ(vr_res_getxattr(r, "/ne/g", "security.selinux", buf, sizeof(buf), &len),
		 -EOPNOTSUPP);
	CHECK_EQ(vr_res_getxattr(r, "/ne/g", "system.posix_acl_access", buf, 0, &len), -EOPNOTSUPP);
	CHECK_EQ(vr_res_removexattr(r, "/ne/g", "system.posix_acl_default"), -EOPNOTSUPP);
	CHECK_EQ(vr_res_setxattr(r, "/ne/g", "user.e", NULL, 0, 0), 0); /* an empty value */
	CHECK_EQ(vr_res_getxattr(r, "/ne/g", "user.e", buf, 0, &len), 0);
	CHECK_EQ(len, 0);
	/* generated entries and links hold none */
	CHECK_EQ(vr_res_setxattr(r, "/ne/g.seal", "user.a", "1", 1, 0), -EOPNOTSUPP);
	CHECK_EQ(vr_res_setxattr(r, "/ne/l4", "user.a", "1", 1, 0), -EPERM); /* as Linux says */
	CHECK_EQ(vr_res_removexattr(r, "/ne/g", "user.none"), -ENODATA);
	/* chown with -1 and utimens with UTIME_OMIT leave the field */
	CHECK_EQ(vr_res_chown(r, "/ne/g", 5, 6), 0);
	CHECK_EQ(vr_res_chown(r, "/ne/g", (uid_t)-1, 7), 0);
	CHECK_EQ(vr_res_getattr(r, "/ne/g", &a), 0);
	CHECK(a.uid == 5 && a.gid == 7);
	CHECK_EQ(vr_res_chown(r, "/ne/g", 8, (gid_t)-1), 0);
	CHECK_EQ(vr_res_getattr(r, "/ne/g", &a), 0);
	CHECK(a.uid == 8 && a.gid == 7);
	CHECK_EQ(vr_res_utimens(r, "/ne/g", keep), 0);
	CHECK_EQ(vr_res_getattr(r, "/ne/g", &b), 0);
	CHECK(a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec);
	CHECK_EQ(vr_res_utimens(r, "/ne/g", NULL), 0); /* now */
	CHECK_EQ(vr_res_chmod(r, "/ne/g.seal", 0600), -EPERM);
	/* through an open handle, after the name is gone */
	struct vr_handle *h, *t;

	CHECK_EQ(vr_res_open(r, "/ne/g", O_RDONLY, &me, &h), 0);
	CHECK_EQ(vr_res_open(r, "/ne/g.seal", O_RDONLY, &me, &t), 0);
	CHECK_EQ(vr_res_unlink(r, "/ne/g", &me), 0);
	CHECK_EQ(vr_res_fchmod(r, h, 0640), 0);
	CHECK_EQ(vr_res_fchown(r, h, 9, (gid_t)-1), 0);
	CHECK_EQ(vr_res_futimens(r, h, keep), 0);
	CHECK_EQ(vr_res_fgetattr(r, h, &b), 0);
	CHECK(b.nlink == 0 && (b.mode & 07777) == 0640 && b.uid == 9 && b.gid == 7);
	CHECK_EQ(vr_res_futimens(r, h, NULL), 0);
	CHECK_EQ(vr_res_fchmod(r, t, 0600), -EPERM); /* a seal's text, as by its path */
	vr_res_release(r, t);
	vr_res_release(r, h);
}

/* A map through the socket with the on-device check first, as O->who. */
static void *lease_verify(void *arg)
{
	struct opener *o = arg;
	struct vr_peer p = {.uid = o->who.uid, .gid = o->who.gid, .pid = o->who.pid};
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;

	o->ret = vr_res_lease(o->r, o->path, &p, true, &l, &exp);
	if (o->ret == 0) {
		vr_dev_export_clear(&exp);
		vr_res_lease_end(o->r, l);
	}
	return NULL;
}

/*
 * The socket's checks (map with verify) are shared and limited as verify is: two of one
 * file run one digest; a user's verifies and file checks together are held to
 * VR_VERIFY_PER_UID, the next refused at once with EAGAIN; root is not limited.
 */
static void shared_lease_checks(struct vr_residency *r)
{
	static const uint8_t data[9000] = {4, 5, 6};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 78, .tgid = 78};
	struct opener a = {.r = r, .path = "/sl/a/f", .who = user};
	struct opener b = {.r = r, .path = "/sl/a/f", .who = me};
	struct opener u1 = {.r = r, .path = "/sl/a/verify", .who = user};
	struct opener u2 = {.r = r, .path = "/sl/b/f", .who = user};
	struct opener u3 = {.r = r, .path = "/sl/c/f", .who = user};
	struct opener root = {.r = r, .path = "/sl/c/f", .who = me};

	three_dirs(r, "/sl", data, sizeof(data));
	one_digest_for_two(&a, &b, lease_verify);

	/* a verify and a file check of the user's running: the next check is refused at once */
	user_limit(&u1, open_verify, &u2, lease_verify, &u3, &root, lease_verify);
}

int main(void)
{
	char text[65536];
	static uint8_t data[3 << 20];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_statfs sf;
	struct vr_attr a;
	struct vr_seal seal;
	struct vr_handle *h;
	size_t len;
	int fd;

	res_fixture_open(&fx, true);
	res_pattern(data, sizeof(data));
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);

	/* verify of an empty tree: an empty report, no failure */
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), 0);
	CHECK_EQ(len, 0);

	/* a sealed file in a folder to verify beside the one loaded next */
	CHECK_EQ(vr_res_mkdir(r, "/llama", 0755, &me), 0);
	CHECK_EQ(load(r, "/llama/w.bin", data, sizeof(data)), 0);
	static char back[3 << 20];

	/* verify report and tamper detection through the mock's backing file */
	CHECK_EQ(load(r, "/other.bin", data, 5000), 0);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), 0);
	text[len] = '\0';
	CHECK(strstr(text, "OK llama/w.bin sha256:") != NULL);
	CHECK(strstr(text, "OK other.bin sha256:") != NULL);
	/* a chunk (a file in the mock's directory) starting with data[0..16): w.bin's or
	 * other.bin's (both start so) */
	fd = open_chunk_starting(fx.vram, data);
	CHECK(fd >= 0);
	uint8_t byte;

	CHECK_EQ(pread(fd, &byte, 1, 4242), 1);
	byte ^= 0x40;
	CHECK_EQ(pwrite(fd, &byte, 1, 4242), 1);
	close(fd);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), -EIO);
	text[len] = '\0';
	int failed =
	    strstr(text, "FAILED llama/w.bin") != NULL || strstr(text, "FAILED other.bin") != NULL;

	CHECK(failed);
	CHECK_EQ(slurp(r, "/llama/w.bin", back, sizeof(back), &len) == -EIO ||
		     slurp(r, "/other.bin", back, sizeof(back), &len) == -EIO,
		 1);
	CHECK_EQ(vr_res_status(r, (char **)&h, &len), 0);
	CHECK(strstr((char *)h, "\"quarantined\":\t1") != NULL);
	free(h);

	/* rename re-signs; rm frees */
	CHECK_EQ(vr_res_rename(r, "/other.bin", "/llama/moved.bin", 0, &me), 0);
	if (slurp(r, "/llama/moved.bin.seal", text, sizeof(text), &len) == 0) {
		CHECK_EQ(vr_seal_parse(text, len, &seal, NULL), 0);
		CHECK_STR(seal.path, "llama/moved.bin");
		CHECK_EQ(vr_seal_verify(&seal, keys), 0);
	}
	CHECK_EQ(vr_res_rename(r, "/llama", "/llama/sub", 0, &me), -EINVAL);
	CHECK_EQ(vr_res_rename(r, "/llama/moved.bin", "/llama/w.bin", 1 /* NOREPLACE */, &me),
		 -EEXIST);
	CHECK_EQ(vr_res_rmdir(r, "/llama", &me), -ENOTEMPTY);
	CHECK_EQ(vr_res_unlink(r, "/llama/moved.bin", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/llama/w.bin", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/llama", &me), 0);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.free_bytes, 32 << 20);
	CHECK_EQ(sf.files, 0);

	generated_names_agree(r);
	vr_res_free(r);

	/* by default the generated entries are reachable by name but not listed */
	fx.cfg.list_generated = false;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	CHECK_EQ(load(r, "/f", data, 5000), 0);
	struct listing ls[] = {
	    {"f", false}, {"f.seal", false}, {"verify", false}, {"status", false}};

	CHECK_EQ(vr_res_opendir(r, "/", &h), 0);
	for (int i = 0; i < 4; i++)
		vr_res_readdir(r, h, find_name, &ls[i]);
	vr_res_release(r, h);
	CHECK(ls[0].seen);
	CHECK(!ls[1].seen && !ls[2].seen && !ls[3].seen);
	CHECK_EQ(vr_res_getattr(r, "/f.seal", &a), 0);
	CHECK_EQ(vr_res_getattr(r, "/verify", &a), 0);
	CHECK_EQ(vr_res_getattr(r, "/status", &a), 0);
	vr_res_free(r);

	/* verify runs shared, and limited per user, on a tree of its own */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	shared_verify(r);
	vr_res_free(r);
	/* the namespace's edges, on a tree of its own */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	namespace_edges(r, data);
	vr_res_free(r);
	/* and the socket's checks with them */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	shared_lease_checks(r);
	vr_res_free(r);

	/* a large directory, on a tree of its own */
	fx.cfg.list_generated = true;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	many_names(r);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
