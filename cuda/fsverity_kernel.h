/* fsverity_kernel.h - C entry to the CUDA fs-verity kernels (cuda/fsverity_kernel.cu). */
#ifndef VR_FSVERITY_KERNEL_H
#define VR_FSVERITY_KERNEL_H

#include <stdint.h>

#include "fsverity_geom.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Device scratch for digests, allocated once per device (at open) for the
 * largest file that fits: no cudaMalloc or cudaFree per digest (cudaFree
 * synchronizes the whole device, and memory taken meanwhile by another
 * process would fail a check). One digest at a time uses it; the BLAKE3
 * launcher (blake3_kernel.h) uses its EXT, OUT and A too.
 */
struct vr_cuda_scratch {
	uint8_t *out;	     /* 32 bytes: the digest */
	const uint8_t **ext; /* MAX_EXTENTS device pointers: the extent table */
	const uint8_t **lvl; /* 2 device pointers: the level buffers as one-extent tables */
	uint8_t *a, *b;	     /* MAX_BLOCKS and half as many hashes: the levels, alternating */
	uint64_t max_blocks; /* 4096-byte blocks of the largest file */
	uint32_t max_extents;
};

/* The scratch's parts for files of at most MAX_BYTES in extents of EXTENT_SIZE. */
static inline void vr_cuda_scratch_size(uint64_t max_bytes, uint64_t extent_size,
					uint64_t *max_blocks, uint32_t *max_extents,
					uint64_t *level_bytes)
{
	uint64_t blocks = vr_fsv_blocks(max_bytes) + 1;

	*max_blocks = blocks;
	*max_extents = (uint32_t)(max_bytes / extent_size + 2);
	*level_bytes = (blocks + vr_fsv_level_up(blocks) + 1) * VR_DIGEST_SIZE;
}

/*
 * fs-verity file digest of SIZE bytes held on the current device in NEXT
 * extents of EXTENT_SIZE bytes (a multiple of 4096), whose device pointers
 * are in EXTENTS (a host array), using SCRATCH. Leaf hashes of all 4096-byte
 * blocks run in parallel, then each tree level, then the descriptor; only the
 * 32-byte digest is copied back, into OUT. Runs on STREAM (a cudaStream_t) and
 * waits for it. Returns 0 or a cudaError_t value (cudaErrorInvalidValue for a
 * file larger than the scratch serves).
 */
int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		     uint64_t size, const struct vr_cuda_scratch *scratch, void *stream,
		     uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
