/* test_backend.c - the conformance suite every backend passes: test_backend mock|cuda. */
#include "audit.h"
#include "backends.h"
#include "check.h"
#include "digest.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill(uint8_t *p, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = rng();

		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)rng();
}

/* Loads SIZE random bytes in random chunks, reads them back and compares both digests with the
 * CPU's. */
static void roundtrip(struct vr_backend *b, uint64_t size)
{
	uint8_t *data = malloc(size ? size : 1), *back = malloc(size ? size : 1);
	uint8_t cpu_fsv[32], cpu_sha[32], dev_fsv[32], dev_sha[32];
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	struct vr_dev_file *f;
	int ret;

	if (!data || !back || !st) {
		CHECK(!"out of memory");
		goto out;
	}
	fill(data, size);
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	/* grow as writes arrive, as the filesystem does */
	for (uint64_t off = 0; off < size;) {
		size_t n = (size_t)(rng() % (3u << 20)) + 1;

		if (n > size - off)
			n = (size_t)(size - off);
		ret = vr_dev_resize(b, f, off + n);
		if (ret == 0)
			ret = vr_dev_write(b, f, off, data + off, n);
		if (ret) {
			fprintf(stderr, "size %llu: load failed at %llu: %s\n",
				(unsigned long long)size, (unsigned long long)off, strerror(-ret));
			CHECK_EQ(ret, 0);
			break;
		}
		off += n;
	}
	CHECK(vr_dev_held(b, f) >= size);
	memset(back, 0x5a, size);
	for (uint64_t off = 0; off < size;) {
		size_t n = (size_t)(rng() % (5u << 20)) + 1;

		if (n > size - off)
			n = (size_t)(size - off);
		CHECK_EQ(vr_dev_read(b, f, off, back + off, n), 0);
		off += n;
	}
	CHECK(memcmp(data, back, size) == 0);
	vr_fsv_init(st);
	vr_fsv_update(st, data, size);
	vr_fsv_final(st, cpu_fsv);
	vr_sha256(data, size, cpu_sha);
	CHECK_EQ(vr_dev_digest(b, f, dev_sha, dev_fsv), 0);
	if (memcmp(cpu_fsv, dev_fsv, 32) != 0)
		fprintf(stderr, "size %llu: device fs-verity digest differs from the CPU's\n",
			(unsigned long long)size);
	CHECK_MEM(cpu_fsv, dev_fsv, 32);
	CHECK_MEM(cpu_sha, dev_sha, 32);
	memset(dev_fsv, 0, 32);
	CHECK_EQ(vr_dev_digest(b, f, NULL, dev_fsv), 0);
	CHECK_MEM(cpu_fsv, dev_fsv, 32);
	CHECK_EQ(vr_dev_file_free(b, f), 0);
out:
	free(st);
	free(data);
	free(back);
}

/* Out-of-range I/O is refused; a shrink scrubs, so a regrown tail reads as zeros. */
static void bounds_and_scrub(struct vr_backend *b)
{
	uint8_t buf[8192], zero[8192] = {0};
	struct vr_dev_file *f;

	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(b, f, 8192), 0);
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(vr_dev_write(b, f, 0, buf, 8192), 0);
	CHECK_EQ(vr_dev_write(b, f, 8000, buf, 193), -EINVAL);
	CHECK_EQ(vr_dev_read(b, f, 8193, buf, 1), -EINVAL);
	CHECK_EQ(vr_dev_resize(b, f, 100), 0);
	CHECK_EQ(vr_dev_resize(b, f, 8192), 0);
	CHECK_EQ(vr_dev_read(b, f, 100, buf, 8092), 0);
	CHECK_MEM(buf, zero, 8092);
	CHECK_EQ(vr_dev_file_free(b, f), 0);
}

