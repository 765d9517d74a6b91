/* fsverity_kernel.cu - the fs-verity Merkle tree on the GPU, 4096-byte blocks in parallel. */
#include "fsverity_kernel.h"

#include "fsverity_common.cuh"

#include <cuda_runtime.h>
#include <stdint.h>

#define BLOCK	      VR_FSV_BLOCK_SIZE
#define WARPS_PER_CTA VR_GPU_WARPS_PER_CTA

/*
 * Hashes NBLOCKS 4096-byte blocks (zero-padded past SIZE bytes) held in
 * extents of EXT_SIZE bytes; one thread per block. A warp loads its 32 blocks
 * 64 bytes at a time through shared memory, four lanes per contiguous 64-byte
 * piece, so global loads are coalesced rather than 4 KiB apart.
 */
__global__ void hash_blocks(const uint8_t *const *ext, uint64_t ext_size, uint64_t size,
			    uint64_t nblocks, uint8_t *out)
{
	__shared__ uint32_t stage[WARPS_PER_CTA][32][VR_GPU_ROW_WORDS];
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const uint64_t first = ((uint64_t)blockIdx.x * WARPS_PER_CTA + warp) * 32;
	struct vr_lane_blocks lb;
	uint32_t h[8];

	if (first >= nblocks)
		return; /* the whole warp: __syncwarp below stays uniform */
	vr_lane_blocks_init(ext, ext_size, size, nblocks, first, lane, &lb);
	vr_sha256_init(h);
	for (int chunk = 0; chunk < BLOCK / 64; chunk++) {
		vr_lane_stage_chunk(&lb, lane, chunk, stage[warp]);
		__syncwarp();
		vr_stage_compress(stage[warp], lane, h);
		__syncwarp();
	}
	vr_sha256_finish_4096(h);
	if (first + lane < nblocks)
		vr_sha256_store(h, out + (first + lane) * VR_DIGEST_SIZE);
}

/* The file digest from the root hash (NULL for an empty file), on one thread. */
__global__ void descriptor(const uint8_t *root, uint64_t size, uint8_t *out)
{
	vr_descriptor_hash(root, size, out);
}

static cudaError_t launch_hash(const uint8_t *const *d_ext, uint64_t ext_size, uint64_t size,
			       uint8_t *out, cudaStream_t s)
{
	uint64_t nblocks = vr_fsv_blocks(size);
	uint64_t per_cta = 32 * WARPS_PER_CTA;
	uint64_t ctas = nblocks / per_cta + (nblocks % per_cta != 0);

	if (ctas == 0)
		return cudaSuccess;
	/* a block must not straddle two extents (vr_lane_blocks_init) */
	if (ext_size % BLOCK != 0 && ext_size < size)
		return cudaErrorInvalidValue;
	if (ctas > 0x7fffffffULL)
		return cudaErrorInvalidValue;
	hash_blocks<<<(unsigned)ctas, 32 * WARPS_PER_CTA, 0, s>>>(d_ext, ext_size, size, nblocks,
								  out);
	return cudaGetLastError();
}

extern "C" int vr_cuda_fsverity(const uint8_t *const *extents, uint32_t next, uint64_t extent_size,
				uint64_t size, const struct vr_cuda_scratch *sc, void *stream,
				uint8_t out[32])
{
	cudaStream_t s = (cudaStream_t)stream;
	uint64_t nblocks = vr_fsv_blocks(size);
	cudaError_t e;

	/* an earlier failed call on this thread (a handled cudaMalloc out of memory, say) must
	 * not be taken for this launch's failure: clear it; a sticky error stays and shows below */
	(void)cudaGetLastError();
	if (nblocks > sc->max_blocks || next > sc->max_extents)
		return cudaErrorInvalidValue;
	if (size == 0) {
		descriptor<<<1, 1, 0, s>>>(NULL, 0, sc->out);
		e = cudaGetLastError();
		goto copy_out;
	}
	if ((e = cudaMemcpyAsync(sc->ext, extents, sizeof(void *) * next, cudaMemcpyHostToDevice,
				 s)) != cudaSuccess)
		goto done;
	if ((e = launch_hash(sc->ext, extent_size, size, sc->a, s)) != cudaSuccess)
		goto done;
	{
		/* levels: each hashes the previous level's packed hashes, block by block */
		uint64_t n = nblocks;
		const uint8_t *ptrs[2] = {sc->a, sc->b};

		if ((e = cudaMemcpyAsync(sc->lvl, ptrs, sizeof(ptrs), cudaMemcpyHostToDevice, s)) !=
		    cudaSuccess)
			goto done;
		int cur = 0;

		while (n > 1) {
			/* lvl[cur] is a one-extent table over the current level */
			if ((e = launch_hash(sc->lvl + cur, UINT64_MAX / 2, n * VR_DIGEST_SIZE,
					     (uint8_t *)ptrs[cur ^ 1], s)) != cudaSuccess)
				goto done;
			n = vr_fsv_level_up(n);
			cur ^= 1;
		}
		descriptor<<<1, 1, 0, s>>>(ptrs[cur], size, sc->out);
		e = cudaGetLastError();
	}
copy_out:
	if (e == cudaSuccess)
		e = cudaMemcpyAsync(out, sc->out, VR_DIGEST_SIZE, cudaMemcpyDeviceToHost, s);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(s);
done:
	/* the stream must be idle before the scratch serves the next digest */
	if (e != cudaSuccess)
		cudaStreamSynchronize(s);
	return (int)e;
}
