/* test_cuda_blake3_emulated.cu - the BLAKE3 kernel's per-lane steps run on the CPU, vs the core. */
#include "../../cuda/blake3_common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vector>

extern "C" {
#include "blake3.h"
#include "check.h"
#include "rng.h"
}

typedef uint32_t node_t[8];

/*
 * b3_chunks as the GPU runs it: every warp of every CTA, lanes in lock step,
 * staging through the same rows with the same per-lane helpers, then the
 * warp's merge levels with __shfl_down_sync played by a copy of the lanes'
 * values. Checks each store lands inside the OUT_NODES nodes at OUT.
 */
static void emulate_chunks(const uint8_t *const *ext, uint64_t ext_size, uint64_t size, uint64_t n,
			   int levels, uint32_t root, node_t *out, uint64_t out_nodes)
{
	const uint64_t per_cta = 32 * VR_B3_WARPS_PER_CTA;
	const uint64_t ctas = n / per_cta + (n % per_cta != 0);
	static uint32_t stage[32][VR_B3_ROW_WORDS];

	for (uint64_t cta = 0; cta < ctas; cta++)
		for (int warp = 0; warp < VR_B3_WARPS_PER_CTA; warp++) {
			const uint64_t first = (cta * VR_B3_WARPS_PER_CTA + warp) * 32;
			struct vr_b3_lane_chunks lc[32];
			uint32_t cv[32][8], shfl[32][8];

			if (first >= n)
				continue;
			for (int lane = 0; lane < 32; lane++) {
				vr_b3_lane_chunks_init(ext, ext_size, size, first, lane, &lc[lane]);
				vr_b3_iv(cv[lane]);
			}
			for (int b = 0; b < VR_B3_CHUNK / VR_B3_BLOCK; b++) {
				memset(stage, 0xee, sizeof(stage)); /* stale rows must not matter */
				for (int lane = 0; lane < 32; lane++)
					vr_b3_lane_stage(&lc[lane], lane, b, stage);
				for (int lane = 0; lane < 32; lane++) {
					uint64_t c = first + lane;

					if (c < n)
						vr_b3_chunk_block(cv[lane], stage[lane], c,
								  vr_b3_chunk_len(size, c), b,
								  root);
				}
			}
			for (int l = 0; l < levels; l++) {
				const int s = 1 << l;

				for (int lane = 0; lane < 32; lane++)
					memcpy(shfl[lane], cv[lane + s < 32 ? lane + s : lane],
					       sizeof(shfl[lane]));
				for (int lane = 0; lane < 32; lane++)
					if (vr_b3_lane_merges(first, lane, s, n))
						vr_b3_parent(cv[lane], shfl[lane], 0, cv[lane]);
			}
			for (int lane = 0; lane < 32; lane++) {
				uint64_t c = first + lane;

				if (lane % (1 << levels) != 0 || c >= n)
					continue;
				CHECK((c >> levels) < out_nodes);
				if ((c >> levels) < out_nodes)
					memcpy(out[c >> levels], cv[lane], sizeof(node_t));
			}
		}
}

/* b3_parents: a thread per parent. */
static void emulate_parents(const node_t *in, uint64_t m, uint32_t root, node_t *out)
{
	for (uint64_t i = 0; i < vr_b3_level_up(m); i++)
		vr_b3_parent_step(in, m, i, root, out);
}

/* The launcher's tree (launch_tree), over a scratch of exactly the nodes it asks for. */
static void emulate_blake3(const uint8_t *const *ext, uint64_t ext_size, uint64_t size,
			   uint8_t out[32])
{
	uint64_t n = vr_b3_chunks(size);
	node_t dig;

	if (n == 1) {
		emulate_chunks(ext, ext_size, size, 1, 0, VR_B3_ROOT, &dig, 1);
	} else {
		int wl = vr_b3_warp_levels(n);
		uint64_t m = (n + ((uint64_t)1 << wl) - 1) >> wl, need = vr_b3_scratch_nodes(n);
		std::vector<uint32_t> scratch((need + 1) * 8, 0xdeadbeef);
		node_t *node = (node_t *)scratch.data();

		CHECK(m >= 2); /* the root is the last parent launch's */
		emulate_chunks(ext, ext_size, size, n, wl, 0, node, m);
		for (; m > 2; m = vr_b3_level_up(m)) {
			CHECK((uint64_t)(node - (node_t *)scratch.data()) + m + vr_b3_level_up(m) <=
			      need);
			emulate_parents(node, m, 0, node + m);
			node += m;
		}
		emulate_parents(node, 2, VR_B3_ROOT, &dig);
		CHECK(scratch[need * 8] == 0xdeadbeef); /* nothing past what it asked for */
	}
	memcpy(out, dig, 32); /* the words are little-endian, as the hash's bytes */
}

/*
 * SIZE random bytes in extents of EXT_SIZE (scattered, with junk past the end
 * of the file), hashed by the emulation and by core/blake3.c; FLAT gets the
 * bytes (SIZE of them) when not NULL. Returns whether they agree.
 */
