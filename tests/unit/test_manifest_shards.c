/* test_manifest_shards.c - a "shards" statement's pieces hashed on several threads: the same
 * verdict as one thread, the first shard that differs named, a read error passed up; digests
 * made by libcrypto (SHA-256, BLAKE2b-512) as an independent oracle. */
#include "check.h"
#include "rng.h"
#include "blake3.h"
#include "digest.h"
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define SHARD ((uint64_t)1 << 20)

/* The bytes a check reads, with a read that fails at byte FAIL_AT, and the threads seen. */
struct src {
	const uint8_t *p;
	uint64_t len;
	uint64_t fail_at; /* UINT64_MAX: never */
	pthread_mutex_t lock;
	pthread_t seen[4];
	int nseen;
	bool wait_for_two;   /* each read waits (5 s at most) until two threads have read */
	pthread_cond_t more; /* a thread read for the first time */
};

static int read_src(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct src *s = ctx;
	pthread_t me = pthread_self();
	bool known = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nseen; i++)
		known = known || pthread_equal(s->seen[i], me);
	if (!known && s->nseen < 4)
		s->seen[s->nseen++] = me;
	if (!known)
		pthread_cond_broadcast(&s->more);
	/* so a second thread reads before the first takes every piece, however busy the
	 * machine: the check below then fails only if no second thread reads at all */
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (s->wait_for_two && s->nseen < 2)
		if (pthread_cond_timedwait(&s->more, &s->lock, &until) == ETIMEDOUT)
			s->wait_for_two = false; /* one thread alone: the check fails, once */
	pthread_mutex_unlock(&s->lock);
	if (off > s->len || len > s->len - off)
		return -EFAULT;
	if (s->fail_at >= off && s->fail_at - off < len)
		return -EIO;
	memcpy(buf, s->p + off, len);
	return 0;
}

/* DATA's digest in H by libcrypto, or by BLAKE3 here (checked against b3sum elsewhere). */
static void digest(enum vr_hash h, const uint8_t *data, size_t len, uint8_t out[VR_HASH_MAX])
{
	unsigned n = 0;

	if (h == VR_HASH_BLAKE3) {
		struct vr_blake3 b;

		vr_blake3_init(&b);
		vr_blake3_update(&b, data, len);
		vr_blake3_final(&b, out, VR_BLAKE3_LEN);
		return;
	}
	CHECK_EQ(EVP_Digest(data, len, out, &n,
			    h == VR_HASH_SHA256 ? EVP_sha256() : EVP_blake2b512(), NULL),
		 1);
}

/* An entry listing LEN bytes of DATA as shards of SHARD bytes, digests in H. */
static void make_entry(enum vr_hash h, const uint8_t *data, uint64_t len,
		       struct vr_manifest_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->nshards = (size_t)((len + SHARD - 1) / SHARD);
	e->shards = calloc(e->nshards, sizeof(*e->shards));
	for (size_t i = 0; i < e->nshards; i++) {
		struct vr_manifest_shard *sh = &e->shards[i];

		sh->start = i * SHARD;
		sh->end = len - sh->start < SHARD ? len : sh->start + SHARD;
		digest(h, data + sh->start, (size_t)(sh->end - sh->start), sh->digest);
	}
}

static int check(const struct vr_manifest *m, const struct vr_manifest_entry *e, struct src *s,
		 char why[VR_WHY_MAX])
{
	s->nseen = 0;
	why[0] = 0;
	return vr_manifest_check_read(m, e, read_src, s, s->len, why);
}

/* Every flip names the first shard that differs, whichever thread found it. */
static void check_flips(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			struct src *s, uint8_t *data)
{
	static const size_t firsts[] = {0, 3, 17};
	char why[VR_WHY_MAX], at[64];

	for (size_t k = 0; k < sizeof(firsts) / sizeof(firsts[0]); k++) {
		size_t a = firsts[k], b = e->nshards - 1;

		if (a >= e->nshards)
			continue;
		data[e->shards[a].start + 5] ^= 0x40;
		data[e->shards[b].end - 1] ^= 0x02;
		CHECK_EQ(check(m, e, s, why), -EBADMSG);
		snprintf(at, sizeof(at), "of shard %" PRIu64 ":%" PRIu64 " differs",
			 e->shards[a].start, e->shards[a].end);
		if (!strstr(why, at))
			fprintf(stderr, "  why: %s (want %s)\n", why, at);
		CHECK(strstr(why, at) != NULL);
		data[e->shards[a].start + 5] ^= 0x40;
		data[e->shards[b].end - 1] ^= 0x02;
	}
}

