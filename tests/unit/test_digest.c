/* test_digest.c - unit and property tests of the fs-verity and SHA-256 digests. */
#include "check.h"
#include "rng.h"
#include "digest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	rng_state = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

static void hex32(const uint8_t *d, char *out)
{
	vr_hex(d, 32, out);
}

/*
 * Known answers from `fsverity digest` (fsverity-utils 1.5, Debian 12) on files
 * of SIZE bytes produced by fill(seed 1): an independent oracle, recorded so
 * the test runs where the tool is absent. tests/e2e/digest_oracle.sh checks
 * more sizes against the live tool.
 */
static const struct {
	size_t size;
	const char *fsverity;
	const char *sha256;
} vectors[] = {
#include "digest_vectors.inc"
};

static void test_vectors(void)
{
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t n = vectors[i].size;
		uint8_t *buf = malloc(n ? n : 1), d[32], s[32];
		struct vr_fsv_stream *st = malloc(sizeof(*st));
		char hex[65];

		fill(buf, n, 1);
		vr_fsv_init(st);
		CHECK_EQ(vr_fsv_update(st, buf, n), 0);
		CHECK_EQ(vr_fsv_final(st, d), 0);
		hex32(d, hex);
		if (strcmp(hex, vectors[i].fsverity) != 0)
			fprintf(stderr, "size %zu: got %s want %s\n", n, hex, vectors[i].fsverity);
		CHECK_STR(hex, vectors[i].fsverity);

		struct vr_span span = {buf, n};

		CHECK_EQ(vr_digest_both_spans(&span, 1, 2, s, d), 0);
		hex32(d, hex);
		CHECK_STR(hex, vectors[i].fsverity);
		hex32(s, hex);
		CHECK_STR(hex, vectors[i].sha256);
		free(st);
		free(buf);
	}
}

/*
 * The bulk SHA-256 (libcrypto) and the small one (Nettle) against the same
 * vectors: FIPS 180-2's three examples and the sha256sum values above, each
 * fed in random pieces.
 */
static void test_sha256_both(uint64_t seed)
{
	static const struct {
		const char *msg;
		size_t repeat;
		const char *want;
	} fips[] = {
	    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
	    {"", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	};
	struct vr_sha256_stream *st;
	uint8_t d[32];
	char hex[65];

	CHECK_EQ(vr_sha256_stream_new(&st), 0);
	rng_state = seed | 1;
	for (size_t i = 0; i < sizeof(fips) / sizeof(fips[0]); i++) {
		size_t one = strlen(fips[i].msg), n = one * fips[i].repeat;
		uint8_t *buf = malloc(n ? n : 1);

		for (size_t k = 0; k < fips[i].repeat; k++)
			memcpy(buf + k * one, fips[i].msg, one);
		vr_sha256(buf, n, d);
		hex32(d, hex);
		CHECK_STR(hex, fips[i].want);
		for (size_t off = 0; off < n;) {
			size_t piece = (size_t)(rng() % 70000) + 1;

			piece = piece < n - off ? piece : n - off;
			CHECK_EQ(vr_sha256_stream_update(st, buf + off, piece), 0);
			off += piece;
		}
		CHECK_EQ(vr_sha256_stream_final(st, d), 0); /* and the stream starts over */
		hex32(d, hex);
		CHECK_STR(hex, fips[i].want);
		free(buf);
	}
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		size_t n = vectors[i].size;
		uint8_t *buf = malloc(n ? n : 1);

		fill(buf, n, 1);
		CHECK_EQ(vr_sha256_stream_update(st, buf, n), 0);
		CHECK_EQ(vr_sha256_stream_final(st, d), 0);
		hex32(d, hex);
		CHECK_STR(hex, vectors[i].sha256);
		vr_sha256(buf, n, d);
		hex32(d, hex);
		CHECK_STR(hex, vectors[i].sha256);
		free(buf);
	}
	vr_sha256_stream_free(st);
}

/* The hasher on its own thread gives the stream's digest, for any pieces, and can be dropped
 * mid-way with pieces queued. */
