/* fsverity_geom.h - fs-verity's tree geometry and descriptor, defined once for host and GPU code.
 */
#ifndef VR_FSVERITY_GEOM_H
#define VR_FSVERITY_GEOM_H

/*
 * The one definition of the digest's shape: SHA-256, 4096-byte blocks, no
 * salt. core/digest.c, the CUDA launcher and kernel (cuda/), and the tests all
 * include this file; nothing else spells these numbers. Plain C that nvcc also
 * compiles for the device.
 */
#include <stdint.h>

#ifdef __CUDACC__
#define VR_GEOM_FN __host__ __device__ static inline
#else
#define VR_GEOM_FN static inline
#endif

#define VR_DIGEST_SIZE	  32 /* SHA-256 */
#define VR_FSV_LOG_BLOCK  12
#define VR_FSV_BLOCK_SIZE (1u << VR_FSV_LOG_BLOCK)
#define VR_FSV_ARITY	  (VR_FSV_BLOCK_SIZE / VR_DIGEST_SIZE) /* hashes per tree block */
/* Data covered by one level-1 tree block: 128 blocks of 4096 bytes. */
#define VR_FSV_UNIT_SIZE  ((uint64_t)VR_FSV_ARITY * VR_FSV_BLOCK_SIZE)
#define VR_FSV_MAX_LEVELS 8

/* struct fsverity_descriptor (linux/fsverity.h): 256 bytes, little-endian */
#define VR_FSV_DESC_SIZE	256
#define VR_FSV_DESC_VERSION	1  /* at byte 0 */
#define VR_FSV_HASH_ALG_SHA256	1  /* at byte 1 */
#define VR_FSV_DESC_OFF_LOGBLK	2  /* log2(block size) */
#define VR_FSV_DESC_OFF_SALTLEN 3  /* 0: no salt */
#define VR_FSV_DESC_OFF_SIZE	8  /* le64 data size */
#define VR_FSV_DESC_OFF_ROOT	16 /* root hash, zero-padded to 64 bytes */

/* Number of 4096-byte data blocks (level 0 hashes) of a file of SIZE bytes. */
VR_GEOM_FN uint64_t vr_fsv_blocks(uint64_t size)
{
	return size / VR_FSV_BLOCK_SIZE + (size % VR_FSV_BLOCK_SIZE != 0);
}

/* Number of hashes one level up from N hashes (each tree block holds VR_FSV_ARITY). */
VR_GEOM_FN uint64_t vr_fsv_level_up(uint64_t n)
{
	return n / VR_FSV_ARITY + (n % VR_FSV_ARITY != 0);
}

/* Fills the 256-byte descriptor of a file of SIZE bytes around ROOT (NULL: an empty file). */
VR_GEOM_FN void vr_fsv_descriptor(uint8_t d[VR_FSV_DESC_SIZE], const uint8_t *root, uint64_t size)
{
	for (int i = 0; i < VR_FSV_DESC_SIZE; i++)
		d[i] = 0;
	d[0] = VR_FSV_DESC_VERSION;
	d[1] = VR_FSV_HASH_ALG_SHA256;
	d[VR_FSV_DESC_OFF_LOGBLK] = VR_FSV_LOG_BLOCK;
	d[VR_FSV_DESC_OFF_SALTLEN] = 0;
	for (int i = 0; i < 8; i++)
		d[VR_FSV_DESC_OFF_SIZE + i] = (uint8_t)(size >> (8 * i));
	if (root)
		for (int i = 0; i < VR_DIGEST_SIZE; i++)
			d[VR_FSV_DESC_OFF_ROOT + i] = root[i];
}

#endif
