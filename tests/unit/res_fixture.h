/* res_fixture.h - the residency's unit tests' fixture: a mock backend over a temporary
 * directory, a test key, a pattern of bytes, and loads and reads through the tree as root. */
#ifndef VR_RES_FIXTURE_H
#define VR_RES_FIXTURE_H

#include "backends.h"
#include "check.h"
#include "residency.h"
#include "tree_io.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static struct vr_caller me = {.uid = 0, .gid = 0, .pid = 1, .tgid = 1};
static struct vr_keyring *keys;

/* The mock (32 MiB, its chunk files in vram) and the configuration every tree is made from. */
struct res_fixture {
	char vram[32];
	struct vr_backend_opt opts[2];
	struct vr_backend b;
	struct vr_res_config cfg;
};

/* Fills BUF with the tests' pattern: no two 4 KiB blocks alike. */
static inline void res_pattern(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
}

/* Makes the temporary directory, the key and the mock; the trees to come verify on open and
 * list their generated entries as LIST_GENERATED says. */
static inline void res_fixture_open(struct res_fixture *f, bool list_generated)
{
	uint8_t secret[32] = {9};
	struct vr_backend_params p = {.opts = f->opts, .nopts = 2};

	snprintf(f->vram, sizeof(f->vram), "/tmp/vr-res-XXXXXX");
	f->opts[0] = (struct vr_backend_opt){"capacity", "32M"};
	f->opts[1] = (struct vr_backend_opt){"vram", f->vram};
	CHECK(mkdtemp(f->vram) != NULL);
	CHECK_EQ(vr_keyring_from_bytes(secret, 32, &keys), 0);
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &f->b), 0);
	f->cfg = (struct vr_res_config){.backend = &f->b,
					.keys = keys,
					.verify_on_open = true,
					.list_generated = list_generated};
}

/* Closes the mock and the key; every chunk file must have gone with its file. */
static inline void res_fixture_close(struct res_fixture *f)
{
	vr_backend_close(&f->b);
	vr_keyring_free(keys);
	CHECK_EQ(rmdir(f->vram), 0);
}

/* Loads LEN bytes of DATA into PATH as cp would, 100,000 at a time; returns the first error,
 * else the close's result. */
static inline int load(struct vr_residency *r, const char *path, const void *data, size_t len)
{
	struct vr_handle *h;
	int ret = vr_res_create(r, path, 0644, &me, &h);

	if (ret)
		return ret;
	for (size_t off = 0; off < len && ret == 0;) {
		size_t n = len - off < 100000 ? len - off : 100000;

		ret = vr_res_write(r, h, (const char *)data + off, n, off, &me);
		off += n;
	}
	int fl = vr_res_flush(r, h, &me);

	vr_res_release(r, h);
	return ret ? ret : fl;
}

/* Reads a whole file or generated text; returns 0 or the first error (with what came before). */
static inline int slurp(struct vr_residency *r, const char *path, char *buf, size_t cap,
			size_t *len)
{
	return tree_slurp(r, &me, path, buf, cap, len);
}

#endif
