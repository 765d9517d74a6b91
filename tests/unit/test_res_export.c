/* test_res_export.c - leases (export.c): who may map a sealed file through the socket, and
 * what is no whole sealed file is refused. */
#include "res_fixture.h"

#include <errno.h>

/* Leases PATH to P; returns vr_res_lease's result (ending a lease that was made). */
static int lease_as(struct vr_residency *r, const char *path, const struct vr_peer *p)
{
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;
	int ret = vr_res_lease(r, path, p, false, &l, &exp);

	if (ret == 0) {
		vr_dev_export_clear(&exp);
		vr_res_lease_end(r, l);
	}
	return ret;
}

/*
 * Who may map a sealed file through the socket: exactly who could open it for reading, by
 * its mode and every directory's search bit, as open(2) decides (owner, then the file's group
 * among the caller's primary and supplementary groups, then others; root always); and what
 * is no whole sealed file is refused with its errno.
 */
static void lease_permissions(struct vr_residency *r, const uint8_t *data)
{
	gid_t groups[] = {300, 77};
	struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_peer owner = {.uid = 100, .gid = 100, .pid = 2};
	struct vr_peer member = {.uid = 200, .gid = 77, .pid = 3};
	struct vr_peer supp = {.uid = 201, .gid = 201, .pid = 4, .groups = groups, .ngroups = 2};
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};
	struct vr_handle *h;

	CHECK_EQ(vr_res_mkdir(r, "/p", 0755, &me), 0);
	CHECK_EQ(load(r, "/p/m", data, 3000), 0);
	CHECK_EQ(vr_res_chown(r, "/p/m", 100, 77), 0);
	CHECK_EQ(vr_res_chmod(r, "/p/m", 0640), 0);
	CHECK_EQ(lease_as(r, "/p/m", &root), 0);
	CHECK_EQ(lease_as(r, "/p/m", &owner), 0);
	CHECK_EQ(lease_as(r, "/p/m", &member), 0);
	CHECK_EQ(lease_as(r, "/p/m", &supp), 0);
	CHECK_EQ(lease_as(r, "/p/m", &other), -EACCES);
	CHECK_EQ(vr_res_chmod(r, "/p/m", 0604), 0); /* others read, the group does not */
	CHECK_EQ(lease_as(r, "/p/m", &other), 0);
	CHECK_EQ(lease_as(r, "/p/m", &member), -EACCES);
	CHECK_EQ(vr_res_chmod(r, "/p/m", 0204), 0); /* the owner may not read it */
	CHECK_EQ(lease_as(r, "/p/m", &owner), -EACCES);
	CHECK_EQ(lease_as(r, "/p/m", &root), 0);
	CHECK_EQ(vr_res_chmod(r, "/p/m", 0644), 0);
	/* the folder: root's, group 77; others may not search it */
	CHECK_EQ(vr_res_chown(r, "/p", 0, 77), 0);
	CHECK_EQ(vr_res_chmod(r, "/p", 0750), 0);
	CHECK_EQ(lease_as(r, "/p/m", &other), -EACCES);
	CHECK_EQ(lease_as(r, "/p/m", &owner), -EACCES); /* the file's owner, but not the folder's */
	CHECK_EQ(lease_as(r, "/p/m", &member), 0);
	CHECK_EQ(lease_as(r, "/p/m", &supp), 0);
	/* no existence oracle below a folder it may not search: EACCES for every name, as
	 * open(2) answers, never ENOENT, ENOTDIR or EISDIR (issue 22, item 4) */
	CHECK_EQ(lease_as(r, "/p/none", &other), -EACCES);
	CHECK_EQ(lease_as(r, "/p/m/x", &other), -EACCES);
	CHECK_EQ(lease_as(r, "/p/none/x", &other), -EACCES);
	CHECK_EQ(lease_as(r, "/p/none", &member), -ENOENT); /* who may search learns it */
	CHECK_EQ(lease_as(r, "/p/m/x", &member), -ENOTDIR);
	/* nor through the import's permission check */
	CHECK_EQ(vr_res_may_load(r, "/p/none", &other), -EACCES);
	CHECK_EQ(vr_res_may_load(r, "/p/nodir/x", &other), -EACCES);
	CHECK_EQ(vr_res_may_load(r, "/p/m/x", &other), -EACCES);
	CHECK_EQ(vr_res_may_load(r, "/p/nodir/x", &member), -ENOENT);
	CHECK_EQ(vr_res_chmod(r, "/p", 0755), 0);
	/* what is not a whole sealed file */
	CHECK_EQ(lease_as(r, "/p", &root), -EISDIR);
	CHECK_EQ(lease_as(r, "/p/none", &root), -ENOENT);
	CHECK_EQ(lease_as(r, "/status", &root), -EINVAL);
	CHECK_EQ(lease_as(r, "/p/m.seal", &root), -EINVAL);
	CHECK_EQ(vr_res_symlink(r, "m", "/p/l", &me), 0);
	CHECK_EQ(lease_as(r, "/p/l", &root), -EINVAL);
	CHECK_EQ(vr_res_create(r, "/p/loading", 0644, &me, &h), 0);
	CHECK_EQ(vr_res_write(r, h, data, 100, 0, &me), 0);
	CHECK_EQ(lease_as(r, "/p/loading", &root), -EAGAIN);
	CHECK_EQ(vr_res_flush(r, h, &me), 0);
	vr_res_release(r, h);
	CHECK_EQ(lease_as(r, "/p/loading", &root), 0);
	CHECK_EQ(vr_res_unlink(r, "/p/loading", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/p/l", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/p/m", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/p", &me), 0);
}

int main(void)
{
	static uint8_t data[3 << 20];
	struct res_fixture fx;
	struct vr_residency *r;

	res_fixture_open(&fx, false);
	res_pattern(data, sizeof(data));

	/* who may map what through the socket, on a tree of its own */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	lease_permissions(r, data);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
