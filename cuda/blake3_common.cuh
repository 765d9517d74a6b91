/* blake3_common.cuh - BLAKE3's compression, chunk and parent steps, for device and host. */
#ifndef VR_BLAKE3_COMMON_CUH
#define VR_BLAKE3_COMMON_CUH

/*
 * Everything the BLAKE3 kernel computes per lane lives here as __host__
 * __device__ code, so tests/unit/test_cuda_blake3_emulated.cu can run the
 * kernel's exact steps on the CPU, warp by warp, and compare them with
 * core/blake3.c. Written from the specification (as core/blake3.c is).
 *
 * The tree: chunk I's chaining value, then pairwise levels in which an odd
 * last node is carried up unchanged. That is BLAKE3's tree: at level J node I
 * covers chunks [I 2^J, min((I + 1) 2^J, N)); a node that has a right sibling
 * covers more than 2^J chunks and at most 2^(J+1), so its left child (2^J
 * chunks) is the largest power of two below its count, the specification's
 * split; a node without one is the same subtree one level up.
 */
#include <cuda_runtime.h>
#include <stdint.h>

#include "blake3_kernel.h"

#define VR_B3_BLOCK	    64
#define VR_B3_WARPS_PER_CTA 4
#define VR_B3_ROW_WORDS	    17 /* a staged row, padded so lanes' reads hit distinct banks */

/* Domain flags (the specification's table 3): the plain hash uses no others. */
#define VR_B3_CHUNK_START (1u << 0)
#define VR_B3_CHUNK_END	  (1u << 1)
#define VR_B3_PARENT	  (1u << 2)
#define VR_B3_ROOT	  (1u << 3)

__host__ __device__ static inline uint32_t vr_b3_rotr(uint32_t x, int n)
{
#ifdef __CUDA_ARCH__
	return __funnelshift_r(x, x, n);
#else
	return (x >> n) | (x << (32 - n));
#endif
}

/* The IV (SHA-256's): the plain hash's key words. */
__host__ __device__ static inline void vr_b3_iv(uint32_t k[8])
{
	k[0] = 0x6A09E667;
	k[1] = 0xBB67AE85;
	k[2] = 0x3C6EF372;
	k[3] = 0xA54FF53A;
	k[4] = 0x510E527F;
	k[5] = 0x9B05688C;
	k[6] = 0x1F83D9AB;
	k[7] = 0x5BE0CD19;
}

#define VR_B3_G(v, a, b, c, d, x, y)                                                               \
	do {                                                                                       \
		v[a] += v[b] + (x);                                                                \
		v[d] = vr_b3_rotr(v[d] ^ v[a], 16);                                                \
		v[c] += v[d];                                                                      \
		v[b] = vr_b3_rotr(v[b] ^ v[c], 12);                                                \
		v[a] += v[b] + (y);                                                                \
		v[d] = vr_b3_rotr(v[d] ^ v[a], 8);                                                 \
		v[c] += v[d];                                                                      \
		v[b] = vr_b3_rotr(v[b] ^ v[c], 7);                                                 \
	} while (0)

/* The message permutation between rounds, with fixed indices (registers on a GPU once
 * unrolled, no table lookups). */
__host__ __device__ static inline void vr_b3_permute(uint32_t m[16])
{
	uint32_t t[16] = {m[2], m[6],  m[3],  m[10], m[7], m[0],  m[4],	 m[13],
			  m[1], m[11], m[12], m[5],  m[9], m[14], m[15], m[8]};

#pragma unroll
	for (int i = 0; i < 16; i++)
		m[i] = t[i];
}

/*
 * The compression function: chaining value CV becomes the first 8 output words
 * of compressing the 16 little-endian message words M_IN (a block zero-padded
 * to 64 bytes, LEN of them real) with COUNTER and FLAGS. With ROOT set those
 * words are the hash's 32 bytes.
 */
__host__ __device__ static inline void vr_b3_compress(uint32_t cv[8], const uint32_t m_in[16],
						      uint64_t counter, uint32_t len,
						      uint32_t flags)
{
	uint32_t m[16], v[16];

#pragma unroll
	for (int i = 0; i < 16; i++)
		m[i] = m_in[i];
#pragma unroll
	for (int i = 0; i < 8; i++)
		v[i] = cv[i];
	vr_b3_iv(v + 8); /* only its first four words stay */
	v[12] = (uint32_t)counter;
	v[13] = (uint32_t)(counter >> 32);
	v[14] = len;
	v[15] = flags;
#pragma unroll
	for (int r = 0; r < 7; r++) {
		VR_B3_G(v, 0, 4, 8, 12, m[0], m[1]);
		VR_B3_G(v, 1, 5, 9, 13, m[2], m[3]);
		VR_B3_G(v, 2, 6, 10, 14, m[4], m[5]);
		VR_B3_G(v, 3, 7, 11, 15, m[6], m[7]);
		VR_B3_G(v, 0, 5, 10, 15, m[8], m[9]);
		VR_B3_G(v, 1, 6, 11, 12, m[10], m[11]);
		VR_B3_G(v, 2, 7, 8, 13, m[12], m[13]);
		VR_B3_G(v, 3, 4, 9, 14, m[14], m[15]);
		if (r < 6)
			vr_b3_permute(m);
	}
#pragma unroll
	for (int i = 0; i < 8; i++)
		cv[i] = v[i] ^ v[i + 8];
}

