/* test_res_open.c - what an open decides (open.c): the page cache dropped at the first read
 * open after a load or a replacement, kept after that, never used by a file being written. */
#include "res_fixture.h"

#include <fcntl.h>
#include <stdbool.h>

int main(void)
{
	static uint8_t data[3 << 20];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_handle *h, *h1;

	res_fixture_open(&fx, true);
	res_pattern(data, sizeof(data));
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);

	/* the page cache is dropped at the first read open after a load or a replacement, and
	 * kept after that; files being written never use it */
	bool keep[4];

	CHECK_EQ(load(r, "/kc", data, 5000), 0);
	for (int i = 0; i < 4; i++) {
		if (i == 2) { /* a replacement between the second and third opens */
			CHECK_EQ(vr_res_open(r, "/kc", O_WRONLY | O_TRUNC, &me, &h1), 0);
			CHECK(!vr_res_handle_cacheable(h1));
			CHECK_EQ(vr_res_write(r, h1, "new", 3, 0, &me), 0);
			CHECK_EQ(vr_res_flush(r, h1, &me), 0);
			vr_res_release(r, h1);
		}
		CHECK_EQ(vr_res_open(r, "/kc", O_RDONLY, &me, &h), 0);
		CHECK(vr_res_handle_cacheable(h));
		keep[i] = vr_res_handle_keep_cache(h);
		vr_res_release(r, h);
	}
	CHECK(!keep[0] && keep[1] && !keep[2] && keep[3]);
	CHECK_EQ(vr_res_unlink(r, "/kc", &me), 0);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
