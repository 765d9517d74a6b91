/*
 * test_res_stage.c - the import's pinned staging on the CUDA backend, over the CUDA runtime
 * double (whose copies run late and read their source then, so a slot reused too early uploads
 * the wrong bytes): a read or digest right after a staged write sees it; more pieces than slots
 * wait for theirs; a failure in any piece (a copy, an event) leaves nothing sealed; loads
 * through staging, one after another and several at once, seal as cp's writes do.
 */
#include "backends.h"
#include "check.h"
#include "digest.h"
#include "key.h"
#include "residency.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vr_fake_cuda_fail(const char *call, unsigned nth, int make_sticky);
void vr_fake_cuda_reset(void);

/*
 * A slow hash thread (the link wraps libcrypto's update): while SLOW_HASH is
 * set, each large piece waits a little first, so a writer laps the hasher and
 * a slot handed out again before its piece was hashed changes the seal.
 */
static atomic_bool slow_hash;
int __real_EVP_DigestUpdate(void *ctx, const void *data, size_t len);
int __wrap_EVP_DigestUpdate(void *ctx, const void *data, size_t len);
int __wrap_EVP_DigestUpdate(void *ctx, const void *data, size_t len)
{
	if (len >= (1 << 20) && atomic_load(&slow_hash))
		usleep(50000);
	return __real_EVP_DigestUpdate(ctx, data, len);
}

static struct vr_caller me = {.uid = 0, .gid = 0, .pid = 1, .tgid = 1};

/* Bytes no two pieces of which are alike (splitmix64 of the position), different for each
 * SEED. */
static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t z = (i / 8 + seed * 0x100000000ull) * 0x9e3779b97f4a7c15ull;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(p + i, &z, n - i < 8 ? n - i : 8);
	}
}

/* A read, a digest and a resize right after staged writes all see them; more pieces than
 * slots each upload their own bytes (a slot is filled again only after its copy ran). */
static void order_and_backpressure(struct vr_backend *b)
{
	struct vr_dev_file *f;
	struct vr_dev_stage *s;
	size_t cap = 0;
	void *slot;
	const size_t piece = 3 << 20, n = 20; /* more pieces than a stage has slots */
	uint8_t *want = malloc(piece * n), *got = malloc(piece * n);
	uint8_t d[32], cpu[32];

	pattern(want, piece * n, 1);
	CHECK_EQ(vr_dev_file_new(b, &f), 0);
	CHECK_EQ(vr_dev_resize(f, piece * n), 0);
	CHECK_EQ(vr_dev_stage_new(f, &s), 0);
	for (size_t i = 0; i < n; i++) {
		CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
		CHECK(cap >= piece);
		memcpy(slot, want + i * piece, piece);
		CHECK_EQ(vr_dev_stage_write(s, i * piece, piece), 0);
	}
	/* nothing waited for yet: the read must follow the file's staged uploads */
	CHECK_EQ(vr_dev_read(f, 0, got, piece * n), 0);
	CHECK_MEM(got, want, piece * n);
	CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
	memset(slot, 0xab, 4096);
	CHECK_EQ(vr_dev_stage_write(s, 4096, 4096), 0);
	memset(want + 4096, 0xab, 4096);
	CHECK_EQ(vr_dev_fsverity(f, d), 0);
	struct vr_span sp = {.data = want, .len = piece * n};

	CHECK_EQ(vr_fsv_digest_spans(&sp, 1, 1, cpu), 0);
	CHECK_MEM(d, cpu, 32);
	/* a cut's scrub (queued on another stream) follows a staged write into the cut */
	CHECK_EQ(vr_dev_stage_slot(s, &slot, &cap), 0);
	memset(slot, 0xcd, piece);
	CHECK_EQ(vr_dev_stage_write(s, piece * (n - 1), piece), 0);
	CHECK_EQ(vr_dev_resize(f, piece * (n - 1)), 0);
	CHECK_EQ(vr_dev_resize(f, piece * n), 0);
	CHECK_EQ(vr_dev_read(f, piece * (n - 1), got, piece), 0);
	memset(want, 0, piece);
	CHECK_MEM(got, want, piece);
	CHECK_EQ(vr_dev_stage_free(s), 0);
	CHECK_EQ(vr_dev_file_free(f), 0);
	free(want);
	free(got);
}

