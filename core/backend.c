/* backend.c - the small wrappers through which callers reach a backend's ops table. */
#include "backend.h"
#include "blake3.h"
#include "digest.h"
#include "log.h"
#include "size.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vr_staging_parse(const char *text, struct vr_staging *out, char *why, size_t cap)
{
	char slot[32], more;
	unsigned long count, stages;
	uint64_t bytes;

	/* SLOT, then "x", COUNT, "x", STAGES, and nothing after */
	if (!text ||
	    sscanf(text, "%31[0-9KkMmGgTt]x%lux%lu%c", slot, &count, &stages, &more) != 3 ||
	    text[0] == '-' || strchr(text, ' ') || strstr(text, "x-") || strstr(text, "x+")) {
		snprintf(why, cap, "staging=%s: give SLOTxCOUNTxSTAGES, such as %s",
			 text ? text : "", VR_STAGING_DEFAULT);
		return -EINVAL;
	}
	if (vr_size_parse(slot, &bytes) != 0 || bytes % 4096 || bytes < (64u << 10) ||
	    bytes > (256u << 20)) {
		snprintf(why, cap, "staging=%s: a slot is a multiple of 4K from 64K to 256M", text);
		return -EINVAL;
	}
	if (count < 2 || count > VR_STAGING_SLOTS_MAX || stages < 1 ||
	    stages > VR_STAGING_STAGES_MAX) {
		snprintf(why, cap, "staging=%s: 2 to %d slots a stage, 1 to %d stages", text,
			 VR_STAGING_SLOTS_MAX, VR_STAGING_STAGES_MAX);
		return -EINVAL;
	}
	if (bytes * count * stages > ((uint64_t)16 << 30)) {
		snprintf(why, cap, "staging=%s: more than 16 GiB of staging in all", text);
		return -EINVAL;
	}
	out->slot = (size_t)bytes;
	out->slots = (unsigned)count;
	out->stages = (unsigned)stages;
	return 0;
}

int vr_backend_staging(const struct vr_backend_params *p, struct vr_staging *out)
{
	const char *v = vr_backend_opt(p, "staging");
	char why[160];
	int ret = vr_staging_parse(v ? v : VR_STAGING_DEFAULT, out, why, sizeof(why));

	if (ret)
		vr_log(LOG_ERR, "%s", why);
	return ret;
}

int vr_backend_open(const struct vr_backend_ops *ops, const struct vr_backend_params *p,
		    struct vr_backend *out)
{
	struct vr_staging g;
	void *ctx = NULL;
	int ret = vr_backend_staging(p, &g);

	out->pool = NULL;
	if (ret == 0 && !ops->stage_new)
		ret = vr_host_pool_new(&g, &out->pool);
	if (ret == 0)
		ret = ops->open(p, &ctx);
	if (ret) {
		vr_host_pool_free(out->pool);
		out->pool = NULL;
		return ret;
	}
	out->ops = ops;
	out->ctx = ctx;
	out->staging = g;
	return 0;
}

void vr_backend_close(struct vr_backend *b)
{
	if (b->ops)
		b->ops->close(b->ctx);
	vr_host_pool_free(b->pool);
	memset(b, 0, sizeof(*b));
}

int vr_backend_info(struct vr_backend *b, struct vr_device_info *out)
{
	return b->ops->info(b->ctx, out);
}

const char *vr_backend_opt(const struct vr_backend_params *p, const char *key)
{
	/* the last one given wins, as with mount options */
	for (size_t i = p->nopts; i-- > 0;)
		if (strcmp(p->opts[i].key, key) == 0)
			return p->opts[i].value;
	return NULL;
}

int vr_dev_file_new(struct vr_backend *b, struct vr_dev_file **out)
{
	struct vr_dev_file *f = NULL;
	int ret = b->ops->file_new(b->ctx, &f);

	if (ret)
		return ret;
	f->backend = b;
	f->size = 0;
	f->lent = NULL;
	*out = f;
	return 0;
}

int vr_dev_resize(struct vr_dev_file *f, uint64_t size)
{
	vr_dev_stage_drain(f);
	struct vr_backend *b = f->backend;
	int ret = b->ops->resize(b->ctx, f, size);

	if (ret == 0)
		f->size = size;
	return ret;
}

int vr_dev_write(struct vr_dev_file *f, uint64_t off, const void *buf, size_t len)
{
	vr_dev_stage_drain(f);
	return f->backend->ops->write(f->backend->ctx, f, off, buf, len);
}

int vr_dev_read(struct vr_dev_file *f, uint64_t off, void *buf, size_t len)
{
	vr_dev_stage_drain(f);
	return f->backend->ops->read(f->backend->ctx, f, off, buf, len);
}

int vr_dev_fsverity(struct vr_dev_file *f, uint8_t out[32])
{
	vr_dev_stage_drain(f);
	return f->backend->ops->fsverity(f->backend->ctx, f, out);
}

/* Read-back piece: FUSE's largest write, reused. */
#define SHA_PIECE ((size_t)1 << 20)

