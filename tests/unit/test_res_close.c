/* test_res_close.c - what a writer's close settles (close.c): sealing waits for the last
 * close; a child's write withdraws the seal and its close settles nothing; a closer killed by a
 * signal leaves the load INCOMPLETE. */
#include "res_fixture.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

int main(void)
{
	char text[65536];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_attr a;
	size_t len;

	res_fixture_open(&fx, true);
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);

	/* a second writer: sealing waits for the last close */
	struct vr_handle *h1, *h2;

	CHECK_EQ(vr_res_create(r, "/two", 0644, &me, &h1), 0);
	CHECK_EQ(vr_res_open(r, "/two", O_WRONLY, &me, &h2), 0);
	CHECK_EQ(vr_res_write(r, h1, "ab", 2, 0, &me), 0);
	CHECK_EQ(vr_res_flush(r, h1, &me), 0);
	vr_res_release(r, h1);
	CHECK_EQ(vr_res_getattr(r, "/two.seal", &a), -ENOENT);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), 0);
	text[len] = '\0';
	CHECK(strstr(text, "PENDING two") != NULL);
	CHECK_EQ(vr_res_write(r, h2, "cd", 2, 2, &me), 0);
	CHECK_EQ(vr_res_flush(r, h2, &me), 0);
	vr_res_release(r, h2);
	CHECK_EQ(vr_res_getattr(r, "/two.seal", &a), 0);
	CHECK_EQ(slurp(r, "/two", text, sizeof(text), &len), 0);
	CHECK_EQ(len, 4);
	CHECK(memcmp(text, "abcd", 4) == 0);

	CHECK_EQ(vr_res_unlink(r, "/two", &me), 0);

	/*
	 * The opener's close seals; a write through a descriptor of the same
	 * description still open elsewhere (a child's) withdraws the seal; a
	 * child's close settles nothing; the release seals the whole.
	 */
	struct vr_caller child = me;
	struct vr_seal s2;

	child.pid = child.tgid = 2;
	CHECK_EQ(vr_res_create(r, "/dup", 0644, &me, &h1), 0);
	CHECK_EQ(vr_res_write(r, h1, "ab", 2, 0, &me), 0);
	CHECK_EQ(vr_res_flush(r, h1, &me), 0);
	CHECK_EQ(vr_res_getattr(r, "/dup.seal", &a), 0);
	CHECK_EQ(vr_res_write(r, h1, "cd", 2, 2, &child), 0);
	CHECK_EQ(vr_res_getattr(r, "/dup.seal", &a), -ENOENT);
	CHECK_EQ(vr_res_flush(r, h1, &child), 0);
	CHECK_EQ(vr_res_getattr(r, "/dup.seal", &a), -ENOENT);
	vr_res_release(r, h1);
	CHECK_EQ(slurp(r, "/dup.seal", text, sizeof(text), &len), 0);
	CHECK_EQ(vr_seal_parse(text, len, &s2, NULL), 0);
	CHECK_EQ(s2.size, 4);
	/* a closer killed by a signal leaves the load INCOMPLETE at once, never sealed */
	struct vr_caller killed = child;

	killed.killed = true;
	CHECK_EQ(vr_res_create(r, "/killed", 0644, &me, &h1), 0);
	CHECK_EQ(vr_res_write(r, h1, "ab", 2, 0, &me), 0);
	CHECK_EQ(vr_res_flush(r, h1, &killed), 0);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), -EIO);
	text[len] = '\0';
	CHECK(strstr(text, "INCOMPLETE killed its writer was killed by a signal") != NULL);
	vr_res_release(r, h1);
	CHECK_EQ(vr_res_getattr(r, "/killed.seal", &a), -ENOENT);
	CHECK_EQ(vr_res_unlink(r, "/dup", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/killed", &me), 0);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