/* Loads LEN bytes of DATA into PATH as the socket's import does: read into pinned slots,
 * written from there. Returns the first error, else whether the close sealed it (0) or not. */
static int staged_load(struct vr_residency *r, const char *path, const uint8_t *data, size_t len)
{
	struct vr_res_stage *s;
	struct vr_handle *h;
	int ret = vr_res_create(r, path, 0644, &me, &h);

	if (ret)
		return ret;
	/* as the import: the memory taken first */
	CHECK_EQ(vr_res_fallocate(r, h, VR_FALLOC_KEEP_SIZE, 0, len, &me), 0);
	ret = vr_res_stage_open(r, h, &me, &s);
	CHECK_EQ(ret, 0);
	for (size_t off = 0; off < len && ret == 0;) {
		void *slot;
		size_t cap, n;

		ret = vr_res_stage_buf(r, h, s, &slot, &cap, &me);
		if (ret)
			break;
		n = len - off < cap ? len - off : cap;
		memcpy(slot, data + off, n);
		ret = vr_res_write_staged(r, h, s, n, off, &me);
		off += n;
	}
	int e = vr_res_stage_close(r, h, s, &me);

	ret = ret ? ret : e;
	e = vr_res_flush(r, h, &me);
	ret = ret ? ret : e;
	if (ret == 0 && !vr_res_handle_sealed(r, h, NULL))
		ret = -EIO;
	vr_res_release(r, h);
	return ret;
}

/* Loads as cp writes: 1 MiB at a time from our own buffer. */
static int cp_load(struct vr_residency *r, const char *path, const uint8_t *data, size_t len)
{
	struct vr_handle *h;
	int ret = vr_res_create(r, path, 0644, &me, &h);

	for (size_t off = 0; ret == 0 && off < len; off += 1 << 20)
		ret = vr_res_write(r, h, data + off, len - off < (1 << 20) ? len - off : 1 << 20,
				   off, &me);
	int e = vr_res_flush(r, h, &me);

	vr_res_release(r, h);
	return ret ? ret : e;
}

/* The value of "KEY": "..." in PATH's seal (the caller frees it), or NULL. */
static char *seal_field(struct vr_residency *r, const char *path, const char *key)
{
	char seal[512], *text = malloc(65536), *out = NULL;
	struct vr_handle *h;
	size_t got = 0;

	snprintf(seal, sizeof(seal), "%s.seal", path);
	if (vr_res_open(r, seal, 0, &me, &h) == 0) {
		vr_res_read(r, h, text, 65535, 0, &got);
		vr_res_release(r, h);
	}
	text[got] = '\0';
	snprintf(seal, sizeof(seal), "\"%s\":", key);
	char *p = strstr(text, seal);

	if (p && (p = strchr(p + strlen(seal), '"')) != NULL) {
		char *q = strchr(p + 1, '"');

		if (q)
			out = strndup(p + 1, (size_t)(q - p - 1));
	}
	free(text);
	return out;
}

/* PATH sealed with DATA's SHA-256 and fs-verity digest, as cp's COPY was. */
static void same_seal(struct vr_residency *r, const char *path, const char *copy,
		      const uint8_t *data, size_t len)
{
	uint8_t sha[32];
	char hex[65];

	vr_sha256(data, len, sha);
	vr_hex(sha, 32, hex);
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "fsverity" : "sha256";
		char *a = seal_field(r, path, key), *b = seal_field(r, copy, key);

		CHECK(a && b && strcmp(a, b) == 0);
		if (i == 0)
			CHECK(a && strcmp(a, hex) == 0);
		free(a);
		free(b);
	}
}