bool vr_dev_host_memory(const struct vr_dev_file *f)
{
	return f->backend->ops->host_memory;
}

/*
 * Feeds the file's bytes, in order, to FEED(CTX, piece, length), read back
 * through a buffer scrubbed after. Returns 0, FEED's error, or the backend's.
 */
static int each_piece(struct vr_dev_file *f, size_t max,
		      int (*feed)(void *ctx, const void *p, size_t n), void *ctx)
{
	/* no larger than the file: a fresh page costs its first touch, and the scrub touches all */
	size_t piece = f->size < max ? (size_t)f->size + (f->size == 0) : max;
	uint8_t *buf = vr_buf_alloc(piece);
	int ret = buf ? 0 : -ENOMEM;

	for (uint64_t off = 0; off < f->size && ret == 0;) {
		size_t n = f->size - off < piece ? (size_t)(f->size - off) : piece;

		ret = vr_dev_read(f, off, buf, n);
		if (ret == 0)
			ret = feed(ctx, buf, n);
		off += n;
	}
	vr_buf_free(buf, piece); /* scrubbed */
	return ret;
}

static int sha256_feed(void *ctx, const void *p, size_t n)
{
	return vr_sha256_stream_update(ctx, p, n);
}

int vr_dev_sha256(struct vr_dev_file *f, uint8_t out[32])
{
	struct vr_sha256_stream *st;
	int ret = vr_sha256_stream_new(&st);

	if (ret)
		return ret;
	ret = each_piece(f, SHA_PIECE, sha256_feed, st);
	if (ret == 0)
		ret = vr_sha256_stream_final(st, out);
	vr_sha256_stream_free(st);
	return ret;
}

static int blake3_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return vr_dev_read(ctx, off, buf, len);
}

int vr_dev_blake3(struct vr_dev_file *f, uint8_t out[32])
{
	struct vr_backend *b = f->backend;

	vr_dev_stage_drain(f);
	if (b->ops->blake3)
		return b->ops->blake3(b->ctx, f, out);
	/* BLAKE3 is a tree: its subtrees read back and hashed on every core, each thread
	 * reading its own (reads of one file may run at once: the contract above) */
	return vr_blake3_parallel_read(blake3_read, f, f->size, 0, out);
}

/* A copy's piece: few enough calls for a bus, small enough to stay in the caches. */
#define COPY_PIECE ((size_t)8 << 20)

struct copy_to {
	struct vr_dev_file *to;
	uint64_t off;
};

static int copy_feed(void *ctx, const void *p, size_t n)
{
	struct copy_to *c = ctx;
	int ret = vr_dev_write(c->to, c->off, p, n);

	c->off += n;
	return ret;
}

int vr_dev_copy(struct vr_dev_file *from, struct vr_dev_file *to)
{
	struct copy_to c = {to, 0};

	if (to->size != from->size)
		return -EINVAL;
	return each_piece(from, COPY_PIECE, copy_feed, &c);
}

uint64_t vr_dev_held(const struct vr_dev_file *f)
{
	const struct vr_backend *b = f->backend;

	return b->ops->held ? b->ops->held(b->ctx, f) : f->size;
}

int vr_dev_file_free(struct vr_dev_file *f)
{
	if (!f)
		return 0;
	vr_dev_stage_detach(f);
	return f->backend->ops->file_free(f->backend->ctx, f);
}

int vr_dev_export(struct vr_dev_file *f, struct vr_dev_export *out)
{
	struct vr_backend *b = f->backend;

	memset(out, 0, sizeof(*out));
	vr_dev_stage_drain(f);
	if (!b->ops->export)
		return -EOPNOTSUPP;
	return b->ops->export(b->ctx, f, out);
}

bool vr_backend_can_keep(const struct vr_backend *b)
{
	return b->ops && b->ops->keep && b->ops->adopt;
}

int vr_dev_keep(struct vr_dev_file *f, struct vr_dev_export *out)
{
	struct vr_backend *b = f->backend;

	memset(out, 0, sizeof(*out));
	vr_dev_stage_drain(f);
	if (!b->ops->keep)
		return -EOPNOTSUPP;
	return b->ops->keep(b->ctx, f, out);
}

int vr_dev_adopt(struct vr_backend *b, struct vr_dev_export *from, uint64_t size,
		 struct vr_dev_file **out)
{
	struct vr_dev_file *f = NULL;
	int ret = b->ops->adopt ? b->ops->adopt(b->ctx, from, size, &f) : -EOPNOTSUPP;

	vr_dev_export_clear(from); /* what the backend did not take */
	if (ret)
		return ret;
	f->backend = b;
	f->size = size;
	f->lent = NULL;
	*out = f;
	return 0;
}

void vr_dev_export_clear(struct vr_dev_export *e)
{
	for (uint32_t i = 0; i < e->count; i++)
		close(e->fds[i]);
	free(e->fds);
	free(e->lens);
	memset(e, 0, sizeof(*e));
}
