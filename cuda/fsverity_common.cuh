/* fsverity_common.cuh - SHA-256 and the fs-verity kernel's per-lane steps, for device and host. */
#ifndef VR_FSVERITY_COMMON_CUH
#define VR_FSVERITY_COMMON_CUH

/*
 * Everything the kernel computes per lane lives here as __host__ __device__
 * code, so tests/unit/test_cuda_emulated.cu can run the kernel's exact steps
 * on the CPU, warp by warp, and compare them with the core's digest.
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "fsverity_geom.h"

#define VR_GPU_WARPS_PER_CTA 4
#define VR_GPU_ROW_WORDS     17 /* a staged row, padded so lanes' reads hit distinct banks */

#define VR_SHA256_K                                                                                \
	{                                                                                          \
		0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,            \
		    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,        \
		    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,        \
		    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,        \
		    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,        \
		    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,        \
		    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,        \
		    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,        \
		    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,        \
		    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,        \
		    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2                                 \
	}

__constant__ uint32_t vr_k256_dev[64] = VR_SHA256_K;
static const uint32_t vr_k256_host[64] = VR_SHA256_K;

__host__ __device__ static inline uint32_t vr_k256(int i)
{
#ifdef __CUDA_ARCH__
	return vr_k256_dev[i];
#else
	return vr_k256_host[i];
#endif
}

__host__ __device__ static inline uint32_t vr_rotr(uint32_t x, int n)
{
#ifdef __CUDA_ARCH__
	return __funnelshift_r(x, x, n);
#else
	return (x >> n) | (x << (32 - n));
#endif
}