static void test_shards(void)
{
	static const uint64_t sizes[] = {24 * SHARD, 24 * SHARD + 1, 9 * SHARD - 1, 3};
	static const enum vr_hash hashes[] = {VR_HASH_SHA256, VR_HASH_BLAKE2B, VR_HASH_BLAKE3};
	const size_t max = 24 * SHARD + 1;
	uint8_t *data = malloc(max);
	char why[VR_WHY_MAX];

	rng_state = 0x5a4d;
	for (size_t i = 0; i < max; i++)
		data[i] = (uint8_t)(rng() >> 56);
	for (size_t h = 0; h < 3; h++) {
		for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
			struct vr_manifest m = {
			    .kind = VR_MANIFEST_OMS, .hash = hashes[h], .shard_size = SHARD};
			struct vr_manifest_entry e;
			struct src s = {.p = data,
					.len = sizes[z],
					.fail_at = UINT64_MAX,
					.wait_for_two =
					    sizes[z] > 8 * SHARD && vr_cpu_count() >= 2};

			pthread_mutex_init(&s.lock, NULL);
			pthread_cond_init(&s.more, NULL);
			make_entry(hashes[h], data, sizes[z], &e);
			CHECK_EQ(check(&m, &e, &s, why), 0);
			/* more than 8 MiB on two CPUs or more: read on several threads */
			if (sizes[z] > 8 * SHARD && vr_cpu_count() >= 2)
				CHECK(s.nseen >= 2);
			check_flips(&m, &e, &s, data);
			/* a read that fails, in any shard, is the answer: not "differs" */
			s.fail_at = sizes[z] - 1;
			CHECK_EQ(check(&m, &e, &s, why), -EIO);
			CHECK(strstr(why, "cannot be read") != NULL);
			/* a size other than the shards add up to is refused before a read */
			s.fail_at = UINT64_MAX;
			s.len = sizes[z] - 1;
			CHECK_EQ(check(&m, &e, &s, why), -EBADMSG);
			CHECK(strstr(why, "where the shards list") != NULL);
			free(e.shards);
			pthread_mutex_destroy(&s.lock);
			pthread_cond_destroy(&s.more);
		}
	}
	free(data);
}

/* A whole file's BLAKE3 (a "files" statement) is read back on several threads too. */
static void test_whole_blake3(void)
{
	const uint64_t len = 13 * SHARD + 77;
	uint8_t *data = malloc(len);
	struct vr_manifest m = {.kind = VR_MANIFEST_OMS, .hash = VR_HASH_BLAKE3};
	struct vr_manifest_entry e = {0};
	struct src s = {
	    .p = data, .len = len, .fail_at = UINT64_MAX, .wait_for_two = vr_cpu_count() >= 2};
	char why[VR_WHY_MAX];

	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.more, NULL);
	rng_state = 0xb3;
	for (uint64_t i = 0; i < len; i++)
		data[i] = (uint8_t)(rng() >> 56);
	digest(VR_HASH_BLAKE3, data, len, e.digest);
	CHECK_EQ(check(&m, &e, &s, why), 0);
	if (vr_cpu_count() >= 2)
		CHECK(s.nseen >= 2);
	data[len / 2] ^= 1;
	CHECK_EQ(check(&m, &e, &s, why), -EBADMSG);
	CHECK(strstr(why, "blake3 differs") != NULL);
	data[len / 2] ^= 1;
	s.fail_at = 5 * SHARD;
	CHECK_EQ(check(&m, &e, &s, why), -EIO);
	pthread_mutex_destroy(&s.lock);
	pthread_cond_destroy(&s.more);
	free(data);
}

int main(void)
{
	test_shards();
	test_whole_blake3();
	return check_summary();
}
