/* blake3.h - BLAKE3 (hash, keyed hash, key derivation), streaming and on many threads. */
#ifndef VR_BLAKE3_H
#define VR_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define VR_BLAKE3_LEN	    32	 /* the default output, what b3sum prints */
#define VR_BLAKE3_KEY_LEN   32	 /* a keyed hash's key */
#define VR_BLAKE3_BLOCK_LEN 64	 /* bytes one compression takes */
#define VR_BLAKE3_CHUNK_LEN 1024 /* the tree's leaves */
/* CVs the stack may hold: one per bit of a chunk count (2^54 chunks of 1 KiB is 2^64 bytes) */
#define VR_BLAKE3_MAX_DEPTH 54

/*
 * A streaming hasher. Its fields are private to blake3.c (the struct is here
 * so callers can keep one on their stack); about 1.9 KiB.
 */
struct vr_blake3 {
	uint32_t key[8]; /* the key words: the IV, a keyed hash's key, a derived key */
	uint32_t cv[8];	 /* the current chunk's chaining value so far */
	uint64_t chunk;	 /* the current chunk's index in the whole input */
	uint64_t pushed; /* chunks of this hasher's own completed so far */
	uint8_t buf[VR_BLAKE3_BLOCK_LEN];	    /* the current chunk's pending block */
	uint8_t buf_len;			    /* bytes in BUF */
	uint8_t blocks;				    /* blocks of the current chunk compressed */
	uint8_t flags;				    /* the mode's domain flags */
	uint8_t depth;				    /* chaining values on STACK */
	uint32_t stack[VR_BLAKE3_MAX_DEPTH + 1][8]; /* completed subtrees, largest first */
};

/* Starts a plain hash (b3sum's). Cannot fail. */
void vr_blake3_init(struct vr_blake3 *h);
/* Starts a keyed hash (a MAC) with KEY. */
void vr_blake3_init_keyed(struct vr_blake3 *h, const uint8_t key[VR_BLAKE3_KEY_LEN]);
/* Starts a key derivation for CONTEXT (a NUL-terminated, hard-coded, unique string). */
void vr_blake3_init_derive_key(struct vr_blake3 *h, const char *context);
/* Feeds LEN bytes, in pieces of any size. */
void vr_blake3_update(struct vr_blake3 *h, const void *data, size_t len);
/*
 * Writes the first LEN bytes of the output (extendable: any length; 32 is the
 * hash) into OUT. Leaves H as it was, so more input may follow.
 */
void vr_blake3_final(const struct vr_blake3 *h, uint8_t *out, size_t len);

/*
 * The plain hash of LEN bytes at DATA on NTHREADS threads, this one among
 * them (0: one per online CPU, each with 4 MiB or more to hash). The buffer is cut into runs of a
 * power of two chunks, each a subtree of BLAKE3's tree, hashed on whichever thread is free into a
 * chaining value; the values are then merged as the tree's parents. The result is the hash
 * vr_blake3_init/update/final give. A thread that cannot be started leaves its share to the others.
 * Cannot fail.
 */
void vr_blake3_parallel(const void *data, size_t len, unsigned nthreads,
			uint8_t out[VR_BLAKE3_LEN]);

/* Reads LEN bytes at OFF of what CTX names into BUF; 0 or -errno. Called from several threads
 * at once, for different ranges. */
typedef int (*vr_blake3_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);

/*
 * The same hash of LEN bytes READ gives (a device file's, read back): each
 * thread reads its subtrees' bytes into a buffer of its own, 2 MiB at a time.
 * Returns 0, or READ's first error (the others stop at their next piece), or
 * -ENOMEM; OUT is then undefined.
 */
int vr_blake3_parallel_read(vr_blake3_read_fn read, void *ctx, uint64_t len, unsigned nthreads,
			    uint8_t out[VR_BLAKE3_LEN]);

#endif
