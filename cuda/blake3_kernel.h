/* blake3_kernel.h - C entry to the CUDA BLAKE3 kernels (cuda/blake3_kernel.cu). */
#ifndef VR_BLAKE3_KERNEL_H
#define VR_BLAKE3_KERNEL_H

#include <stdint.h>

#include "fsverity_kernel.h"

/* The tree's plan, one definition for the launcher, its CPU emulation and the runtime double:
 * plain C that nvcc also compiles for the device. */
#define VR_B3_CHUNK	  1024
#define VR_B3_WARP_LEVELS 5 /* a warp's 32 chunks merge into one node: 2^5 */

/* Chunks of a SIZE-byte input: the empty input is one (empty) chunk. */
VR_GEOM_FN uint64_t vr_b3_chunks(uint64_t size)
{
	return size == 0 ? 1 : (size + VR_B3_CHUNK - 1) / VR_B3_CHUNK;
}

/*
 * Merge levels a warp does among its chunks before storing nodes: five (32
 * chunks, one node), fewer when the whole tree is lower, so the root (whose
 * compression differs) is always left to the last parent launch. N >= 2.
 */
VR_GEOM_FN int vr_b3_warp_levels(uint64_t n)
{
	int levels = 0;

	while (levels < VR_B3_WARP_LEVELS && ((uint64_t)2 << levels) < n)
		levels++;
	return levels;
}

/* Nodes at the level above M of them: pairs, an odd last one carried. */
VR_GEOM_FN uint64_t vr_b3_level_up(uint64_t m)
{
	return m / 2 + (m & 1);
}

/*
 * The scratch nodes (32 bytes each) the launcher stores for N >= 2 chunks:
 * the warps' nodes, then each level's above them down to the root's two
 * children, one after another.
 */
VR_GEOM_FN uint64_t vr_b3_scratch_nodes(uint64_t n)
{
	int wl = vr_b3_warp_levels(n);
	uint64_t m = (n + ((uint64_t)1 << wl) - 1) >> wl, total = m;

	for (; m > 2; m = vr_b3_level_up(m))
		total += vr_b3_level_up(m);
	return total;
}

#ifdef __cplusplus
extern "C" {
#endif

/*
 * BLAKE3 (the plain hash, b3sum's) of SIZE bytes held on the current device
 * in NEXT extents of EXTENT_SIZE bytes (a multiple of 1024, or one extent
 * holding everything), whose device pointers are in EXTENTS (a host array),
 * using SCRATCH (the fs-verity digest's: its extent table, its digest and its
 * level buffer A, whose MAX_BLOCKS hashes hold the tree's nodes, a warp's 32
 * chunks to one). Every 1024-byte chunk is compressed in parallel, a thread
 * each, and a warp merges its 32; then each level of parents, then the root;
 * only the 32-byte hash is copied back, into OUT. Runs on STREAM (a
 * cudaStream_t) and waits for it. Returns 0 or a cudaError_t value
 * (cudaErrorInvalidValue for a file larger than the scratch serves, or
 * extents that cut a chunk).
 */
int vr_cuda_blake3(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		   uint64_t size, const struct vr_cuda_scratch *scratch, void *stream,
		   uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
