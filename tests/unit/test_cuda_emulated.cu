/* test_cuda_emulated.cu - the CUDA kernel's per-lane steps run on the CPU, warp by warp, vs the
 * core. */
#include "../../cuda/fsverity_common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

extern "C" {
#include "check.h"
#include "digest.h"
#include "rng.h"
}

/*
 * hash_blocks as the GPU runs it: every warp of every CTA, lanes in lock step,
 * staging through the same rows with the same per-lane helpers.
 */
static void emulate_hash_blocks(const uint8_t *const *ext, uint64_t ext_size, uint64_t size,
				uint64_t nblocks, uint8_t *out)
{
	const uint64_t per_cta = 32 * VR_GPU_WARPS_PER_CTA;
	const uint64_t ctas = nblocks / per_cta + (nblocks % per_cta != 0);
	static uint32_t stage[32][VR_GPU_ROW_WORDS];

	for (uint64_t cta = 0; cta < ctas; cta++)
		for (int warp = 0; warp < VR_GPU_WARPS_PER_CTA; warp++) {
			const uint64_t first = (cta * VR_GPU_WARPS_PER_CTA + warp) * 32;
			uint32_t h[32][8];
			struct vr_lane_blocks lb[32];

			if (first >= nblocks)
				continue;
			for (int lane = 0; lane < 32; lane++) {
				vr_lane_blocks_init(ext, ext_size, size, nblocks, first, lane,
						    &lb[lane]);
				vr_sha256_init(h[lane]);
			}
			for (int chunk = 0; chunk < VR_FSV_BLOCK_SIZE / 64; chunk++) {
				memset(stage, 0xee, sizeof(stage)); /* stale rows must not matter */
				for (int lane = 0; lane < 32; lane++)
					vr_lane_stage_chunk(&lb[lane], lane, chunk, stage);
				for (int lane = 0; lane < 32; lane++)
					vr_stage_compress(stage, lane, h[lane]);
			}
			for (int lane = 0; lane < 32; lane++) {
				vr_sha256_finish_4096(h[lane]);
				if (first + lane < nblocks)
					vr_sha256_store(h[lane],
							out + (first + lane) * VR_DIGEST_SIZE);
			}
		}
}

/* The launcher's tree: leaves, then levels over the packed hashes, then the descriptor. */
static void emulate_digest(const uint8_t *const *ext, uint64_t ext_size, uint64_t size,
			   uint8_t out[32])
{
	uint64_t n = vr_fsv_blocks(size);

	if (size == 0) {
		vr_descriptor_hash(NULL, 0, out);
		return;
	}
	std::vector<uint8_t> a(n * VR_DIGEST_SIZE), b(n * VR_DIGEST_SIZE);

	emulate_hash_blocks(ext, ext_size, size, n, a.data());
	while (n > 1) {
		const uint8_t *one[1] = {a.data()};
		uint64_t bytes = n * VR_DIGEST_SIZE, next = vr_fsv_level_up(n);

		emulate_hash_blocks(one, UINT64_MAX / 2, bytes, next, b.data());
		a.swap(b);
		n = next;
	}
	vr_descriptor_hash(a.data(), size, out);
}

int main(int argc, char **argv)
{
	const uint64_t ext_size = 1 << 20;
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	uint64_t sizes[] = {
	    0,	     1, 4095, 4096, 4097, 128 * 4096 - 1, 128 * 4096, 128 * 4096 + 1, (3 << 20) + 5,
	    5 << 20, 0, 0};

	printf("seed %llu\n", (unsigned long long)seed);
	rng_state = seed | 1;
	sizes[10] = rng() % (6 << 20);
	sizes[11] = rng() % 70000;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t size = sizes[i], next = size / ext_size + 1;
		std::vector<uint8_t *> ext(next);
		uint8_t *flat = (uint8_t *)malloc(size ? size : 1), want[32], got[32];

		for (uint64_t j = 0; j < size; j++)
			flat[j] = (uint8_t)(rng() >> 56);
		/* scattered extents, like cudaMalloc's, with junk past the end of the file */
		for (uint64_t e = 0; e < next; e++) {
			ext[e] = (uint8_t *)malloc(ext_size);
			memset(ext[e], 0xa5, ext_size);
			uint64_t n =
			    size - e * ext_size < ext_size ? size - e * ext_size : ext_size;

			if (e * ext_size < size)
				memcpy(ext[e], flat + e * ext_size, n);
		}
		struct vr_span span = {flat, (size_t)size};

		vr_fsv_digest_spans(&span, 1, 1, want);
		emulate_digest(ext.data(), ext_size, size, got);
		if (memcmp(want, got, 32) != 0)
			fprintf(stderr, "size %llu: emulated GPU digest differs from the core's\n",
				(unsigned long long)size);
		CHECK_MEM(want, got, 32);
		for (uint64_t e = 0; e < next; e++)
			free(ext[e]);
		free(flat);
	}
	return check_summary();
}
