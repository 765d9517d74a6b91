/* bench-device.c - upload, on-device verify and BLAKE3 throughput of a backend for a few sizes. */
#include "backends.h"
#include "digest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const size_t chunk = (size_t)1 << 20; /* FUSE's write size */
static const size_t pattern_size = (size_t)1 << 30;

/* Opens backend NAME into B and says which device it is; MAX_GIB: the largest size asked
 * for. Returns 0, or the exit status having said why not. */
static int open_backend(const char *name, const char *max_gib, struct vr_backend *b)
{
	const struct vr_backend_ops *ops = vr_backend_find(name);
	struct vr_backend_params p = {0};
	struct vr_device_info info;
	int ret;

	if (!ops) {
		fprintf(stderr, "backend %s is not in this build\n", name);
		return 77;
	}
	/* the mock gets room for the largest size plus the warm-up */
	char capacity[32];
	struct vr_backend_opt opt = {"capacity", capacity};

	snprintf(capacity, sizeof(capacity), "%dG", atoi(max_gib) + 1);
	p.opts = &opt;
	p.nopts = 1;
	ret = vr_backend_open(ops, &p, b);
	if (ret) {
		fprintf(stderr, "cannot open backend %s: %s\n", name, strerror(-ret));
		return ret == -ENODEV ? 77 : 1;
	}
	vr_backend_info(b, &info);
	printf("device: %s backend, %s (%s), %.1f GiB usable\n", info.backend, info.name, info.uuid,
	       (double)info.total_bytes / (1 << 30));
	return 0;
}

/* The bytes every file is written from: 1 GiB of a counter's multiples, malloc'd. */
static uint8_t *make_pattern(void)
{
	uint8_t *pattern = malloc(pattern_size);

	if (!pattern)
		return NULL;
	for (size_t i = 0; i < pattern_size; i += 8) {
		uint64_t v = i * 0x9e3779b97f4a7c15ULL;

		memcpy(pattern + i, &v, 8);
	}
	return pattern;
}

/* Warm-up, untimed: a 64 MiB file written, verified and hashed. Returns 0 or -errno. */
static int warm_up(struct vr_backend *b, const uint8_t *pattern)
{
	struct vr_dev_file *w = NULL;
	uint8_t fsv[32];
	int ret = vr_dev_file_new(b, &w);

	if (ret == 0)
		ret = vr_dev_resize(w, 64u << 20);
	for (uint64_t off = 0; off < (64u << 20) && ret == 0; off += chunk)
		ret = vr_dev_write(w, off, pattern + off, chunk);
	if (ret == 0)
		ret = vr_dev_fsverity(w, fsv);
	if (ret == 0)
		ret = vr_dev_blake3(w, fsv);
	if (ret)
		fprintf(stderr, "warm-up failed: %s\n", strerror(-ret));
	vr_dev_file_free(w);
	return ret;
}

/* Uploads, verifies and hashes (BLAKE3, on the device where the backend can) a file of GIB
 * GiB, printing the row of its times; returns 0, or 1 when it failed. */
static int bench_size(struct vr_backend *b, const uint8_t *pattern, const char *gib)
{
	uint64_t size = (uint64_t)atoi(gib) << 30;
	struct vr_dev_file *f;
	uint8_t fsv[32], b3[32], one;
	double t0, t1, t2, t3;
	int ret = 0;

	if (vr_dev_file_new(b, &f))
		return 1;
	if (vr_dev_resize(f, size)) {
		printf("%6d GiB: does not fit\n", atoi(gib));
		vr_dev_file_free(f);
		return 1;
	}
	t0 = seconds();
	for (uint64_t off = 0; off < size && ret == 0; off += chunk)
		ret = vr_dev_write(f, off, pattern + off % pattern_size, chunk);
	/* a read waits for every queued upload */
	if (ret == 0)
		ret = vr_dev_read(f, size - 1, &one, 1);
	t1 = seconds();
	if (ret == 0)
		ret = vr_dev_fsverity(f, fsv);
	t2 = seconds();
	if (ret == 0)
		ret = vr_dev_blake3(f, b3);
	t3 = seconds();
	if (ret)
		printf("%6d GiB: failed: %s\n", atoi(gib), strerror(-ret));
	else
		printf("%5d GiB %14.1f %14.1f %12.4f %14.1f %12.4f\n", atoi(gib),
		       (double)size / (t1 - t0) / 1e9, (double)size / (t2 - t1) / 1e9, t2 - t1,
		       (double)size / (t3 - t2) / 1e9, t3 - t2);
	vr_dev_file_free(f);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct vr_backend b;
	uint8_t *pattern;
	int ret, failed = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: vr-bench-device mock|cuda GIB...\n");
		return 2;
	}
	ret = open_backend(argv[1], argv[argc - 1], &b);
	if (ret)
		return ret;
	pattern = make_pattern();
	if (!pattern)
		return 1;
	/* warm-up, untimed: context, kernels, the staging ring and the allocator all start cold;
	 * VR_BENCH_NO_WARMUP=1 leaves it out (under a profiler that captures the first launch) */
	if (!getenv("VR_BENCH_NO_WARMUP") && warm_up(&b, pattern) != 0)
		failed++;
	printf("%8s %14s %14s %12s %14s %12s\n", "size", "upload GB/s", "verify GB/s", "verify s",
	       "blake3 GB/s", "blake3 s");
	for (int a = 2; a < argc; a++)
		failed += bench_size(&b, pattern, argv[a]);
	free(pattern);
	vr_backend_close(&b);
	/* a run where a size failed is no measurement: say so in the exit status */
	return failed ? 1 : 0;
}
