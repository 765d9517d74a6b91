/* test_blake3.c - BLAKE3 against the official test vectors and recorded b3sum digests; the
 * streaming hasher in any pieces and the threaded one on any thread count agree. */
#include "check.h"
#include "rng.h"
#include "blake3.h"
#include "digest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define XOF_LEN 131 /* the official vectors' extended outputs */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	rng_state = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

/* The vectors' input: byte i is i % 251. */
static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i % 251);
	return p;
}

/* Whether OUT (LEN bytes) is HEX; prints both when not, naming WHAT and the input size N. */
static int same(const uint8_t *out, size_t len, const char *hex, const char *what, size_t n)
{
	char got[2 * XOF_LEN + 1];

	vr_hex(out, len, got);
	if (strncmp(got, hex, 2 * len) == 0 && strlen(hex) >= 2 * len)
		return 1;
	fprintf(stderr, "%s, %zu bytes:\n  got  %s\n  want %.*s\n", what, n, got, (int)(2 * len),
		hex);
	return 0;
}

/* Hashes IN (N bytes) fed in pieces of the sizes in STEPS, in turn. */
static void hash_pieces(struct vr_blake3 *h, const uint8_t *in, size_t n, const size_t *steps,
			size_t nsteps)
{
	for (size_t off = 0, k = 0; off < n; k++) {
		size_t take = steps[k % nsteps];

		if (take > n - off)
			take = n - off;
		vr_blake3_update(h, in + off, take);
		off += take;
	}
}

static void check_hash(const cJSON *c, const uint8_t *in, size_t n)
{
	static const size_t steps[] = {1, 63, 64, 65, 1023, 1024, 1025, 7, 4096};
	const char *want = cJSON_GetObjectItem(c, "hash")->valuestring;
	uint8_t out[XOF_LEN], out32[VR_BLAKE3_LEN];
	struct vr_blake3 h;

	vr_blake3_init(&h);
	vr_blake3_update(&h, in, n);
	vr_blake3_final(&h, out, sizeof(out));
	CHECK(same(out, sizeof(out), want, "hash, extended", n));
	vr_blake3_final(&h, out32, sizeof(out32));
	CHECK(same(out32, sizeof(out32), want, "hash, 32 bytes (final twice)", n));
	for (size_t s = 1; s <= sizeof(steps) / sizeof(steps[0]); s++) {
		vr_blake3_init(&h);
		hash_pieces(&h, in, n, steps + s - 1, sizeof(steps) / sizeof(steps[0]) - s + 1);
		vr_blake3_final(&h, out, sizeof(out));
		CHECK(same(out, sizeof(out), want, "hash, in pieces", n));
	}
	/* a final() halfway leaves the hasher as it was */
	vr_blake3_init(&h);
	vr_blake3_update(&h, in, n / 2);
	vr_blake3_final(&h, out32, sizeof(out32));
	vr_blake3_update(&h, in + n / 2, n - n / 2);
	vr_blake3_final(&h, out32, sizeof(out32));
	CHECK(same(out32, sizeof(out32), want, "hash, final() halfway", n));
	static const unsigned threads[] = {0, 1, 2, 3, 7, 64, 1000};

	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		memset(out32, 0, sizeof(out32));
		vr_blake3_parallel(in, n, threads[t], out32);
		if (!same(out32, sizeof(out32), want, "hash, threaded", n))
			fprintf(stderr, "  (on %u threads)\n", threads[t]);
		CHECK(same(out32, sizeof(out32), want, "hash, threaded", n));
	}
}

static void check_modes(const cJSON *c, const uint8_t *in, size_t n, const char *key,
			const char *context)
{
	uint8_t out[XOF_LEN];
	struct vr_blake3 h;

	vr_blake3_init_keyed(&h, (const uint8_t *)key);
	vr_blake3_update(&h, in, n);
	vr_blake3_final(&h, out, sizeof(out));
	CHECK(
	    same(out, sizeof(out), cJSON_GetObjectItem(c, "keyed_hash")->valuestring, "keyed", n));
	vr_blake3_init_derive_key(&h, context);
	vr_blake3_update(&h, in, n);
	vr_blake3_final(&h, out, sizeof(out));
	CHECK(same(out, sizeof(out), cJSON_GetObjectItem(c, "derive_key")->valuestring,
		   "derive_key", n));
}