/* Whether PATH exists with a seal. */
static bool sealed(struct vr_residency *r, const char *path)
{
	char *v = seal_field(r, path, "sha256");
	bool yes = v != NULL;

	free(v);
	return yes;
}

struct job {
	struct vr_residency *r;
	char path[32];
	const uint8_t *data;
	size_t len;
	int ret;
};

static void *load_job(void *arg)
{
	struct job *j = arg;

	j->ret = staged_load(j->r, j->path, j->data, j->len);
	return NULL;
}

/* Staged loads seal as cp does, alone and several at once; a failed piece seals nothing. */
static void loads(struct vr_residency *r)
{
	const size_t len = ((size_t)40 << 20) + 12345; /* 6 slots' worth: a stage has 4 */
	uint8_t *data = malloc(len);
	struct job jobs[4];
	pthread_t t[4];

	pattern(data, len, 2);
	CHECK_EQ(cp_load(r, "/cp", data, len), 0);
	atomic_store(&slow_hash, true);
	CHECK_EQ(staged_load(r, "/staged", data, len), 0);
	atomic_store(&slow_hash, false);
	same_seal(r, "/staged", "/cp", data, len);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct job){.r = r, .data = data, .len = len - (size_t)i * 999};
		snprintf(jobs[i].path, sizeof(jobs[i].path), "/p%d", i);
		CHECK_EQ(pthread_create(&t[i], NULL, load_job, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		char cp[32];

		pthread_join(t[i], NULL);
		CHECK_EQ(jobs[i].ret, 0);
		snprintf(cp, sizeof(cp), "/pc%d", i);
		CHECK_EQ(cp_load(r, cp, data, jobs[i].len), 0);
		same_seal(r, jobs[i].path, cp, data, jobs[i].len);
	}
	/* a failure in the first, a middle or the last piece: a copy refused, an upload's
	 * event failing (seen when its slot comes round again, or at the stage's close) */
	static const struct {
		const char *call;
		unsigned nth;
	} faults[] = {{"cudaMemcpyAsync", 1},	   {"cudaMemcpyAsync", 5},
		      {"cudaMemcpyAsync", 6},	   {"cudaEventRecord", 3},
		      {"cudaEventSynchronize", 1}, {"cudaEventSynchronize", 4}};
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		char path[32];

		snprintf(path, sizeof(path), "/fail%zu", i);
		vr_fake_cuda_fail(faults[i].call, faults[i].nth, 0);
		int ret = staged_load(r, path, data, len);

		vr_fake_cuda_reset();
		if (ret == 0)
			fprintf(stderr, "%s #%u failing: still sealed\n", faults[i].call,
				faults[i].nth);
		CHECK(ret != 0);
		CHECK(!sealed(r, path));
		/* a failed load is gone at its close, as a writer's that failed */
		CHECK_EQ(vr_res_unlink(r, path, &me), -ENOENT);
	}
	/* and the device is usable after: the same load seals */
	CHECK_EQ(staged_load(r, "/after", data, len), 0);
	same_seal(r, "/after", "/cp", data, len);
	free(data);
}

int main(void)
{
	uint8_t secret[32] = {9};
	struct vr_backend_params p = {0};
	struct vr_keyring *keys;
	struct vr_residency *r;
	struct vr_backend b;

	CHECK_EQ(vr_keyring_from_bytes(secret, 32, &keys), 0);
	if (vr_backend_open(&vr_cuda_ops, &p, &b) != 0) {
		fprintf(stderr, "the CUDA double did not open\n");
		return 1;
	}
	order_and_backpressure(&b);
	struct vr_res_config cfg = {.backend = &b, .keys = keys};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	loads(r);
	vr_res_free(r);
	vr_backend_close(&b);
	vr_keyring_free(keys);
	return check_summary();
}
