/* tree_io.h - the unit tests' read of a whole file through the tree, as a reader would. */
#ifndef VR_TREE_IO_H
#define VR_TREE_IO_H

#include "residency.h"

#include <fcntl.h>

/* Reads PATH (a file or generated text) into BUF as caller C, at most CAP bytes (*LEN got);
 * returns 0 or the first error, with what came before it. */
static inline int tree_slurp(struct vr_residency *r, const struct vr_caller *c, const char *path,
			     char *buf, size_t cap, size_t *len)
{
	struct vr_handle *h;
	size_t got;
	int ret = vr_res_open(r, path, O_RDONLY, c, &h);

	*len = 0;
	if (ret)
		return ret;
	do {
		ret = vr_res_read(r, h, buf + *len, cap - *len, *len, &got);
		*len += got;
	} while (ret == 0 && got > 0 && *len < cap);
	vr_res_release(r, h);
	return ret;
}

#endif
