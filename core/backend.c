/* backend.c - the small wrappers through which callers reach a backend's ops table. */
#include "backend.h"

#include <errno.h>
#include <string.h>

int vr_backend_open(const struct vr_backend_ops *ops, const struct vr_backend_params *p,
		    struct vr_backend *out)
{
	void *ctx = NULL;
	int ret = ops->open(p, &ctx);

	if (ret)
		return ret;
	out->ops = ops;
	out->ctx = ctx;
	return 0;
}

void vr_backend_close(struct vr_backend *b)
{
	if (b->ops)
		b->ops->close(b->ctx);
	memset(b, 0, sizeof(*b));
}

int vr_backend_info(struct vr_backend *b, struct vr_device_info *out)
{
	return b->ops->info(b->ctx, out);
}

int vr_dev_file_new(struct vr_backend *b, struct vr_dev_file **out)
{
	return b->ops->file_new(b->ctx, out);
}

int vr_dev_resize(struct vr_backend *b, struct vr_dev_file *f, uint64_t size)
{
	return b->ops->resize(b->ctx, f, size);
}

int vr_dev_write(struct vr_backend *b, struct vr_dev_file *f, uint64_t off, const void *buf,
		 size_t len)
{
	return b->ops->write(b->ctx, f, off, buf, len);
}

int vr_dev_read(struct vr_backend *b, struct vr_dev_file *f, uint64_t off, void *buf, size_t len)
{
	return b->ops->read(b->ctx, f, off, buf, len);
}

int vr_dev_digest(struct vr_backend *b, struct vr_dev_file *f, uint8_t *sha, uint8_t fsv[32])
{
	return b->ops->digest(b->ctx, f, sha, fsv);
}

uint64_t vr_dev_held(struct vr_backend *b, const struct vr_dev_file *f)
{
	return b->ops->held(b->ctx, f);
}

int vr_dev_file_free(struct vr_backend *b, struct vr_dev_file *f)
{
	return f ? b->ops->file_free(b->ctx, f) : 0;
}
