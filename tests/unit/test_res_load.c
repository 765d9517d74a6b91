/* test_res_load.c - loads into the tree over the mock (load.c): the seal's SHA-256 whatever
 * order the bytes came in, a load sealed and read back, a sealed file's and a name's refusals,
 * ENOSPC. */
#include "res_fixture.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

/*
 * The seal's SHA-256 is the bytes' whatever order they came in: in order (hashed
 * as written), backwards, with an overwrite, after a truncation, after a
 * truncation to zero.
 */
static void inline_hash_patterns(struct vr_residency *r, const uint8_t *data, size_t len)
{
	static const char *const names[] = {"in-order", "backwards", "overwrite", "cut", "restart"};
	uint8_t want[32];
	struct vr_seal seal;
	char text[8192], path[64];
	size_t got;

	vr_sha256(data, len, want);
	for (int p = 0; p < 5; p++) {
		struct vr_handle *h;
		const size_t piece = 65536;

		snprintf(path, sizeof(path), "/hash-%s", names[p]);
		CHECK_EQ(vr_res_create(r, path, 0644, &me, &h), 0);
		if (p == 1) {
			for (size_t off = (len - 1) / piece * piece;; off -= piece) {
				size_t n = len - off < piece ? len - off : piece;

				CHECK_EQ(vr_res_write(r, h, data + off, n, off, &me), 0);
				if (off == 0)
					break;
			}
		} else {
			if (p == 2) /* junk first, then the right bytes over it */
				CHECK_EQ(vr_res_write(r, h, data + 1, piece, 0, &me), 0);
			if (p == 3) { /* past the end, cut back, then in order */
				CHECK_EQ(vr_res_write(r, h, data, 3 * piece, 0, &me), 0);
				CHECK_EQ(vr_res_ftruncate(r, h, piece, &me), 0);
				CHECK_EQ(vr_res_write(r, h, data + piece, len - piece, piece, &me),
					 0);
			}
			if (p == 4) { /* bytes, a truncation to zero, then the file */
				CHECK_EQ(vr_res_write(r, h, data + 7, piece, 0, &me), 0);
				CHECK_EQ(vr_res_ftruncate(r, h, 0, &me), 0);
			}
			for (size_t off = 0; p != 3 && off < len; off += piece)
				CHECK_EQ(vr_res_write(r, h, data + off,
						      len - off < piece ? len - off : piece, off,
						      &me),
					 0);
		}
		CHECK_EQ(vr_res_flush(r, h, &me), 0);
		vr_res_release(r, h);
		snprintf(text, sizeof(text), "%s.seal", path);
		CHECK_EQ(slurp(r, text, text, sizeof(text), &got), 0);
		CHECK_EQ(vr_seal_parse(text, got, &seal, NULL), 0);
		if (memcmp(seal.sha256, want, 32) != 0)
			fprintf(stderr, "%s: the seal's sha256 is not the bytes'\n", names[p]);
		CHECK(memcmp(seal.sha256, want, 32) == 0);
		CHECK_EQ(vr_res_unlink(r, path, &me), 0);
	}
}

int main(void)
{
	char text[65536];
	static uint8_t data[3 << 20], big[40 << 20];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_statfs sf;
	struct vr_attr a;
	struct vr_seal seal;
	struct vr_handle *h;
	size_t len;

	res_fixture_open(&fx, true);
	res_pattern(data, sizeof(data));
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);

	inline_hash_patterns(r, data, sizeof(data) - 12345);

	/* load and seal; the seal verifies and names the path */
	CHECK_EQ(vr_res_mkdir(r, "/llama", 0755, &me), 0);
	CHECK_EQ(load(r, "/llama/w.bin", data, sizeof(data)), 0);
	CHECK_EQ(vr_res_getattr(r, "/llama/w.bin", &a), 0);
	CHECK_EQ(a.size, sizeof(data));
	CHECK_EQ(a.blocks, (3 << 20) / 512);
	CHECK_EQ(slurp(r, "/llama/w.bin.seal", text, sizeof(text), &len), 0);
	CHECK_EQ(vr_seal_parse(text, len, &seal, NULL), 0);
	CHECK_STR(seal.path, "llama/w.bin");
	CHECK_EQ(vr_seal_verify(&seal, keys), 0);
	CHECK_EQ(seal.size, sizeof(data));
	static char back[3 << 20];

	CHECK_EQ(slurp(r, "/llama/w.bin", back, sizeof(back), &len), 0);
	CHECK_EQ(len, sizeof(data));
	CHECK(memcmp(back, data, sizeof(data)) == 0);

	/* sealed is immutable */
	CHECK_EQ(vr_res_open(r, "/llama/w.bin", O_WRONLY, &me, &h), -EPERM);
	CHECK_EQ(vr_res_open(r, "/llama/w.bin", O_RDONLY | O_TRUNC, &me, &h), -EPERM);
	CHECK_EQ(vr_res_truncate(r, "/llama/w.bin", 0, &me), -EPERM);
	CHECK_EQ(vr_res_chmod(r, "/llama/w.bin", 0600), 0);
	CHECK_EQ(vr_res_unlink(r, "/llama/w.bin.seal", &me), -EPERM);
	CHECK_EQ(vr_res_open(r, "/llama/verify", O_WRONLY, &me, &h), -EPERM);

	/* names */
	CHECK_EQ(vr_res_create(r, "/llama/x.seal", 0644, &me, &h), -EPERM);
	CHECK_EQ(vr_res_create(r, "/verify", 0644, &me, &h), -EEXIST);
	CHECK_EQ(vr_res_mkdir(r, "/bad\x01name", 0755, &me), -EINVAL);
	CHECK_EQ(vr_res_create(r, "/nodir/x", 0644, &me, &h), -ENOENT);
	CHECK_EQ(vr_res_create(r, "/llama/w.bin/x", 0644, &me, &h), -ENOTDIR);

	/* the tree empty again, as the ENOSPC check counts on */
	CHECK_EQ(vr_res_unlink(r, "/llama/w.bin", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/llama", &me), 0);

	/* ENOSPC: the load fails at write, flush reports it, nothing is left */
	CHECK_EQ(load(r, "/big.bin", big, sizeof(big)), -ENOSPC);
	CHECK_EQ(vr_res_getattr(r, "/big.bin", &a), -ENOENT);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.free_bytes, 32 << 20);
	CHECK_EQ(sf.files, 0);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
