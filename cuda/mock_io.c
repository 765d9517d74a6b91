/*
 * mock_io.c - bytes in and out of a mock file: writes, reads and digests
 * through its chunks' descriptors (with the test seam that holds a digest in
 * flight), and the scrub of a range.
 */
#include "mock_private.h"

#include "digest.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Test seam: a program that defines vr_test_digest_hook (the conformance
 * suite does) is called at the start of every digest, with no lock held, to
 * hold a digest in flight while it checks that other files are not blocked.
 */
void vr_test_digest_hook(void) __attribute__((weak));

enum io_kind { IO_READ, IO_WRITE, IO_ZERO };

/* What a scrub writes: zeros, a piece at a time. */
static const uint8_t zeros[64 << 10];

/* A descriptor's error as the backend's: -EIO, said once per call with the cause. */
static int io_error(enum io_kind kind, int err)
{
	vr_log(LOG_ERR, "mock: %s of device memory failed: %s",
	       kind == IO_READ	  ? "a read"
	       : kind == IO_WRITE ? "a write"
				  : "a scrub",
	       err ? strerror(err) : "short transfer");
	return -EIO;
}

/*
 * LEN bytes at OFF of chunk C: copied into BUF (IO_READ), from BUF (IO_WRITE)
 * or zeroed (IO_ZERO). Through the descriptor, by the kernel's copy; a chunk
 * once exported is sealed against writes through any descriptor, so it is
 * written through the mapping made before its seals. Returns 0 or -EIO.
 */
static int chunk_io(const struct chunk *c, uint64_t off, uint8_t *buf, size_t len,
		    enum io_kind kind)
{
	if (kind != IO_READ && c->map) {
		if (kind == IO_ZERO)
			explicit_bzero(c->map + off, len);
		else
			memcpy(c->map + off, buf, len);
		return 0;
	}
	while (len) {
		size_t n = kind == IO_ZERO && len > sizeof(zeros) ? sizeof(zeros) : len;
		ssize_t done = kind == IO_READ	  ? pread(c->fd, buf, n, (off_t)off)
			       : kind == IO_WRITE ? pwrite(c->fd, buf, n, (off_t)off)
						  : pwrite(c->fd, zeros, n, (off_t)off);

		if (done < 0 && errno == EINTR)
			continue;
		if (done <= 0)
			return io_error(kind, done < 0 ? errno : 0);
		off += (size_t)done;
		len -= (size_t)done;
		if (kind != IO_ZERO)
			buf += done;
	}
	return 0;
}

/* LEN bytes at OFF of F (inside what its chunks hold), chunk by chunk, as chunk_io. */
static int file_io(const struct mock_file *f, uint64_t off, uint8_t *buf, size_t len,
		   enum io_kind kind)
{
	uint64_t start = 0;

	for (uint32_t i = 0; i < f->count && len; start += f->chunks[i++].len) {
		const struct chunk *c = &f->chunks[i];

		if (off >= start + c->len)
			continue;
		uint64_t in = off - start;
		size_t n = c->len - in < len ? (size_t)(c->len - in) : len;
		int ret = chunk_io(c, in, buf, n, kind);

		if (ret)
			return ret;
		off += n;
		len -= n;
		if (kind != IO_ZERO)
			buf += n;
	}
	return len ? -EIO : 0;
}

int mock_chunk_zero(const struct chunk *c, uint64_t off, uint64_t len)
{
	return chunk_io(c, off, NULL, (size_t)len, IO_ZERO);
}

int mock_zero(const struct mock_file *f, uint64_t off, uint64_t len)
{
	return file_io(f, off, NULL, (size_t)len, IO_ZERO);
}

int mock_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len)
{
	struct mock_file *f = mf(file);
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = mock_fault(ctx, FAULT_WRITE);
	if (ret || len == 0)
		return ret;
	/* the copy's source is never written: chunk_io's buffer is const-free only for reads */
	return file_io(f, off, (uint8_t *)(uintptr_t)buf, len, IO_WRITE);
}

int mock_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len)
{
	struct mock_file *f = mf(file);
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = mock_fault(ctx, FAULT_READ);
	if (ret || len == 0)
		return ret;
	return file_io(f, off, buf, len, IO_READ);
}

/* vr_fsv_digest_read's reader over a mock file */
static int digest_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	return file_io(ctx, off, buf, len, IO_READ);
}

int mock_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	struct mock_file *f = mf(file);
	int ret;

	if (vr_test_digest_hook)
		vr_test_digest_hook();
	ret = mock_fault(ctx, FAULT_DIGEST);
	if (ret)
		return ret;
	/* on every CPU, each thread copying its pieces out (no lock held: the file is the
	 * caller's) */
	return vr_fsv_digest_read(digest_read, f, f->size, 0, out);
}