static void test_sha256_async(uint64_t seed)
{
	size_t n = (5 << 20) + 777;
	uint8_t *buf = malloc(n), want[32], got[32];
	struct vr_sha256_async *a;

	fill(buf, n, seed);
	vr_sha256(buf, n, want);
	for (int round = 0; round < 4; round++) {
		CHECK_EQ(vr_sha256_async_new(&a), 0);
		rng_state = seed + (uint64_t)round;
		for (size_t off = 0; off < n;) {
			/* pieces from 1 byte to 2 MiB: more than the staging slots at times */
			size_t piece = round == 0 ? 1 : (size_t)(rng() % (2 << 20)) + 1;

			if (round == 0 && off > 4096)
				piece = n - off;
			piece = piece < n - off ? piece : n - off;
			CHECK_EQ(vr_sha256_async_feed(a, buf + off, piece), 0);
			off += piece;
		}
		CHECK_EQ(vr_sha256_async_final(a, got), 0);
		CHECK_MEM(got, want, 32);
		vr_sha256_async_free(a);
	}
	/* dropped with work queued: nothing hangs or leaks */
	CHECK_EQ(vr_sha256_async_new(&a), 0);
	for (int i = 0; i < 3 * VR_SHA_ASYNC_DEPTH; i++)
		CHECK_EQ(vr_sha256_async_feed(a, buf, 1 << 20), 0);
	vr_sha256_async_free(a);
	vr_sha256_async_free(NULL);
	free(buf);
}

static void test_empty(void)
{
	/* fsverity digest of an empty file */
	const char *want = "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95";
	struct vr_fsv_stream st;
	uint8_t d[32];
	char hex[65];

	vr_fsv_init(&st);
	CHECK_EQ(vr_fsv_final(&st, d), 0);
	hex32(d, hex);
	CHECK_STR(hex, want);
}

/* Property: streaming with random chunkings, and spans on 1..4 threads, equal one-shot. */
static void prop_chunking(uint64_t seed)
{
	const size_t max = 3 * VR_FSV_UNIT_SIZE + 5000;
	uint8_t *buf = malloc(max);
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	int bad = 0;

	for (int iter = 0; iter < 1000 && !bad; iter++) {
		rng_state = seed + (uint64_t)iter * 7919 + 1;
		size_t n = (size_t)(rng() % max);
		uint8_t one[32], chunked[32], spans_d[32];

		if (iter % 10 == 0) /* favour boundaries */
			n = (size_t)(rng() % 4) * VR_FSV_BLOCK_SIZE + (size_t)(rng() % 3) - 1;
		if (n > max)
			n = 0;
		fill(buf, n, seed + (uint64_t)iter);
		vr_fsv_init(st);
		vr_fsv_update(st, buf, n);
		vr_fsv_final(st, one);
		vr_fsv_init(st);
		rng_state = seed * 31 + (uint64_t)iter + 1;
		for (size_t off = 0; off < n;) {
			size_t c = (size_t)(rng() % (rng() % 2 ? 64 : 20000)) + 1;

			if (c > n - off)
				c = n - off;
			vr_fsv_update(st, buf + off, c);
			off += c;
		}
		vr_fsv_final(st, chunked);
		/* spans of random whole units, then the rest */
		struct vr_span spans[8];
		size_t ns = 0, off = 0;

		while (ns < 7 && off < n && rng() % 3) {
			size_t units = (size_t)(rng() % 2) + 1;
			size_t len = units * VR_FSV_UNIT_SIZE;

			if (len > n - off)
				break;
			spans[ns++] = (struct vr_span){buf + off, len};
			off += len;
		}
		spans[ns++] = (struct vr_span){buf + off, n - off};
		vr_fsv_digest_spans(spans, ns, (unsigned)(iter % 4) + 1, spans_d);
		if (memcmp(one, chunked, 32) || memcmp(one, spans_d, 32)) {
			fprintf(stderr, "prop_chunking: seed %llu iteration %d size %zu differs\n",
				(unsigned long long)seed, iter, n);
			bad = 1;
		}
	}
	CHECK(!bad);
	free(st);
	free(buf);
}

/* A file in memory read through vr_fsv_digest_read's reader; FAIL_AT: the call that fails. */
struct mem_file {
	const uint8_t *data;
	uint64_t size;
	atomic_int calls;
	int fail_at; /* 0: never */
	atomic_bool out_of_bounds;
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct mem_file *m = ctx;
	int call = atomic_fetch_add(&m->calls, 1) + 1;

