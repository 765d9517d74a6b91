/* test_res_namespace.c - names in the tree (namespace.c, tree.c, vnames.c): generated names
 * agreeing at every level and listed or not, the namespace's edges, a large directory. */
#include "res_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

/* A listing's names and cookies, in order. */
struct cookies {
	char names[64][32];
	uint64_t cookie[64];
	int n;
};

static int note_cookie(void *ctx, const char *name, const struct vr_attr *a, uint64_t cookie)
{
	struct cookies *k = ctx;

	(void)a;
	if (k->n == 64)
		return 1;
	snprintf(k->names[k->n], sizeof(k->names[0]), "%s", name);
	k->cookie[k->n++] = cookie;
	return 0;
}

/*
 * A listing resumed after any entry's cookie gives exactly the entries after it, generated
 * ones included (list_generated), and one stopped by its caller resumes where it stopped.
 */
static void cookies_resume(struct vr_residency *r)
{
	static uint8_t bytes[100];
	struct cookies all = {0}, rest;
	struct vr_handle *h;
	char path[32];

	CHECK_EQ(vr_res_mkdir(r, "/c", 0755, &me), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/c/f%d", i);
		CHECK_EQ(load(r, path, bytes, sizeof(bytes)), 0);
	}
	CHECK_EQ(vr_res_mkdir(r, "/c/d", 0755, &me), 0);
	CHECK_EQ(vr_res_opendir(r, "/c", &h), 0);
	CHECK_EQ(vr_res_readdir_at(r, h, 0, note_cookie, &all), 0);
	CHECK(all.n >= 12); /* verify, 5 files and their seals, the folder */
	for (int i = 0; i < all.n; i++) {
		CHECK(all.cookie[i] > 2);
		memset(&rest, 0, sizeof(rest));
		CHECK_EQ(vr_res_readdir_at(r, h, all.cookie[i], note_cookie, &rest), 0);
		CHECK_EQ(rest.n, all.n - i - 1);
		for (int j = 0; j < rest.n && j + i + 1 < all.n; j++)
			CHECK(strcmp(rest.names[j], all.names[i + 1 + j]) == 0);
	}
	/* from "." and "..": everything */
	for (uint64_t off = 1; off <= 2; off++) {
		memset(&rest, 0, sizeof(rest));
		CHECK_EQ(vr_res_readdir_at(r, h, off, note_cookie, &rest), 0);
		CHECK_EQ(rest.n, all.n);
	}
	vr_res_release(r, h);
}

int main(void)
{
	static uint8_t data[3 << 20];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_attr a;
	struct vr_handle *h;

	res_fixture_open(&fx, true);
	res_pattern(data, sizeof(data));
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	generated_names_agree(r);
	cookies_resume(r);
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

	/* the namespace's edges, on a tree of its own */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	namespace_edges(r, data);
	vr_res_free(r);

	/* a large directory, on a tree of its own */
	fx.cfg.list_generated = true;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	many_names(r);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