/* Little-endian load order to SHA-256's big-endian words. */
__host__ __device__ static inline uint32_t vr_bswap(uint32_t x)
{
#ifdef __CUDA_ARCH__
	return __byte_perm(x, 0, 0x0123);
#else
	return (x >> 24) | ((x >> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24);
#endif
}

__host__ __device__ static inline void vr_sha256_init(uint32_t h[8])
{
	h[0] = 0x6a09e667;
	h[1] = 0xbb67ae85;
	h[2] = 0x3c6ef372;
	h[3] = 0xa54ff53a;
	h[4] = 0x510e527f;
	h[5] = 0x9b05688c;
	h[6] = 0x1f83d9ab;
	h[7] = 0x5be0cd19;
}

/* One compression of a 64-byte chunk given as 16 big-endian words. */
__host__ __device__ static inline void vr_sha256_compress(uint32_t h[8], const uint32_t w_in[16])
{
	uint32_t w[16];
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];

#pragma unroll
	for (int i = 0; i < 16; i++)
		w[i] = w_in[i];
#pragma unroll
	for (int i = 0; i < 64; i++) {
		if (i >= 16) {
			uint32_t s0 = vr_rotr(w[(i + 1) & 15], 7) ^ vr_rotr(w[(i + 1) & 15], 18) ^
				      (w[(i + 1) & 15] >> 3);
			uint32_t s1 = vr_rotr(w[(i + 14) & 15], 17) ^
				      vr_rotr(w[(i + 14) & 15], 19) ^ (w[(i + 14) & 15] >> 10);
			w[i & 15] += s0 + w[(i + 9) & 15] + s1;
		}
		uint32_t t1 = k + (vr_rotr(e, 6) ^ vr_rotr(e, 11) ^ vr_rotr(e, 25)) +
			      ((e & f) ^ (~e & g)) + vr_k256(i) + w[i & 15];
		uint32_t t2 = (vr_rotr(a, 2) ^ vr_rotr(a, 13) ^ vr_rotr(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));
		k = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += k;
}

/* The padding chunk that ends the SHA-256 of a one-block (4096-byte) message. */
__host__ __device__ static inline void vr_sha256_finish_4096(uint32_t h[8])
{
	uint32_t pad[16];

	pad[0] = 0x80000000u;
	for (int i = 1; i < 15; i++)
		pad[i] = 0;
	pad[15] = VR_FSV_BLOCK_SIZE * 8;
	vr_sha256_compress(h, pad);
}

/* The 8 state words as the 32 digest bytes, stored as little-endian words. */
__host__ __device__ static inline void vr_sha256_store(const uint32_t h[8], uint8_t *out)
{
	uint32_t *o = (uint32_t *)out;

	for (int i = 0; i < 8; i++)
		o[i] = vr_bswap(h[i]);
}

/*
 * Which 16 bytes lane LANE loads in ROUND (0-3) of CHUNK (0-63): block B of
 * the warp's 32 and the piece PART (0-3) of that block's 64-byte chunk. Four
 * neighbouring lanes read one contiguous 64 bytes: the loads coalesce.
 */
__host__ __device__ static inline void vr_lane_piece(int lane, int round, int *b, int *part)
{
	*b = round * 8 + lane / 4;
	*part = lane % 4;
}

/*
 * Where the four blocks lane LANE loads from (one per round) begin, and how
 * many of their bytes the file holds (4096, fewer in the last block, 0 past the
 * end). Computed once per block, not per load: the 64-bit division that finds
 * the extent is dozens of instructions on a GPU, and a block never straddles
 * extents (an extent is a whole number of blocks, or, for the upper levels,
 * one extent holds everything).
 */
struct vr_lane_blocks {
	const uint8_t *base[4];
	uint32_t avail[4];
};

__host__ __device__ static inline void vr_lane_blocks_init(const uint8_t *const *ext,
							   uint64_t ext_size, uint64_t size,
							   uint64_t nblocks, uint64_t first,
							   int lane, struct vr_lane_blocks *lb)
{
	for (int round = 0; round < 4; round++) {
		int b, part;

		vr_lane_piece(lane, round, &b, &part);
		uint64_t blk = first + b, off = blk * VR_FSV_BLOCK_SIZE;

		lb->base[round] = 0;
		lb->avail[round] = 0;
		if (blk >= nblocks || off >= size)
			continue;
		lb->base[round] = ext[off / ext_size] + off % ext_size;
		lb->avail[round] =
		    size - off < VR_FSV_BLOCK_SIZE ? (uint32_t)(size - off) : VR_FSV_BLOCK_SIZE;
	}
}

/* The 16 bytes at offset O of a block whose first AVAIL bytes exist (zeros past them). */
__host__ __device__ static inline uint4 vr_block_load16(const uint8_t *base, uint32_t avail,
							uint32_t o)
{
	union {
		uint4 v;
		uint8_t b[16];
	} t;

	if (o + 16 <= avail)
		return *(const uint4 *)(base + o);
	t.v = make_uint4(0, 0, 0, 0);
	for (uint32_t i = 0; o + i < avail; i++)
		t.b[i] = base[o + i];
	return t.v;
}

/* Stores a loaded piece into block B's row of a warp's stage. */
__host__ __device__ static inline void vr_stage_put(uint32_t (*stage)[VR_GPU_ROW_WORDS], int b,
						    int part, uint4 v)
{
	stage[b][part * 4] = v.x;
	stage[b][part * 4 + 1] = v.y;
	stage[b][part * 4 + 2] = v.z;
	stage[b][part * 4 + 3] = v.w;
}

/*
 * Lane LANE's part of staging CHUNK (0-63) of the warp's 32 blocks (whose
 * starts LB holds): four loads of 16 bytes into the warp's rows.
 */
__host__ __device__ static inline void vr_lane_stage_chunk(const struct vr_lane_blocks *lb,
							   int lane, int chunk,
							   uint32_t (*stage)[VR_GPU_ROW_WORDS])
{
	for (int round = 0; round < 4; round++) {
		int b, part;

		vr_lane_piece(lane, round, &b, &part);
		vr_stage_put(stage, b, part,
			     vr_block_load16(lb->base[round], lb->avail[round],
					     (uint32_t)(chunk * 64 + part * 16)));
	}
}

/* Compresses lane LANE's staged 64 bytes into its state. */
__host__ __device__ static inline void vr_stage_compress(uint32_t (*stage)[VR_GPU_ROW_WORDS],
							 int lane, uint32_t h[8])
{
	uint32_t w[16];

	for (int i = 0; i < 16; i++)
		w[i] = vr_bswap(stage[lane][i]);
	vr_sha256_compress(h, w);
}

/* The file digest: SHA-256 of the 256-byte fsverity_descriptor around ROOT (NULL: zeros). */
__host__ __device__ static inline void vr_descriptor_hash(const uint8_t *root, uint64_t size,
							  uint8_t *out)
{
	uint8_t d[VR_FSV_DESC_SIZE];
	uint32_t h[8], w[16];

	vr_fsv_descriptor(d, root, size);
	vr_sha256_init(h);
	for (int c = 0; c < VR_FSV_DESC_SIZE / 64; c++) {
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)d[c * 64 + 4 * i] << 24 |
			       (uint32_t)d[c * 64 + 4 * i + 1] << 16 |
			       (uint32_t)d[c * 64 + 4 * i + 2] << 8 | d[c * 64 + 4 * i + 3];
		vr_sha256_compress(h, w);
	}
	for (int i = 0; i < 16; i++)
		w[i] = 0;
	w[0] = 0x80000000u;
	w[15] = VR_FSV_DESC_SIZE * 8;
	vr_sha256_compress(h, w);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

#endif