/* tests/data/blake3/test_vectors.json (BLAKE3-team/BLAKE3): every case, every mode. */
static void test_official(void)
{
	FILE *f = fopen(VR_TEST_DATA "/blake3/test_vectors.json", "rb");
	static char text[64 << 10];
	size_t len;
	cJSON *doc, *cases;
	int ncases = 0;

	CHECK(f != NULL);
	if (!f)
		return;
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	doc = cJSON_Parse(text);
	CHECK(doc != NULL);
	if (!doc)
		return;
	const char *key = cJSON_GetObjectItem(doc, "key")->valuestring;
	const char *context = cJSON_GetObjectItem(doc, "context_string")->valuestring;

	CHECK_EQ(strlen(key), VR_BLAKE3_KEY_LEN);
	cases = cJSON_GetObjectItem(doc, "cases");
	for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
		size_t n = (size_t)cJSON_GetObjectItem(c, "input_len")->valuedouble;
		uint8_t *in = pattern(n);

		check_hash(c, in, n);
		check_modes(c, in, n, key, context);
		free(in);
		ncases++;
	}
	CHECK_EQ(ncases, 35); /* all of the file's cases, up to 102,400 bytes */
	cJSON_Delete(doc);
}

/*
 * Known answers from `b3sum` (1.2.0, Debian 12) over fill(seed 1) bytes: an
 * independent oracle recorded, so the test runs where the tool is absent;
 * tests/e2e/test_blake3_oracle.sh checks random files against the live tool.
 */
static const struct {
	size_t size;
	const char *b3sum;
} b3sum_vectors[] = {
#include "blake3_vectors.inc"
};

static void test_b3sum(void)
{
	size_t max = 0;
	uint8_t *buf, out[VR_BLAKE3_LEN];

	for (size_t i = 0; i < sizeof(b3sum_vectors) / sizeof(b3sum_vectors[0]); i++)
		if (b3sum_vectors[i].size > max)
			max = b3sum_vectors[i].size;
	buf = malloc(max);
	fill(buf, max, 1);
	for (size_t i = 0; i < sizeof(b3sum_vectors) / sizeof(b3sum_vectors[0]); i++) {
		size_t n = b3sum_vectors[i].size;
		const char *want = b3sum_vectors[i].b3sum;
		struct vr_blake3 h;
		static const unsigned threads[] = {1, 2, 3, 7};

		vr_blake3_init(&h);
		vr_blake3_update(&h, buf, n);
		vr_blake3_final(&h, out, sizeof(out));
		CHECK(same(out, sizeof(out), want, "b3sum, streaming", n));
		for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
			vr_blake3_parallel(buf, n, threads[t], out);
			if (!same(out, sizeof(out), want, "b3sum, threaded", n))
				fprintf(stderr, "  (on %u threads)\n", threads[t]);
			CHECK(same(out, sizeof(out), want, "b3sum, threaded", n));
		}
	}
	free(buf);
}

/* Random sizes and pieces: every way of hashing gives one digest (seeded, reproducible). */
static void test_property(void)
{
	const size_t max = 300 << 10;
	uint8_t *buf = malloc(max), ref[VR_BLAKE3_LEN], out[VR_BLAKE3_LEN];
	uint64_t seed = 0x5eed;

	fill(buf, max, 7);
	for (int round = 0; round < 60; round++) {
		struct vr_blake3 h;
		size_t n, steps[3];

		rng_state = seed + (uint64_t)round;
		n = (size_t)(rng() % max);
		if (round < 20) /* near chunk and power-of-two boundaries */
			n = ((size_t)1 << (round % 9 + 10)) + (size_t)(rng() % 3) - 1;
		for (int k = 0; k < 3; k++)
			steps[k] = (size_t)(rng() % 5000) + 1;
		vr_blake3_init(&h);
		vr_blake3_update(&h, buf, n);
		vr_blake3_final(&h, ref, sizeof(ref));
		vr_blake3_init(&h);
		hash_pieces(&h, buf, n, steps, 3);
		vr_blake3_final(&h, out, sizeof(out));
		CHECK_MEM(out, ref, sizeof(ref));
		vr_blake3_parallel(buf, n, (unsigned)(rng() % 9), out);
		CHECK_MEM(out, ref, sizeof(ref));
	}
	free(buf);
}

/* A flipped bit anywhere changes the digest, on every path. */
static void test_flip(void)
{
	const size_t n = (1 << 20) + 1;
	uint8_t *buf = malloc(n), a[VR_BLAKE3_LEN], b[VR_BLAKE3_LEN];
	static const size_t where[] = {0, 1023, 1024, 512 << 10, (1 << 20) - 1, 1 << 20};

	fill(buf, n, 3);
	vr_blake3_parallel(buf, n, 3, a);
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		struct vr_blake3 h;

		buf[where[i]] ^= 0x10;
		vr_blake3_parallel(buf, n, 3, b);
		CHECK(memcmp(a, b, sizeof(a)) != 0);
		vr_blake3_init(&h);
		vr_blake3_update(&h, buf, n);
		vr_blake3_final(&h, b, sizeof(b));
		CHECK(memcmp(a, b, sizeof(a)) != 0);
		buf[where[i]] ^= 0x10;
	}
	free(buf);
}

