/* fsverity_kernel.h - C entry to the CUDA fs-verity kernels (cuda/fsverity_kernel.cu). */
#ifndef VR_FSVERITY_KERNEL_H
#define VR_FSVERITY_KERNEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * fs-verity file digest of SIZE bytes held on the current device in NEXT
 * extents of EXTENT_SIZE bytes (a multiple of 4096), whose device pointers
 * are in EXTENTS (a host array). Leaf hashes of all 4096-byte blocks run in
 * parallel, then each tree level, then the descriptor; only the 32-byte
 * digest is copied back, into OUT. Runs on STREAM (a cudaStream_t) and
 * waits for it. Returns 0 or a cudaError_t value.
 */
int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
		     uint64_t size, void *stream, uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
