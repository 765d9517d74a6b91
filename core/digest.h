/* digest.h - fs-verity file digests (SHA-256 Merkle tree) and plain SHA-256. */
#ifndef VR_DIGEST_H
#define VR_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "fsverity_geom.h"

/*
 * Streaming fs-verity digest: feed the file's bytes in order, in chunks of any
 * size. One block buffer per tree level, so memory is constant.
 */
struct vr_fsv_stream {
	uint64_t size;
	size_t fill[VR_FSV_MAX_LEVELS + 1];	 /* bytes pending in each level's block */
	uint64_t emitted[VR_FSV_MAX_LEVELS + 1]; /* blocks hashed at each level so far */
	uint8_t first[VR_DIGEST_SIZE];		 /* hash of data block 0 (single-block files) */
	uint8_t buf[VR_FSV_MAX_LEVELS + 1][VR_FSV_BLOCK_SIZE];
};

/* Starts a stream; cannot fail. */
void vr_fsv_init(struct vr_fsv_stream *s);
/* Feeds LEN bytes; returns 0, or -EFBIG if the tree would exceed VR_FSV_MAX_LEVELS. */
int vr_fsv_update(struct vr_fsv_stream *s, const void *data, size_t len);
/* Writes the 32-byte fs-verity file digest into OUT; returns 0 or -EFBIG. */
int vr_fsv_final(struct vr_fsv_stream *s, uint8_t out[VR_DIGEST_SIZE]);

/* A piece of a file in memory; every piece but the last is a whole number of units. */
struct vr_span {
	const void *data;
	size_t len;
};
/*
 * fs-verity digest of the bytes in SPANS (in file order) on NTHREADS threads
 * (0: every online CPU not marked busy by vr_digest_thread_busy, at least one). Returns 0, -EINVAL
 * for a misaligned span, -ENOMEM, or the error of pthread_create.
 */
int vr_fsv_digest_spans(const struct vr_span *spans, size_t nspans, unsigned nthreads,
			uint8_t out[VR_DIGEST_SIZE]);

/* Copies LEN bytes of a file at OFF into BUF; returns 0 or -errno. */
typedef int (*vr_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);
/*
 * fs-verity digest of a file of SIZE bytes that is not in this process's memory,
 * read through READ(CTX, ...) in pieces of up to 2 MiB, each thread into its own
 * buffer, on NTHREADS threads as vr_fsv_digest_spans. Returns 0, READ's first
 * error, -ENOMEM, -EFBIG or pthread_create's -errno.
 */
int vr_fsv_digest_read(vr_read_fn read, void *ctx, uint64_t size, unsigned nthreads,
		       uint8_t out[VR_DIGEST_SIZE]);

/* Plain SHA-256 of a buffer (sha256sum's value); Nettle, for small in-memory texts. */
void vr_sha256(const void *data, size_t len, uint8_t out[VR_DIGEST_SIZE]);

/*
 * Streaming plain SHA-256 of file contents: OpenSSL's libcrypto, which hashes
 * bulk data faster than Nettle on the same core (docs/benchmarks.md); the
 * tree's 4 KiB blocks stay with Nettle, faster there. Both are tested against
 * the same vectors.
 */
struct vr_sha256_stream;
/* A fresh stream; returns 0 or -ENOMEM. */
int vr_sha256_stream_new(struct vr_sha256_stream **out);
/* Feeds LEN bytes; returns 0 or -EIO (libcrypto refused). */
int vr_sha256_stream_update(struct vr_sha256_stream *s, const void *data, size_t len);
/* The digest of what was fed; the stream then starts over. Returns 0 or -EIO. */
int vr_sha256_stream_final(struct vr_sha256_stream *s, uint8_t out[VR_DIGEST_SIZE]);
void vr_sha256_stream_free(struct vr_sha256_stream *s);

/*
 * The same stream on a thread of its own: feed() copies the bytes into one of
 * a few staging buffers and returns, so hashing overlaps whatever the caller
 * does next (the upload to the GPU, the next FUSE write). At most
 * VR_SHA_ASYNC_DEPTH pieces wait; feed() blocks when they are all taken.
 */
#define VR_SHA_ASYNC_DEPTH 8
struct vr_sha256_async;
/* Returns 0, -ENOMEM or pthread_create's -errno. */
int vr_sha256_async_new(struct vr_sha256_async **out);
/* Queues a copy of LEN bytes; returns 0, -ENOMEM, or a hashing error seen earlier. */
int vr_sha256_async_feed(struct vr_sha256_async *a, const void *data, size_t len);
/*
 * Queues LEN bytes at DATA without a copy (a pinned staging slot hashed in
 * place): they must stay as they are until vr_sha256_async_wait(TICKET)
 * returned. Returns 0 or a hashing error seen earlier (nothing queued).
 */
int vr_sha256_async_feed_ref(struct vr_sha256_async *a, const void *data, size_t len,
			     uint64_t *ticket);
/* Waits until the piece TICKET names is hashed (or skipped after an error). */
void vr_sha256_async_wait(struct vr_sha256_async *a, uint64_t ticket);
/* Waits for every queued piece and writes the digest; returns 0 or -errno. */
int vr_sha256_async_final(struct vr_sha256_async *a, uint8_t out[VR_DIGEST_SIZE]);
/* Stops the thread (discarding what is queued) and frees; NULL is fine. */
void vr_sha256_async_free(struct vr_sha256_async *a);
/*
 * Plain SHA-256 and fs-verity digest of the bytes SPANS hold, with the plain
 * hash on one thread beside the tree on NTHREADS-1 others. Returns as
 * vr_fsv_digest_spans.
 */
int vr_digest_both_spans(const struct vr_span *spans, size_t nspans, unsigned nthreads,
			 uint8_t sha[VR_DIGEST_SIZE], uint8_t fsv[VR_DIGEST_SIZE]);

/*
 * A read-back buffer of LEN bytes for file bytes: a mapping of its own when large, so that its
 * free gives the memory back to the system at once instead of leaving it in a thread's heap
 * arena (a daemon digesting on many threads would keep growing). NULL when out of memory.
 * vr_buf_free scrubs it (file bytes do not linger) and frees it.
 */
void *vr_buf_alloc(size_t len);
void vr_buf_free(void *p, size_t len);

/* Lowercase hex of LEN bytes into OUT (2*LEN+1 bytes). */
void vr_hex(const uint8_t *in, size_t len, char *out);
/* Parses exactly 2*LEN lowercase hex digits; returns 0 or -EINVAL. */
int vr_unhex(const char *in, uint8_t *out, size_t len);

/*
 * Marks the calling thread as busy (+1) or done (-1) with a sequential hash
 * that runs beside a tree digest, so a digest asked to use "all CPUs" leaves
 * it its core: three threads on two cores sealed 20% slower than two.
 */
void vr_digest_thread_busy(int delta);

/* Number of online CPUs, at least 1. */
unsigned vr_cpu_count(void);

#endif
