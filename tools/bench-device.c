/* bench-device.c - upload and on-device verify throughput of a backend for a few file sizes. */
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

int main(int argc, char **argv)
{
	const size_t chunk = (size_t)1 << 20; /* FUSE's write size */
	const size_t pattern_size = (size_t)1 << 30;
	struct vr_backend_params p = {0};
	struct vr_device_info info;
	struct vr_backend b;
	uint8_t *pattern;
	int ret, failed = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: vr-bench-device mock|cuda GIB...\n");
		return 2;
	}
	const struct vr_backend_ops *ops = vr_backend_find(argv[1]);

	if (!ops) {
		fprintf(stderr, "backend %s is not in this build\n", argv[1]);
		return 77;
	}
	/* the mock gets room for the largest size plus the warm-up */
	char capacity[32];
	struct vr_backend_opt opt = {"capacity", capacity};

	snprintf(capacity, sizeof(capacity), "%dG", atoi(argv[argc - 1]) + 1);
	p.opts = &opt;
	p.nopts = 1;
	ret = vr_backend_open(ops, &p, &b);
	if (ret) {
		fprintf(stderr, "cannot open backend %s: %s\n", argv[1], strerror(-ret));
		return ret == -ENODEV ? 77 : 1;
	}
	vr_backend_info(&b, &info);
	printf("device: %s backend, %s (%s), %.1f GiB usable\n", info.backend, info.name, info.uuid,
	       (double)info.total_bytes / (1 << 30));
	pattern = malloc(pattern_size);
	if (!pattern)
		return 1;
	for (size_t i = 0; i < pattern_size; i += 8) {
		uint64_t v = i * 0x9e3779b97f4a7c15ULL;

		memcpy(pattern + i, &v, 8);
	}
	/* warm-up, untimed: context, kernels, the staging ring and the allocator all start cold;
	 * VR_BENCH_NO_WARMUP=1 leaves it out (under a profiler that captures the first launch) */
	if (!getenv("VR_BENCH_NO_WARMUP")) {
		struct vr_dev_file *w = NULL;
		uint8_t fsv[32];

		ret = vr_dev_file_new(&b, &w);
		if (ret == 0)
			ret = vr_dev_resize(w, 64u << 20);
		for (uint64_t off = 0; off < (64u << 20) && ret == 0; off += chunk)
			ret = vr_dev_write(w, off, pattern + off, chunk);
		if (ret == 0)
			ret = vr_dev_fsverity(w, fsv);
		if (ret) {
			fprintf(stderr, "warm-up failed: %s\n", strerror(-ret));
			failed++;
		}
		vr_dev_file_free(w);
		ret = 0;
	}
	printf("%8s %14s %14s %12s\n", "size", "upload GB/s", "verify GB/s", "verify s");
	for (int a = 2; a < argc; a++) {
		uint64_t size = (uint64_t)atoi(argv[a]) << 30;
		struct vr_dev_file *f;
		uint8_t fsv[32], one;
		double t0, t1, t2;

		if (vr_dev_file_new(&b, &f)) {
			failed++;
			continue;
		}
		if (vr_dev_resize(f, size)) {
			printf("%6d GiB: does not fit\n", atoi(argv[a]));
			vr_dev_file_free(f);
			failed++;
			continue;
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
		if (ret) {
			printf("%6d GiB: failed: %s\n", atoi(argv[a]), strerror(-ret));
			failed++;
		} else {
			printf("%5d GiB %14.1f %14.1f %12.4f\n", atoi(argv[a]),
			       (double)size / (t1 - t0) / 1e9, (double)size / (t2 - t1) / 1e9,
			       t2 - t1);
		}
		vr_dev_file_free(f);
		ret = 0;
	}
	free(pattern);
	vr_backend_close(&b);
	/* a run where a size failed is no measurement: say so in the exit status */
	return failed ? 1 : ret;
}