/* Filling the device gives -ENOSPC before it runs out and leaves the backend usable. */
static void exhaustion(struct vr_backend *b)
{
	struct vr_device_info before, after, full;
	struct vr_dev_file *files[4096];
	int n = 0, ret = 0;
	uint64_t step;

	CHECK_EQ(vr_backend_info(b, &before), 0);
	step = before.total_bytes / 64 + 1;
	while (n < 4096) {
		CHECK_EQ(vr_dev_file_new(b, &files[n]), 0);
		ret = vr_dev_resize(b, files[n], step);
		n++;
		if (ret)
			break;
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK_EQ(vr_backend_info(b, &full), 0);
	CHECK(full.free_bytes < step);
	/* the failed file holds nothing; one more small file still fits after a free */
	CHECK_EQ(vr_dev_held(b, files[n - 1]), 0);
	CHECK_EQ(vr_dev_file_free(b, files[0]), 0);
	files[0] = NULL;
	struct vr_dev_file *g;

	CHECK_EQ(vr_dev_file_new(b, &g), 0);
	CHECK_EQ(vr_dev_resize(b, g, 4096), 0);
	CHECK_EQ(vr_dev_write(b, g, 0, "abcd", 4), 0);
	CHECK_EQ(vr_dev_file_free(b, g), 0);
	for (int i = 0; i < n; i++)
		vr_dev_file_free(b, files[i]);
	CHECK_EQ(vr_backend_info(b, &after), 0);
	CHECK_EQ(after.free_bytes, before.free_bytes);
}

/* Mock only: each injected fault comes back as the chosen errno, once, and nothing breaks. */
static void faults(void)
{
	static const int errs[VR_FAULT_OPS] = {ENOMEM, EIO, EIO, EIO};
	uint8_t buf[4096] = {1};
	uint8_t fsv[32];

	for (int op = 0; op < VR_FAULT_OPS; op++) {
		struct vr_backend_params p = {.capacity = 16 << 20};
		struct vr_backend b;
		struct vr_dev_file *f;

		p.fail_at[op] = 2;
		p.fail_errno[op] = errs[op];
		CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
		CHECK_EQ(vr_dev_file_new(&b, &f), 0);
		int results[3];

		for (int i = 0; i < 3; i++) {
			switch (op) {
			case VR_FAULT_ALLOC:
				results[i] = vr_dev_resize(&b, f, (uint64_t)(i + 1) << 20);
				if (results[i])
					vr_dev_resize(&b, f, (uint64_t)i << 20);
				break;
			case VR_FAULT_WRITE:
				if (i == 0)
					vr_dev_resize(&b, f, 4096);
				results[i] = vr_dev_write(&b, f, 0, buf, sizeof(buf));
				break;
			case VR_FAULT_READ:
				if (i == 0)
					vr_dev_resize(&b, f, 4096);
				results[i] = vr_dev_read(&b, f, 0, buf, sizeof(buf));
				break;
			default:
				results[i] = vr_dev_digest(&b, f, NULL, fsv);
			}
		}
		CHECK_EQ(results[0], 0);
		CHECK_EQ(results[1], -errs[op]);
		CHECK_EQ(results[2], 0);
		CHECK_EQ(vr_dev_file_free(&b, f), 0);
		vr_backend_close(&b);
	}
}

/*
 * The VRAM-only policy, over the CUDA runtime test double (tests/fake): an
 * integrated GPU, compute capability 5 and a card under 1 GiB are refused
 * with -ENODEV and a policy_violation record; a good card opens.
 */
static int policy_checks(void)
{
	static const char *const env[][2] = {{"VR_FAKE_CUDA_INTEGRATED", "1"},
					     {"VR_FAKE_CUDA_CC", "5"},
					     {"VR_FAKE_CUDA_MEM", "536870912"}};
	char path[] = "/tmp/vr-policy-XXXXXX";
	int fd = mkstemp(path);
	struct vr_backend b;

	close(fd);
	for (size_t i = 0; i < 3; i++) {
		struct vr_backend_params p = {0};
		struct vr_audit *a;
		char line[4096] = "";
		FILE *f;

		CHECK_EQ(truncate(path, 0), 0);
		CHECK_EQ(vr_audit_open(path, &a), 0);
		p.audit = a;
		setenv(env[i][0], env[i][1], 1);
		CHECK_EQ(vr_backend_open(vr_backend_find("cuda"), &p, &b), -ENODEV);
		unsetenv(env[i][0]);
		vr_audit_close(a);
		f = fopen(path, "r");
		CHECK(f && fgets(line, sizeof(line), f));
		CHECK(strstr(line, "\"event\":\"policy_violation\"") != NULL);
		if (f)
			fclose(f);
	}
	struct vr_backend_params ok = {0};

	CHECK_EQ(vr_backend_open(vr_backend_find("cuda"), &ok, &b), 0);
	vr_backend_close(&b);
	unlink(path);
	return check_summary();
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "mock";

	if (strcmp(name, "cuda-policy") == 0)
		return policy_checks();
	const struct vr_backend_ops *ops = vr_backend_find(name);
	struct vr_backend_params p = {.capacity = 256u << 20};
	struct vr_device_info info;
	struct vr_backend b;
	int ret;

	if (!ops) {
		printf("backend %s is not in this build: skipped\n", name);
		return 77;
	}
	ret = vr_backend_open(ops, &p, &b);
	if (ret == -ENODEV && strcmp(name, "mock") != 0) {
		printf("backend %s: no usable device here: skipped\n", name);
		return 77;
	}
	CHECK_EQ(ret, 0);
	if (ret)
		return check_summary();
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	printf("backend %s: %s (%s), %llu bytes free of %llu\n", info.backend, info.name, info.uuid,
	       (unsigned long long)info.free_bytes, (unsigned long long)info.total_bytes);
	CHECK_STR(info.backend, name);
	CHECK(info.free_bytes <= info.total_bytes);
	CHECK(strlen(info.uuid) > 0);
	CHECK(!info.integrated);
	if (strcmp(name, "mock") == 0)
		CHECK_EQ(info.total_bytes, 256u << 20);

	const uint64_t sizes[] = {
	    0, 1, 4095, 4096, 4097, 524288, 524289, 3 << 20, (5 << 20) + 12345, 40u << 20};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		roundtrip(&b, sizes[i]);
	/* VR_CONFORMANCE_QUICK (under compute-sanitizer): no 1 GiB file, no filling the card */
	bool quick = getenv("VR_CONFORMANCE_QUICK") != NULL;

	if (!quick && strcmp(name, "mock") != 0 && info.free_bytes > (3ULL << 30))
		roundtrip(&b, 1ULL << 30);
	bounds_and_scrub(&b);
	if (!quick)
		exhaustion(&b);
	roundtrip(&b, 777777); /* still usable after exhaustion */
	vr_backend_close(&b);
	if (strcmp(name, "mock") == 0)
		faults();
	return check_summary();
}