/* A buffer read through vr_blake3_parallel_read: fails with FAIL_ERR at the read that covers
 * byte FAIL_AT (UINT64_MAX: never); counts the threads that read. */
struct reader {
	const uint8_t *buf;
	uint64_t len;
	uint64_t fail_at;
	int fail_err;
	pthread_mutex_t lock;
	pthread_t seen[8];
	int nseen;
	int bad;	     /* a read out of range, or of a length the hasher should not ask for */
	bool wait_for_two;   /* each read waits (5 s at most) until two threads have read */
	pthread_cond_t more; /* a thread read for the first time */
};

static int read_buf(void *ctx, uint64_t off, void *out, size_t len)
{
	struct reader *r = ctx;
	pthread_t me = pthread_self();
	bool known = false;

	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->nseen; i++)
		known = known || pthread_equal(r->seen[i], me);
	if (!known && r->nseen < 8)
		r->seen[r->nseen++] = me;
	if (!known)
		pthread_cond_broadcast(&r->more);
	/* so a second thread reads before the first takes every piece, however busy the
	 * machine: the check below then fails only if no second thread reads at all */
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (r->wait_for_two && r->nseen < 2)
		if (pthread_cond_timedwait(&r->more, &r->lock, &until) == ETIMEDOUT)
			r->wait_for_two = false; /* one thread alone: the check fails, once */
	if (off > r->len || len > r->len - off || len == 0 || len > (2u << 20))
		r->bad++;
	pthread_mutex_unlock(&r->lock);
	if (r->fail_at >= off && r->fail_at - off < len)
		return r->fail_err;
	memcpy(out, r->buf + off, len);
	return 0;
}

/* The read-back form gives the streaming hash for any size and thread count, reads only
 * what is there, reads on several threads when asked, and passes a read's error up. */
static void test_read(void)
{
	static const uint64_t sizes[] = {0,
					 1,
					 1023,
					 1024,
					 1025,
					 4096,
					 (1 << 20) - 1,
					 1 << 20,
					 (1 << 20) + 1,
					 5 << 20,
					 (9 << 20) + 7,
					 17 << 20};
	const size_t max = (17 << 20);
	uint8_t *buf = malloc(max), ref[VR_BLAKE3_LEN], out[VR_BLAKE3_LEN];

	fill(buf, max, 11);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct vr_blake3 h;

		vr_blake3_init(&h);
		vr_blake3_update(&h, buf, sizes[i]);
		vr_blake3_final(&h, ref, sizeof(ref));
		for (unsigned t = 0; t < 5; t++) {
			struct reader r = {.buf = buf,
					   .len = sizes[i],
					   .fail_at = UINT64_MAX,
					   .wait_for_two = sizes[i] >= (5 << 20) && t >= 2};

			pthread_mutex_init(&r.lock, NULL);
			pthread_cond_init(&r.more, NULL);
			memset(out, 0, sizeof(out));
			CHECK_EQ(vr_blake3_parallel_read(read_buf, &r, sizes[i], t, out), 0);
			CHECK_MEM(out, ref, sizeof(ref));
			CHECK_EQ(r.bad, 0);
			if (sizes[i] >= (5 << 20) && t >= 2)
				CHECK(r.nseen >= 2); /* the pieces were read on several threads */
			pthread_mutex_destroy(&r.lock);
			pthread_cond_destroy(&r.more);
		}
	}
	/* a failing read anywhere is the answer, on any thread */
	static const uint64_t fails[] = {0, 1023, 1 << 20, (9 << 20) + 6};
	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
		struct reader r = {
		    .buf = buf, .len = (9 << 20) + 7, .fail_at = fails[i], .fail_err = -EIO};

		pthread_mutex_init(&r.lock, NULL);
		pthread_cond_init(&r.more, NULL);
		CHECK_EQ(vr_blake3_parallel_read(read_buf, &r, r.len, 3, out), -EIO);
		r.len = 700;
		r.fail_err = -ENXIO;
		if (fails[i] < r.len)
			CHECK_EQ(vr_blake3_parallel_read(read_buf, &r, r.len, 3, out), -ENXIO);
		pthread_cond_destroy(&r.more);
		pthread_mutex_destroy(&r.lock);
	}
	free(buf);
}

int main(void)
{
	test_official();
	test_b3sum();
	test_property();
	test_flip();
	test_read();
	return check_summary();
}
