/*
 * mock_io.c - bytes in and out of a mock file: writes, reads, digests over
 * its one contiguous range (with the test seam that holds a digest in
 * flight), and the host view of its bytes.
 */
#include "mock_private.h"

#include "digest.h"

#include <errno.h>
#include <string.h>

/*
 * Test seam: a program that defines vr_test_digest_hook (the conformance
 * suite does) is called at the start of every digest, with no lock held, to
 * hold a digest in flight while it checks that other files are not blocked.
 */
void vr_test_digest_hook(void) __attribute__((weak));

int mock_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len)
{
	struct mock_file *f = mf(file);
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = mock_fault(ctx, FAULT_WRITE);
	if (ret || len == 0)
		return ret;
	memcpy(f->base + off, buf, len);
	return 0;
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
	memcpy(buf, f->base + off, len);
	return 0;
}

int mock_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	struct mock_file *f = mf(file);
	/* one span: the file's bytes are contiguous, as the kernel's one base pointer on CUDA */
	struct vr_span span = {.data = f->size ? f->base : (const uint8_t *)"", .len = f->size};
	int ret;

	if (vr_test_digest_hook)
		vr_test_digest_hook();
	ret = mock_fault(ctx, FAULT_DIGEST);
	if (ret)
		return ret;
	return vr_fsv_digest_spans(&span, 1, 0, out);
}

int mock_host_view(void *ctx, struct vr_dev_file *file, uint64_t off, const void **p, size_t *len)
{
	struct mock_file *f = mf(file);

	(void)ctx;
	if (off >= f->size)
		return -EINVAL;
	*p = f->base + off;
	*len = f->size - off > SIZE_MAX ? SIZE_MAX : (size_t)(f->size - off);
	return 0;
}