static bool one(uint64_t size, uint64_t ext_size, uint8_t *flat_out, uint8_t got[32])
{
	uint64_t next = size / ext_size + 1;
	std::vector<uint8_t *> ext(next);
	std::vector<uint8_t> flat(size + 1);
	uint8_t want[32];
	struct vr_blake3 h;

	for (uint64_t j = 0; j < size; j++)
		flat[j] = (uint8_t)(rng() >> 56);
	/* one extent for everything (as the CUDA backend passes) needs only the file's bytes */
	uint64_t cap = ext_size < size + 1024 ? ext_size : size + 1024;

	for (uint64_t e = 0; e < next; e++) {
		ext[e] = (uint8_t *)aligned_alloc(16, (cap + 15) / 16 * 16);
		memset(ext[e], 0xa5, cap);
		if (e * ext_size < size) {
			uint64_t left = size - e * ext_size;

			memcpy(ext[e], flat.data() + e * ext_size,
			       left < ext_size ? left : ext_size);
		}
	}
	vr_blake3_init(&h);
	vr_blake3_update(&h, flat.data(), size);
	vr_blake3_final(&h, want, 32);
	emulate_blake3(ext.data(), ext_size, size, got);
	for (uint64_t e = 0; e < next; e++)
		free(ext[e]);
	if (flat_out)
		memcpy(flat_out, flat.data(), size);
	if (memcmp(want, got, 32) != 0) {
		fprintf(stderr, "size %llu, extents of %llu: emulated GPU BLAKE3 differs\n",
			(unsigned long long)size, (unsigned long long)ext_size);
		return false;
	}
	return true;
}

/* The emulation against Debian's b3sum, through a file (skipped when b3sum is missing). */
static void against_b3sum(uint64_t size)
{
	char path[] = "/tmp/vr-b3emu-XXXXXX", cmd[128], hex[65] = "", want[65];
	std::vector<uint8_t> data(size + 1);
	uint8_t got[32];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(one(size, 1 << 20, data.data(), got));
	FILE *f = fdopen(fd, "w");

	CHECK(fwrite(data.data(), 1, size, f) == size);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "b3sum --no-names %s 2>/dev/null", path);
	FILE *p = popen(cmd, "r");

	if (p && fscanf(p, "%64s", hex) == 1) {
		for (int i = 0; i < 32; i++)
			snprintf(want + 2 * i, 3, "%02x", got[i]);
		if (strcmp(hex, want) != 0)
			fprintf(stderr, "size %llu: b3sum %s, emulated GPU %s\n",
				(unsigned long long)size, hex, want);
		CHECK_STR(hex, want);
	} else {
		printf("b3sum not found: size %llu not compared with it\n",
		       (unsigned long long)size);
	}
	if (p)
		pclose(p);
	unlink(path);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 1;
	const uint64_t mib = 1 << 20;
	const uint64_t sizes[] = {0,	1,    63,   64,	  65,	   1023, 1024,	 1025,
				  2048, 2049, 3072, 4096, mib - 1, mib,	 mib + 1};
	const uint64_t ext_sizes[] = {1024, 2048, 3072, 32768, 33792, 1 << 20};
	uint8_t got[32];

	printf("seed %llu\n", (unsigned long long)seed);
	rng_state = seed | 1;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		CHECK(one(sizes[i], UINT64_MAX / 2, NULL, got));
	/* every chunk count to 70: whole, and ending part-way through its last chunk */
	for (uint64_t k = 1; k <= 70; k++) {
		CHECK(one(k * 1024, UINT64_MAX / 2, NULL, got));
		CHECK(one(k * 1024 - 1 - rng() % 1023, UINT64_MAX / 2, NULL, got));
	}
	/* around powers of two chunks, to 2^12 */
	for (int p = 1; p <= 12; p++)
		for (int d = -1; d <= 1; d++) {
			uint64_t k = ((uint64_t)1 << p) + d;

			CHECK(one(k * 1024, UINT64_MAX / 2, NULL, got));
			CHECK(one(k * 1024 - 1 - rng() % 1023, UINT64_MAX / 2, NULL, got));
		}
	/* extents of whole chunks: their boundaries at various chunk positions */
	for (size_t e = 0; e < sizeof(ext_sizes) / sizeof(ext_sizes[0]); e++) {
		CHECK(one(ext_sizes[e] * 3, ext_sizes[e], NULL, got));
		CHECK(one(ext_sizes[e] * 2 + 1, ext_sizes[e], NULL, got));
		CHECK(one(rng() % (200 * 1024), ext_sizes[e], NULL, got));
		CHECK(one(rng() % (3 << 20), ext_sizes[e], NULL, got));
	}
	against_b3sum(0);
	against_b3sum(5000);
	against_b3sum(70 * 1024 + 5);
	against_b3sum((1 << 20) + 1);
	return check_summary();
}
