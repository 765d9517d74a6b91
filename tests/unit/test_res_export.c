/* test_res_export.c - leases (export.c): who may map a sealed file through the socket, and
 * what is no whole sealed file is refused. */
#include "res_fixture.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

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

/*
 * Revoke: the file's owner or root ends every lease on it, whoever holds them; each holder's
 * next call on its lease answers ESTALE, and the file may be removed meanwhile. Others are
 * refused (EPERM), and a name below a folder the caller may not search is EACCES.
 */
static void revoke_leases(struct vr_residency *r, const uint8_t *data)
{
	struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_peer owner = {.uid = 100, .gid = 100, .pid = 2};
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};
	struct vr_dev_export e1 = {0}, e2 = {0};
	struct vr_lease *l1 = NULL, *l2 = NULL;
	unsigned ended = 9;
	char why[256];

	CHECK_EQ(vr_res_mkdir(r, "/q", 0755, &me), 0);
	CHECK_EQ(load(r, "/q/m", data, 3000), 0);
	CHECK_EQ(vr_res_chown(r, "/q/m", 100, 100), 0);
	CHECK_EQ(vr_res_lease(r, "/q/m", &other, false, &l1, &e1), 0);
	CHECK_EQ(vr_res_lease(r, "/q/m", &root, false, &l2, &e2), 0);
	vr_dev_export_clear(&e1);
	vr_dev_export_clear(&e2);
	CHECK_EQ(vr_res_unlink(r, "/q/m", &me), -EBUSY);
	CHECK_EQ(vr_res_revoke(r, "/q/m", &other, &ended), -EPERM);
	CHECK_EQ(vr_res_revoke(r, "/q/none", &owner, &ended), -ENOENT);
	CHECK_EQ(vr_res_revoke(r, "/q", &root, &ended), -EISDIR);
	CHECK_EQ(vr_res_revoke(r, "/status", &root, &ended), -EINVAL);
	CHECK_EQ(vr_res_chmod(r, "/q", 0700), 0);
	CHECK_EQ(vr_res_revoke(r, "/q/m", &owner, &ended), -EACCES); /* may not search /q */
	CHECK_EQ(vr_res_chmod(r, "/q", 0755), 0);
	CHECK_EQ(ended, 9u); /* untouched by refusals */
	CHECK_EQ(vr_res_lease_verify(r, l1, why, sizeof(why)), 0);
	CHECK_EQ(vr_res_revoke(r, "/q/m", &owner, &ended), 0);
	CHECK_EQ(ended, 2u);
	/* until it is removed or replaced, no other reader re-pins it; its owner and root may */
	CHECK_EQ(lease_as(r, "/q/m", &other), -EAGAIN);
	CHECK_EQ(lease_as(r, "/q/m", &owner), 0);
	CHECK_EQ(lease_as(r, "/q/m", &root), 0);
	CHECK_EQ(vr_res_lease_verify(r, l1, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_unlink(r, "/q/m", &me), 0); /* no longer blocked */
	CHECK_EQ(vr_res_lease_verify(r, l2, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_lease_release(r, l1, false, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_lease_release(r, l2, true, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_lease_release(r, NULL, false, why, sizeof(why)), 0);
	CHECK_EQ(vr_res_revoke(r, "/q/m", &root, &ended), -ENOENT);
	/* a file nobody leases: nothing to end, and root may */
	CHECK_EQ(load(r, "/q/n", data, 10), 0);
	CHECK_EQ(vr_res_revoke(r, "/q/n", &root, &ended), 0);
	CHECK_EQ(ended, 0u);
	/* a lease live when the daemon stops: the file's memory is left to its holder */
	CHECK_EQ(lease_as(r, "/q/n", &other), -EAGAIN); /* revoked (nothing to end): gated */
	CHECK_EQ(load(r, "/q/o", data, 10), 0);
	CHECK_EQ(vr_res_lease(r, "/q/o", &other, false, &l1, &e1), 0);
	vr_dev_export_clear(&e1);
	CHECK_EQ(vr_res_lease_release(r, l1, true, why, sizeof(why)), 0);
}

/*
 * Memory a process still maps after its lease ended and its file was removed: scrubbed (it
 * reads zeros), and counted used (held_by_clients) until that process lets go of it.
 */
static void kept_after_lease(struct vr_residency *r, struct vr_backend *b, const uint8_t *data)
{
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};
	struct vr_dev_export e = {0};
	struct vr_device_info before, now;
	struct vr_lease *l = NULL;

	CHECK_EQ(load(r, "/k", data, 3000), 0);
	CHECK_EQ(vr_backend_info(b, &before), 0);
	CHECK_EQ(vr_res_lease(r, "/k", &other, false, &l, &e), 0);
	CHECK_EQ(e.count, 1u);
	const uint8_t *p = mmap(NULL, 3000, PROT_READ, MAP_SHARED, e.fds[0], 0);

	CHECK(p != MAP_FAILED);
	vr_dev_export_clear(&e); /* the mapping alone holds it now */
	vr_res_lease_end(r, l);
	CHECK_EQ(vr_res_unlink(r, "/k", &me), 0);
	CHECK_EQ(vr_backend_info(b, &now), 0);
	CHECK_EQ(now.held_by_clients, (uint64_t)65536);
	CHECK_EQ(now.free_bytes, before.free_bytes); /* still used */
	CHECK(p[0] == 0 && p[2999] == 0);	     /* scrubbed */
	munmap((void *)p, 3000);
	CHECK_EQ(vr_backend_info(b, &now), 0);
	CHECK_EQ(now.held_by_clients, (uint64_t)0);
	CHECK_EQ(now.free_bytes, before.free_bytes + 65536);
}

/*
 * Where the backend cannot see who still maps freed memory (CUDA; here the mock with its probe
 * off), a removed file's memory is counted used while a revoked lease's holder has not
 * released it: it may still map it. Status says so, and df.
 */
static void revoked_counted(const uint8_t *data)
{
	struct vr_backend_opt opts[2] = {{"capacity", "32M"}, {"client_probe", "0"}};
	struct vr_backend_params bp = {.opts = opts, .nopts = 2};
	struct vr_peer other = {.uid = 202, .gid = 202, .pid = 5};
	struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_statfs with, now;
	struct vr_dev_export e = {0};
	struct vr_lease *l = NULL, *l2 = NULL;
	struct vr_backend b;
	struct vr_residency *r;
	unsigned ended = 0;
	char why[256], text[8192];
	size_t len = 0;

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &bp, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/c", data, 3000), 0);
	CHECK_EQ(vr_res_statfs(r, &with), 0);
	CHECK_EQ(vr_res_lease(r, "/c", &other, false, &l, &e), 0);
	vr_dev_export_clear(&e);
	CHECK_EQ(vr_res_lease(r, "/c", &other, false, &l2, &e), 0);
	vr_dev_export_clear(&e);
	CHECK_EQ(vr_res_revoke(r, "/c", &root, &ended), 0);
	CHECK_EQ(ended, 2u);
	CHECK_EQ(vr_res_unlink(r, "/c", &me), 0);
	CHECK_EQ(vr_res_statfs(r, &now), 0);
	CHECK_EQ(now.free_bytes, with.free_bytes); /* still counted used */
	CHECK_EQ(slurp(r, "/status", text, sizeof(text) - 1, &len), 0);
	text[len] = '\0';
	const char *at = strstr(text, "\"held_by_clients_bytes\":");

	CHECK(at && strtoull(at + strlen("\"held_by_clients_bytes\":"), NULL, 10) == 65536);
	CHECK_EQ(vr_res_lease_release(r, l, false, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_statfs(r, &now), 0);
	CHECK_EQ(now.free_bytes, with.free_bytes); /* one holder still has it */
	CHECK_EQ(vr_res_lease_release(r, l2, false, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_statfs(r, &now), 0);
	CHECK_EQ(now.free_bytes, with.free_bytes + 65536);
	/* a revoked lease released before the rm leaves nothing to count */
	CHECK_EQ(load(r, "/d", data, 3000), 0);
	CHECK_EQ(vr_res_lease(r, "/d", &other, false, &l, &e), 0);
	vr_dev_export_clear(&e);
	CHECK_EQ(vr_res_revoke(r, "/d", &root, &ended), 0);
	CHECK_EQ(vr_res_lease_release(r, l, false, why, sizeof(why)), -ESTALE);
	CHECK_EQ(vr_res_unlink(r, "/d", &me), 0);
	CHECK_EQ(vr_res_statfs(r, &now), 0);
	CHECK_EQ(now.free_bytes, with.free_bytes + 65536);
	vr_res_free(r);
	vr_backend_close(&b);
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
	revoke_leases(r, data);
	kept_after_lease(r, &fx.b, data);
	vr_res_free(r); /* /q/o, kept for its holder: nobody maps it, so it is scrubbed */
	revoked_counted(data);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
