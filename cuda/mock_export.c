/* mock_export.c - a mock file's chunks handed to another process, sealed and read-only. */
#include "mock_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Read-only descriptors of F's chunks. A memfd gets seals first (no write,
 * no shrink or growth, by anyone, through any descriptor), so a receiver
 * that reopens its descriptor for writing still cannot change a byte; the
 * daemon's own mapping, made before, keeps working for the scrub.
 */
int mock_export(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	uint32_t i;
	int ret = 0;

	out->kind = VR_EXPORT_HOST_FD;
	out->count = 0;
	out->fds = calloc(f->count ? f->count : 1, sizeof(int));
	out->lens = calloc(f->count ? f->count : 1, sizeof(uint64_t));
	if (!out->fds || !out->lens) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < f->count; i++) {
		struct chunk *c = &f->chunks[i];
		char self[64];
		int fd;

		if (m->dirfd < 0 && !c->sealed) {
			if (fcntl(c->fd, F_ADD_SEALS,
				  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
				      F_SEAL_SEAL) != 0) {
				ret = -errno;
				goto fail;
			}
			c->sealed = true;
		}
		/* a new open file description, read-only, of the same memory */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->fd);
		fd = open(self, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto fail;
		}
		out->fds[out->count] = fd;
		out->lens[out->count++] = c->len;
	}
	return 0;

fail:
	vr_dev_export_clear(out);
	return ret;
}
