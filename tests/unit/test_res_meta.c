/* test_res_meta.c - each user's metadata (entries, link targets, user.* attributes) counted
 * against meta_limit: EDQUOT past it, freed with what is removed, root and the mount's owner
 * not limited (meta.c). */
#include "res_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 2, .tgid = 2};
static const struct vr_caller owner = {.uid = 4242, .gid = 4242, .pid = 3, .tgid = 3};

/* How many folders C can make in DIR before EDQUOT (at most MAX). */
static int fill(struct vr_residency *r, const char *dir, const struct vr_caller *c, int max)
{
	char path[64];
	int k = 0;

	for (; k < max; k++) {
		snprintf(path, sizeof(path), "%s/d%d", dir, k);
		int ret = vr_res_mkdir(r, path, 0755, c);

		if (ret == -EDQUOT)
			break;
		CHECK_EQ(ret, 0);
	}
	return k;
}

int main(void)
{
	static char value[3900];
	char target[2001];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_handle *h;

	res_fixture_open(&fx, false);
	fx.cfg.meta_limit = 8 << 10; /* eight entries of 1 KiB */
	fx.cfg.root_uid = owner.uid;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u", 0777, &me), 0);

	/* eight folders, then EDQUOT */
	CHECK_EQ(fill(r, "/u", &user, 100), 8);
	CHECK_EQ(vr_res_create(r, "/u/f", 0644, &user, &h), -EDQUOT);
	/* root and the mount's owner are not limited */
	CHECK_EQ(fill(r, "/u/d0", &me, 20), 20);
	CHECK_EQ(fill(r, "/u/d1", &owner, 20), 20);
	/* a removal gives its count back */
	CHECK_EQ(vr_res_rmdir(r, "/u/d7", &user), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u/d7", 0755, &user), 0);
	CHECK_EQ(vr_res_rmdir(r, "/u/d7", &user), 0);
	CHECK_EQ(vr_res_rmdir(r, "/u/d6", &user), 0);
	CHECK_EQ(vr_res_rmdir(r, "/u/d5", &user), 0);
	CHECK_EQ(vr_res_rmdir(r, "/u/d4", &user), 0);
	/* a file counts its seal too (about 10 KiB): more than the 4 KiB left */
	CHECK_EQ(vr_res_create(r, "/u/f", 0644, &user, &h), -EDQUOT);
	CHECK_EQ(vr_res_mkdir(r, "/u/d4", 0755, &user), 0);

	/* an attribute counts its name and value to the entry's creator, whoever sets it */
	CHECK_EQ(vr_res_rmdir(r, "/u/d4", &user), 0); /* 4 KiB free */
	CHECK_EQ(vr_res_setxattr(r, "/u/d2", "user.big", value, sizeof(value), 0), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u/x", 0755, &user), -EDQUOT);
	CHECK_EQ(vr_res_setxattr(r, "/u/d2", "user.more", value, 100, 0), -EDQUOT);
	/* a smaller value gives the difference back, a larger one is counted */
	CHECK_EQ(vr_res_setxattr(r, "/u/d2", "user.big", value, 10, 0), 0);
	CHECK_EQ(vr_res_setxattr(r, "/u/d2", "user.big", value, sizeof(value), 0), 0);
	CHECK_EQ(vr_res_setxattr(r, "/u/d2", "user.more", value, 100, 0), -EDQUOT);
	CHECK_EQ(vr_res_removexattr(r, "/u/d2", "user.big"), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u/x", 0755, &user), 0);
	/* root's folder is not the user's to fill with attributes of root's count */
	CHECK_EQ(vr_res_setxattr(r, "/u", "user.big", value, sizeof(value), 0), 0);
	/* a folder's attributes go with it */
	CHECK_EQ(vr_res_setxattr(r, "/u/x", "user.a", value, 2500, 0), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u/y", 0755, &user), -EDQUOT);
	CHECK_EQ(vr_res_rmdir(r, "/u/x", &user), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u/y", 0755, &user), 0);

	/* a link counts its target */
	CHECK_EQ(vr_res_rmdir(r, "/u/y", &user), 0);
	for (size_t i = 0; i + 1 < sizeof(target); i++)
		target[i] = i % 2 ? '/' : 'a'; /* 2,000 bytes: 1,024 + 2,001 counted */
	target[sizeof(target) - 1] = '\0';
	CHECK_EQ(vr_res_symlink(r, target, "/u/l1", &user), 0);
	CHECK_EQ(vr_res_symlink(r, target, "/u/l2", &user), -EDQUOT);
	CHECK_EQ(vr_res_symlink(r, "t", "/u/l2", &user), 0);
	CHECK_EQ(vr_res_unlink(r, "/u/l1", &user), 0);
	CHECK_EQ(vr_res_symlink(r, target, "/u/l1", &user), 0);
	/* status shows the limit and what every user's entries take */
	char *st;
	size_t len;

	CHECK_EQ(vr_res_status(r, &st, &len), 0);
	CHECK(strstr(st, "\"limit_per_user\":\t8192") != NULL);
	const char *meta = strstr(st, "\"metadata\":");

	CHECK(meta != NULL && strncmp(strstr(meta, "\"bytes\":"), "\"bytes\":\t0", 10) != 0);
	free(st);
	vr_res_free(r);

	/* files: as many as their entries and seals fit, a sealed one as a written one */
	fx.cfg.meta_limit = 64 << 10;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u", 0777, &me), 0);
	int files = 0;

	for (char path[32];; files++) {
		snprintf(path, sizeof(path), "/u/f%d", files);
		int ret = vr_res_create(r, path, 0644, &user, &h);

		if (ret) {
			CHECK_EQ(ret, -EDQUOT);
			break;
		}
		CHECK_EQ(vr_res_flush(r, h, &user), 0); /* sealed, empty */
		vr_res_release(r, h);
	}
	CHECK(files >= 5 && files <= 6); /* 64 KiB / (1 KiB + about 10 KiB) */
	vr_res_free(r);

	/* directory handles: 64 a user at once, root and the owner not limited, given back at
	 * release; and the counts of many users at once */
	fx.cfg.meta_limit = 0;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	struct vr_handle *dirs[65];

	for (int i = 0; i < 64; i++)
		CHECK_EQ(vr_res_opendir_as(r, "/", &user, &dirs[i]), 0);
	CHECK_EQ(vr_res_opendir_as(r, "/", &user, &dirs[64]), -EMFILE);
	CHECK_EQ(vr_res_opendir_as(r, "/", &me, &h), 0);
	vr_res_release(r, h);
	CHECK_EQ(vr_res_opendir_as(r, "/", &owner, &h), 0);
	vr_res_release(r, h);
	CHECK_EQ(vr_res_opendir(r, "/", &h), 0); /* no caller: not counted */
	vr_res_release(r, h);
	vr_res_release(r, dirs[0]);
	CHECK_EQ(vr_res_opendir_as(r, "/", &user, &dirs[0]), 0);
	for (int i = 0; i < 64; i++)
		vr_res_release(r, dirs[i]);
	CHECK_EQ(vr_res_mkdir(r, "/m", 0777, &me), 0);
	for (int u = 0; u < 20; u++) {
		struct vr_caller c = {.uid = 3000 + (uid_t)u, .gid = 3000, .pid = 9, .tgid = 9};
		char path[32];

		snprintf(path, sizeof(path), "/m/u%d", u);
		CHECK_EQ(vr_res_mkdir(r, path, 0755, &c), 0);
		CHECK_EQ(vr_res_rmdir(r, path, &c), 0);
	}
	vr_res_free(r);

	/* the default: 64 MiB */
	fx.cfg.meta_limit = 0;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	CHECK_EQ(vr_res_mkdir(r, "/u", 0777, &me), 0);
	CHECK_EQ(fill(r, "/u", &user, 70000), (int)(VR_META_LIMIT_DEFAULT / 1024));
	vr_res_free(r);
	res_fixture_close(&fx);
	return check_summary();
}
