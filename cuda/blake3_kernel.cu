/* blake3_kernel.cu - BLAKE3 on the GPU: 1024-byte chunks in parallel, then the tree's levels. */
#include "blake3_kernel.h"

#include "blake3_common.cuh"

#include <cuda_runtime.h>
#include <stdint.h>

#define WARPS_PER_CTA	VR_B3_WARPS_PER_CTA
#define PARENTS_PER_CTA 256

/*
 * Compresses the N chunks of SIZE bytes held in extents of EXT_SIZE bytes,
 * one thread per chunk; a warp loads its 32 chunks' blocks 64 bytes at a
 * time through shared memory, four lanes per contiguous 64-byte piece. Then
 * the warp merges LEVELS levels of its chaining values with shuffles and
 * stores its 32 >> LEVELS nodes (the ones that hold a chunk) in OUT. ROOT:
 * the input is one chunk, whose output is the hash.
 */
__global__ void b3_chunks(const uint8_t *const *ext, uint64_t ext_size, uint64_t size, uint64_t n,
			  int levels, uint32_t root, uint32_t (*out)[8])
{
	__shared__ uint32_t stage[WARPS_PER_CTA][32][VR_B3_ROW_WORDS];
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const uint64_t first = ((uint64_t)blockIdx.x * WARPS_PER_CTA + warp) * 32;
	const uint64_t c = first + lane;
	const uint32_t len = vr_b3_chunk_len(size, c);
	struct vr_b3_lane_chunks lc;
	uint32_t cv[8];

	if (first >= n)
		return; /* the whole warp: the __syncwarp and shuffles below stay uniform */
	vr_b3_lane_chunks_init(ext, ext_size, size, first, lane, &lc);
	vr_b3_iv(cv);
	for (int b = 0; b < VR_B3_CHUNK / VR_B3_BLOCK; b++) {
		vr_b3_lane_stage(&lc, lane, b, stage[warp]);
		__syncwarp();
		if (c < n)
			vr_b3_chunk_block(cv, stage[warp][lane], c, len, b, root);
		__syncwarp();
	}
	for (int l = 0; l < levels; l++) {
		const int s = 1 << l;
		uint32_t right[8];

#pragma unroll
		for (int i = 0; i < 8; i++)
			right[i] = __shfl_down_sync(0xffffffffu, cv[i], s);
		if (vr_b3_lane_merges(first, lane, s, n))
			vr_b3_parent(cv, right, 0, cv);
	}
	if (lane % (1 << levels) == 0 && c < n) {
#pragma unroll
		for (int i = 0; i < 8; i++)
			out[c >> levels][i] = cv[i];
	}
}

/* The level above the M nodes at IN into OUT, a thread per parent; ROOT on the root. */
__global__ void b3_parents(const uint32_t (*in)[8], uint64_t m, uint32_t root, uint32_t (*out)[8])
{
	const uint64_t i = (uint64_t)blockIdx.x * PARENTS_PER_CTA + threadIdx.x;

	if (i < vr_b3_level_up(m))
		vr_b3_parent_step(in, m, i, root, out);
}

static cudaError_t launch_chunks(const uint8_t *const *d_ext, uint64_t ext_size, uint64_t size,
				 uint64_t n, int levels, uint32_t root, uint32_t (*out)[8],
				 cudaStream_t s)
{
	uint64_t per_cta = 32 * WARPS_PER_CTA;
	uint64_t ctas = n / per_cta + (n % per_cta != 0);

	/* a chunk must not straddle two extents (vr_b3_lane_chunks_init) */
	if (ext_size % VR_B3_CHUNK != 0 && ext_size < size)
		return cudaErrorInvalidValue;
	if (ctas > 0x7fffffffULL)
		return cudaErrorInvalidValue;
	b3_chunks<<<(unsigned)ctas, 32 * WARPS_PER_CTA, 0, s>>>(d_ext, ext_size, size, n, levels,
								root, out);
	return cudaGetLastError();
}

static cudaError_t launch_parents(const uint32_t (*in)[8], uint64_t m, uint32_t root,
				  uint32_t (*out)[8], cudaStream_t s)
{
	uint64_t up = vr_b3_level_up(m);
	uint64_t ctas = up / PARENTS_PER_CTA + (up % PARENTS_PER_CTA != 0);

	if (ctas > 0x7fffffffULL)
		return cudaErrorInvalidValue;
	b3_parents<<<(unsigned)ctas, PARENTS_PER_CTA, 0, s>>>(in, m, root, out);
	return cudaGetLastError();
}

/*
 * The launches after the extent table is on the device: the chunks (the
 * whole hash when there is one), each level of parents in the scratch, one
 * after the other, then the root's into the digest. Returns a cudaError_t.
 */
static cudaError_t launch_tree(const struct vr_cuda_scratch *sc, uint64_t ext_size, uint64_t size,
			       cudaStream_t s)
{
	uint64_t n = vr_b3_chunks(size);
	uint32_t(*dig)[8] = (uint32_t(*)[8])sc->out, (*node)[8] = (uint32_t(*)[8])sc->a;
	cudaError_t e;

	if (n == 1)
		return launch_chunks(sc->ext, ext_size, size, 1, 0, VR_B3_ROOT, dig, s);
	int wl = vr_b3_warp_levels(n);
	uint64_t m = (n + ((uint64_t)1 << wl) - 1) >> wl;

	if ((e = launch_chunks(sc->ext, ext_size, size, n, wl, 0, node, s)) != cudaSuccess)
		return e;
	for (; m > 2; m = vr_b3_level_up(m)) {
		if ((e = launch_parents(node, m, 0, node + m, s)) != cudaSuccess)
			return e;
		node += m;
	}
	return launch_parents(node, 2, VR_B3_ROOT, dig, s);
}

extern "C" int vr_cuda_blake3(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
			      uint64_t size, const struct vr_cuda_scratch *sc, void *stream,
			      uint8_t out[32])
{
	cudaStream_t s = (cudaStream_t)stream;
	uint64_t n = vr_b3_chunks(size);
	cudaError_t e = cudaSuccess;

	/* an earlier failed call on this thread must not be taken for this launch's failure */
	(void)cudaGetLastError();
	if ((n > 1 && vr_b3_scratch_nodes(n) > sc->max_blocks) || next > sc->max_extents)
		return cudaErrorInvalidValue;
	if (next > 0)
		e = cudaMemcpyAsync(sc->ext, extents, sizeof(void *) * next, cudaMemcpyHostToDevice,
				    s);
	if (e == cudaSuccess)
		e = launch_tree(sc, extent_size, size, s);
	if (e == cudaSuccess)
		e = cudaMemcpyAsync(out, sc->out, 32, cudaMemcpyDeviceToHost, s);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(s);
	/* the stream must be idle before the scratch serves the next digest */
	if (e != cudaSuccess)
		cudaStreamSynchronize(s);
	return (int)e;
}
