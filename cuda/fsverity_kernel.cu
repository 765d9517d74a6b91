/* fsverity_kernel.cu - the fs-verity Merkle tree on the GPU, 4096-byte blocks in parallel. */
#include "fsverity_kernel.h"

#include <cuda_runtime.h>
#include <stdint.h>

#define BLOCK	      4096
#define WARPS_PER_CTA 4

__constant__ uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

__device__ __forceinline__ uint32_t rotr(uint32_t x, int n)
{
	return __funnelshift_r(x, x, n);
}

__device__ __forceinline__ uint32_t bswap(uint32_t x)
{
	return __byte_perm(x, 0, 0x0123);
}

__device__ void sha256_init(uint32_t h[8])
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
__device__ void sha256_compress(uint32_t h[8], const uint32_t w_in[16])
{
	uint32_t w[16];
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];

#pragma unroll
	for (int i = 0; i < 16; i++)
		w[i] = w_in[i];
#pragma unroll
	for (int i = 0; i < 64; i++) {
		if (i >= 16) {
			uint32_t s0 = rotr(w[(i + 1) & 15], 7) ^ rotr(w[(i + 1) & 15], 18) ^
				      (w[(i + 1) & 15] >> 3);
			uint32_t s1 = rotr(w[(i + 14) & 15], 17) ^ rotr(w[(i + 14) & 15], 19) ^
				      (w[(i + 14) & 15] >> 10);
			w[i & 15] += s0 + w[(i + 9) & 15] + s1;
		}
		uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
			      K256[i] + w[i & 15];
		uint32_t t2 =
		    (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
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

/* The padding chunk that ends the SHA-256 of a 4096-byte message. */
__device__ void sha256_finish_4096(uint32_t h[8])
{
	uint32_t pad[16] = {0x80000000u};

#pragma unroll
	for (int i = 1; i < 15; i++)
		pad[i] = 0;
	pad[15] = BLOCK * 8;
	sha256_compress(h, pad);
}

/*
 * Hashes NBLOCKS 4096-byte blocks (zero-padded past SIZE bytes) held in
 * extents of EXT_SIZE bytes; one thread per block. A warp loads its 32 blocks
 * 64 bytes at a time through shared memory, four lanes per contiguous 64-byte
 * piece, so global loads are coalesced rather than 4 KiB apart.
 */
__global__ void hash_blocks(const uint8_t *const *ext, uint64_t ext_size, uint64_t size,
			    uint64_t nblocks, uint8_t *out)
{
	/* 17 words a row: a lane's row read hits 32 different banks */
	__shared__ uint32_t stage[WARPS_PER_CTA][32][17];
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const uint64_t first = ((uint64_t)blockIdx.x * WARPS_PER_CTA + warp) * 32;
	const uint64_t mine = first + lane;
	uint32_t h[8];

	if (first >= nblocks)
		return;
	sha256_init(h);
	for (int chunk = 0; chunk < BLOCK / 64; chunk++) {
#pragma unroll
		for (int round = 0; round < 4; round++) {
			int b = round * 8 + lane / 4, part = lane % 4;
			uint64_t blk = first + b;
			uint64_t off = blk * BLOCK + (uint64_t)chunk * 64 + (uint64_t)part * 16;
			uint4 v = make_uint4(0, 0, 0, 0);

			if (blk < nblocks && off < size) {
				const uint8_t *p = ext[off / ext_size] + off % ext_size;

				if (off + 16 <= size) {
					v = *(const uint4 *)p;
				} else {
					union {
						uint4 v;
						uint8_t b[16];
					} t = {};

					for (uint64_t i = 0; off + i < size; i++)
						t.b[i] = p[i];
					v = t.v;
				}
			}
			stage[warp][b][part * 4] = v.x;
			stage[warp][b][part * 4 + 1] = v.y;
			stage[warp][b][part * 4 + 2] = v.z;
			stage[warp][b][part * 4 + 3] = v.w;
		}
		__syncwarp();
		const uint32_t *words = stage[warp][lane];
		uint32_t w[16];

#pragma unroll
		for (int i = 0; i < 16; i++)
			w[i] = bswap(words[i]);
		__syncwarp();
		sha256_compress(h, w);
	}
	sha256_finish_4096(h);
	if (mine < nblocks) {
		uint32_t *o = (uint32_t *)(out + mine * 32);

#pragma unroll
		for (int i = 0; i < 8; i++)
			o[i] = bswap(h[i]);
	}
}

/* The file digest: SHA-256 of the 256-byte fsverity_descriptor around ROOT (NULL: zeros). */
__global__ void descriptor(const uint8_t *root, uint64_t size, uint8_t *out)
{
	uint8_t d[256];
	uint32_t h[8], w[16];

	for (int i = 0; i < 256; i++)
		d[i] = 0;
	d[0] = 1;  /* version */
	d[1] = 1;  /* SHA-256 */
	d[2] = 12; /* log2(4096) */
	for (int i = 0; i < 8; i++)
		d[8 + i] = (uint8_t)(size >> (8 * i));
	if (root)
		for (int i = 0; i < 32; i++)
			d[16 + i] = root[i];
	sha256_init(h);
	for (int c = 0; c < 4; c++) {
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)d[c * 64 + 4 * i] << 24 |
			       (uint32_t)d[c * 64 + 4 * i + 1] << 16 |
			       (uint32_t)d[c * 64 + 4 * i + 2] << 8 | d[c * 64 + 4 * i + 3];
		sha256_compress(h, w);
	}
	for (int i = 0; i < 16; i++)
		w[i] = 0;
	w[0] = 0x80000000u;
	w[15] = 256 * 8;
	sha256_compress(h, w);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

static cudaError_t launch_hash(const uint8_t *const *d_ext, uint64_t ext_size, uint64_t size,
			       uint8_t *out, cudaStream_t s)
{
	uint64_t nblocks = size / BLOCK + (size % BLOCK != 0);
	uint64_t per_cta = 32 * WARPS_PER_CTA;
	uint64_t ctas = nblocks / per_cta + (nblocks % per_cta != 0);

	if (ctas == 0)
		return cudaSuccess;
	if (ctas > 0x7fffffffULL)
		return cudaErrorInvalidValue;
	hash_blocks<<<(unsigned)ctas, 32 * WARPS_PER_CTA, 0, s>>>(d_ext, ext_size, size, nblocks,
								  out);
	return cudaGetLastError();
}

extern "C" int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
				uint64_t size, void *stream, uint8_t out[32])
{
	cudaStream_t s = (cudaStream_t)stream;
	uint64_t nblocks = size / BLOCK + (size % BLOCK != 0);
	uint64_t n1 = nblocks / 128 + (nblocks % 128 != 0);
	const uint8_t **d_ext = NULL, **d_lvl = NULL;
	uint8_t *a = NULL, *b = NULL, *d_out = NULL;
	cudaError_t e;

	if ((e = cudaMalloc((void **)&d_out, 32)) != cudaSuccess)
		return e;
	if (size == 0) {
		descriptor<<<1, 1, 0, s>>>(NULL, 0, d_out);
		e = cudaGetLastError();
		goto copy_out;
	}
	if ((e = cudaMalloc((void **)&d_ext, sizeof(void *) * next)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&d_lvl, sizeof(void *) * 2)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&a, nblocks * 32)) != cudaSuccess ||
	    (e = cudaMalloc((void **)&b, (n1 ? n1 : 1) * 32)) != cudaSuccess)
		goto free_all;
	if ((e = cudaMemcpyAsync(d_ext, extents, sizeof(void *) * next, cudaMemcpyHostToDevice,
				 s)) != cudaSuccess)
		goto free_all;
	if ((e = launch_hash(d_ext, extent_size, size, a, s)) != cudaSuccess)
		goto free_all;
	{
		/* levels: each hashes the previous level's packed hashes, block by block */
		uint64_t n = nblocks;
		const uint8_t *ptrs[2] = {a, b};

		if ((e = cudaMemcpyAsync(d_lvl, ptrs, sizeof(ptrs), cudaMemcpyHostToDevice, s)) !=
		    cudaSuccess)
			goto free_all;
		int cur = 0;

		while (n > 1) {
			/* d_lvl[cur] is a one-extent table over the current level */
			if ((e = launch_hash(d_lvl + cur, UINT64_MAX / 2, n * 32,
					     (uint8_t *)ptrs[cur ^ 1], s)) != cudaSuccess)
				goto free_all;
			n = n / 128 + (n % 128 != 0);
			cur ^= 1;
		}
		descriptor<<<1, 1, 0, s>>>(ptrs[cur], size, d_out);
		e = cudaGetLastError();
	}
copy_out:
	if (e == cudaSuccess)
		e = cudaMemcpyAsync(out, d_out, 32, cudaMemcpyDeviceToHost, s);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(s);
free_all:
	/* the stream must be idle before its scratch goes */
	if (e != cudaSuccess)
		cudaStreamSynchronize(s);
	cudaFree(d_out);
	cudaFree(d_ext);
	cudaFree(d_lvl);
	cudaFree(a);
	cudaFree(b);
	return (int)e;
}