/* The parent of LEFT and RIGHT into OUT (which may be LEFT); ROOT: VR_B3_ROOT or 0. */
__host__ __device__ static inline void vr_b3_parent(const uint32_t left[8], const uint32_t right[8],
						    uint32_t root, uint32_t out[8])
{
	uint32_t m[16];

#pragma unroll
	for (int i = 0; i < 8; i++) {
		m[i] = left[i];
		m[8 + i] = right[i];
	}
	vr_b3_iv(out);
	vr_b3_compress(out, m, 0, VR_B3_BLOCK, VR_B3_PARENT | root);
}

/*
 * Which 16 bytes lane LANE loads in ROUND (0-3) of each block: chunk C of the
 * warp's 32 and the piece PART (0-3) of that chunk's 64-byte block. Four
 * neighbouring lanes read one contiguous 64 bytes.
 */
__host__ __device__ static inline void vr_b3_lane_piece(int lane, int round, int *c, int *part)
{
	*c = round * 8 + lane / 4;
	*part = lane % 4;
}

/*
 * Where the four chunks lane LANE loads from begin, and how many of their
 * bytes the input holds (1024, fewer in the last chunk, 0 past the end).
 * Computed once: a chunk never straddles extents (an extent is a whole number
 * of chunks, or one extent holds everything: the launcher checks).
 */
struct vr_b3_lane_chunks {
	const uint8_t *base[4];
	uint32_t avail[4];
};

__host__ __device__ static inline void vr_b3_lane_chunks_init(const uint8_t *const *ext,
							      uint64_t ext_size, uint64_t size,
							      uint64_t first, int lane,
							      struct vr_b3_lane_chunks *lc)
{
	for (int round = 0; round < 4; round++) {
		int c, part;

		vr_b3_lane_piece(lane, round, &c, &part);
		uint64_t off = (first + c) * VR_B3_CHUNK;

		lc->base[round] = 0;
		lc->avail[round] = 0;
		if (off >= size)
			continue;
		lc->base[round] = ext[off / ext_size] + off % ext_size;
		lc->avail[round] = size - off < VR_B3_CHUNK ? (uint32_t)(size - off) : VR_B3_CHUNK;
	}
}

/* The 16 bytes at offset O of a chunk whose first AVAIL bytes exist (zeros past them). */
__host__ __device__ static inline uint4 vr_b3_load16(const uint8_t *base, uint32_t avail,
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

/*
 * Lane LANE's part of staging block B (0-15) of the warp's 32 chunks (whose
 * starts LC holds): four loads of 16 bytes into the chunks' rows.
 */
__host__ __device__ static inline void vr_b3_lane_stage(const struct vr_b3_lane_chunks *lc,
							int lane, int b,
							uint32_t (*stage)[VR_B3_ROW_WORDS])
{
	for (int round = 0; round < 4; round++) {
		int c, part;

		vr_b3_lane_piece(lane, round, &c, &part);
		uint4 v = vr_b3_load16(lc->base[round], lc->avail[round],
				       (uint32_t)(b * VR_B3_BLOCK + part * 16));

		stage[c][part * 4] = v.x;
		stage[c][part * 4 + 1] = v.y;
		stage[c][part * 4 + 2] = v.z;
		stage[c][part * 4 + 3] = v.w;
	}
}

/* Bytes of chunk C of a SIZE-byte input (0 for the empty input's one chunk). */
__host__ __device__ static inline uint32_t vr_b3_chunk_len(uint64_t size, uint64_t c)
{
	uint64_t off = c * VR_B3_CHUNK;

	if (off >= size)
		return 0;
	return size - off < VR_B3_CHUNK ? (uint32_t)(size - off) : VR_B3_CHUNK;
}

/*
 * Block B (0-15) of chunk C, LEN bytes long, staged in ROW, compressed into
 * CV (which starts as the IV); blocks past the chunk's end leave CV alone.
 * ROOT (VR_B3_ROOT or 0) goes on the last block: the input is this one chunk.
 */
__host__ __device__ static inline void vr_b3_chunk_block(uint32_t cv[8], const uint32_t *row,
							 uint64_t c, uint32_t len, int b,
							 uint32_t root)
{
	int nb = len == 0 ? 1 : (int)((len + VR_B3_BLOCK - 1) / VR_B3_BLOCK);
	uint32_t m[16], flags = 0;

	if (b >= nb)
		return;
	if (b == 0)
		flags |= VR_B3_CHUNK_START;
	if (b == nb - 1)
		flags |= VR_B3_CHUNK_END | root;
	for (int i = 0; i < 16; i++)
		m[i] = row[i];
	vr_b3_compress(cv, m, c, b == nb - 1 ? len - (uint32_t)b * VR_B3_BLOCK : VR_B3_BLOCK,
		       flags);
}

/*
 * At merge level S (1, 2, 4, 8, 16) of the warp whose first chunk is FIRST,
 * whether lane LANE takes the node S lanes up as its right child: it starts a
 * pair at that level and the right node holds a chunk (of N).
 */
__host__ __device__ static inline bool vr_b3_lane_merges(uint64_t first, int lane, int s,
							 uint64_t n)
{
	return lane % (2 * s) == 0 && first + (uint64_t)lane + (uint64_t)s < n;
}

/* Node I of the level above M nodes at IN, into OUT[I] (ROOT on the root). */
__host__ __device__ static inline void vr_b3_parent_step(const uint32_t (*in)[8], uint64_t m,
							 uint64_t i, uint32_t root,
							 uint32_t (*out)[8])
{
	if (2 * i + 1 < m) {
		vr_b3_parent(in[2 * i], in[2 * i + 1], root, out[i]);
		return;
	}
	for (int k = 0; k < 8; k++)
		out[i][k] = in[2 * i][k];
}

#endif
