/* cuda_export.c - a CUDA file's chunks handed to another process as POSIX descriptors. */
#include "cuda_private.h"

#include <errno.h>
#include <stdlib.h>

/* Descriptors of F's chunks (cuMemExportToShareableHandle); the receiver imports and maps
 * them. A VMM handle carries no access limit: read-only is the importer's choice
 * (docs/socket.md). */
int cuda_export(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	int ret = cuda_select_dev(c);

	out->kind = VR_EXPORT_CUDA_FD;
	out->count = 0;
	out->fds = calloc(f->count ? f->count : 1, sizeof(int));
	out->lens = calloc(f->count ? f->count : 1, sizeof(uint64_t));
	if (!ret && (!out->fds || !out->lens))
		ret = -ENOMEM;
	/* the bytes must be in place before another process reads them */
	if (!ret && f->count)
		ret = cuda_wait_written(c, f);
	for (uint32_t i = 0; i < f->count && ret == 0; i++) {
		int fd = -1;

		ret = cuda_drv_err(c,
				   c->drv.export_fd(&fd, f->chunks[i].h,
						    CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
				   "cuMemExportToShareableHandle");
		if (ret == -ENOSPC)
			ret = -EMFILE;
		if (ret == 0) {
			out->fds[out->count] = fd;
			out->lens[out->count++] = f->chunks[i].len;
		}
	}
	if (ret)
		vr_dev_export_clear(out);
	return ret;
}