	if (off > m->size || len > m->size - off || len == 0) {
		atomic_store(&m->out_of_bounds, true);
		return -EINVAL;
	}
	if (call == m->fail_at)
		return -EIO;
	memcpy(buf, m->data + off, len);
	return 0;
}

/* Property: the digest read in pieces on 0 (every CPU) to 4 threads equals the streamed one,
 * over sizes across several of its 2 MiB pieces; a failing read is the digest's error. */
static void prop_read(uint64_t seed)
{
	const size_t max = 9 * VR_FSV_UNIT_SIZE + 5000;
	uint8_t *buf = malloc(max);
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	int bad = 0;

	for (int iter = 0; iter < 120 && !bad; iter++) {
		rng_state = seed + (uint64_t)iter * 104729 + 3;
		size_t n = (size_t)(rng() % max);
		uint8_t one[32], got[32], untouched[32] = {0};
		struct mem_file m = {.data = buf};

		if (iter % 4 == 0) /* favour boundaries: blocks, units, pieces */
			n = (size_t)(rng() % 10) *
				(iter % 8 ? VR_FSV_UNIT_SIZE : VR_FSV_BLOCK_SIZE) +
			    (size_t)(rng() % 3) - 1;
		if (n > max)
			n = 0;
		m.size = n;
		fill(buf, n, seed + (uint64_t)iter);
		vr_fsv_init(st);
		vr_fsv_update(st, buf, n);
		vr_fsv_final(st, one);
		atomic_init(&m.calls, 0);
		atomic_init(&m.out_of_bounds, false);
		m.fail_at = 0;
		int ret = vr_fsv_digest_read(mem_read, &m, n, (unsigned)(iter % 5), got);

		if (ret != 0 || memcmp(one, got, 32) || atomic_load(&m.out_of_bounds)) {
			fprintf(stderr, "prop_read: seed %llu iteration %d size %zu: %d, %s\n",
				(unsigned long long)seed, iter, n, ret,
				memcmp(one, got, 32) ? "differs" : "read out of bounds");
			bad = 1;
		}
		int calls = atomic_load(&m.calls);

		if (calls == 0)
			continue;
		/* the same file with one of its reads failing: that error, no digest */
		atomic_store(&m.calls, 0);
		m.fail_at = (int)(rng() % (uint64_t)calls) + 1;
		memcpy(got, untouched, 32);
		ret = vr_fsv_digest_read(mem_read, &m, n, (unsigned)(iter % 5), got);
		if (ret != -EIO || memcmp(got, untouched, 32)) {
			fprintf(stderr,
				"prop_read: seed %llu iteration %d: read %d of %d failed: %d\n",
				(unsigned long long)seed, iter, m.fail_at, calls, ret);
			bad = 1;
		}
	}
	CHECK(!bad);
	free(st);
	free(buf);
}

static void test_misaligned_span(void)
{
	static uint8_t buf[2 * VR_FSV_UNIT_SIZE];
	struct vr_span spans[2] = {{buf, 100}, {buf + 100, 100}};
	uint8_t d[32] = {0}, zero[32] = {0};

	CHECK_EQ(vr_fsv_digest_spans(spans, 2, 1, d), -EINVAL);
	CHECK_MEM(d, zero, 32); /* untouched on failure */
}

static void test_hex(void)
{
	uint8_t b[4] = {0xde, 0xad, 0x00, 0x0f}, back[4];
	char hex[9];

	vr_hex(b, 4, hex);
	CHECK_STR(hex, "dead000f");
	CHECK_EQ(vr_unhex("dead000f", back, 4), 0);
	CHECK_MEM(b, back, 4);
	CHECK_EQ(vr_unhex("DEAD000F", back, 4), -EINVAL);
	CHECK_EQ(vr_unhex("dead000", back, 4), -EINVAL);
	CHECK_EQ(vr_unhex("dead000g", back, 4), -EINVAL);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);

	printf("seed %llu (rerun with: %s %llu)\n", (unsigned long long)seed, argv[0],
	       (unsigned long long)seed);
	test_empty();
	test_vectors();
	test_sha256_both(seed);
	test_sha256_async(seed);
	test_misaligned_span();
	test_hex();
	prop_chunking(seed);
	prop_read(seed);
	return check_summary();
}
