/* manifest_hash.c - a listed file's bytes against what its source lists: the whole file's
 * digest or each shard's, in SHA-256, BLAKE2b-512 or BLAKE3. */
#include "manifest_private.h"
#include "blake3.h"
#include "digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <openssl/evp.h>

#define PIECE (1u << 20) /* bytes read and hashed at a time */

/* One running hash of any of the three kinds: Nettle's SHA-256, BLAKE3 here, libcrypto's
 * BLAKE2b-512 (Nettle 3.8 has none). */
struct hasher {
	enum vr_hash h;
	struct sha256_ctx sha;
	struct vr_blake3 b3;
	EVP_MD_CTX *evp;
};

static int hasher_start(struct hasher *x, enum vr_hash h)
{
	x->h = h;
	if (h == VR_HASH_SHA256) {
		sha256_init(&x->sha);
	} else if (h == VR_HASH_BLAKE3) {
		vr_blake3_init(&x->b3);
	} else {
		if (!x->evp && !(x->evp = EVP_MD_CTX_new()))
			return -ENOMEM;
		if (EVP_DigestInit_ex(x->evp, EVP_blake2b512(), NULL) != 1)
			return -EIO;
	}
	return 0;
}

static int hasher_update(struct hasher *x, const void *data, size_t len)
{
	if (x->h == VR_HASH_SHA256)
		sha256_update(&x->sha, len, data);
	else if (x->h == VR_HASH_BLAKE3)
		vr_blake3_update(&x->b3, data, len);
	else if (EVP_DigestUpdate(x->evp, data, len) != 1)
		return -EIO;
	return 0;
}

static int hasher_final(struct hasher *x, uint8_t out[VR_HASH_MAX])
{
	unsigned n = 0;

	if (x->h == VR_HASH_SHA256)
		sha256_digest(&x->sha, VR_DIGEST_SIZE, out);
	else if (x->h == VR_HASH_BLAKE3)
		vr_blake3_final(&x->b3, out, VR_BLAKE3_LEN);
	else if (EVP_DigestFinal_ex(x->evp, out, &n) != 1 || n != 64)
		return -EIO;
	return 0;
}

bool vr_manifest_seal_comparable(const struct vr_manifest *m)
{
	return !m->shard_size && m->hash != VR_HASH_BLAKE2B;
}

/* Hashes bytes [START, END) read through READ into OUT, with BUF (PIECE bytes) between. */
static int hash_range(struct hasher *x, enum vr_hash h, vr_read_fn read, void *ctx, uint64_t start,
		      uint64_t end, uint8_t *buf, uint8_t out[VR_HASH_MAX])
{
	int ret = hasher_start(x, h);

	for (uint64_t at = start; ret == 0 && at < end;) {
		size_t n = end - at < PIECE ? (size_t)(end - at) : PIECE;

		ret = read(ctx, at, buf, n);
		if (ret == 0)
			ret = hasher_update(x, buf, n);
		at += n;
	}
	return ret ? ret : hasher_final(x, out);
}

/* Threads that hash shards at once: at most one per CPU, this many in all. */
#define SHARD_THREADS 16

/* A statement's shards hashed on several threads, each taking the next shard nobody has. */
struct shard_job {
	const struct vr_manifest *m;
	const struct vr_manifest_entry *e;
	vr_read_fn read;
	void *ctx;
	atomic_size_t next;
	atomic_size_t first_bad; /* the first shard found to differ so far (NSHARDS: none) */
	atomic_int err;		 /* the first read or hash error: everyone stops */
};

static void shard_fail(struct shard_job *j, int err)
{
	int none = 0;

	atomic_compare_exchange_strong(&j->err, &none, err);
}

/* Lowers J's first differing shard to I. */
static void shard_differs(struct shard_job *j, size_t i)
{
	size_t was = atomic_load(&j->first_bad);

	while (i < was && !atomic_compare_exchange_weak(&j->first_bad, &was, i))
		;
}

static void *shard_worker(void *arg)
{
	struct shard_job *j = arg;
	size_t dlen = vr_hash_size(j->m->hash), i;
	struct hasher x = {0};
	uint8_t got[VR_HASH_MAX], *buf = malloc(PIECE);

	if (!buf)
		shard_fail(j, -ENOMEM);
	while (buf && atomic_load(&j->err) == 0 &&
	       (i = atomic_fetch_add(&j->next, 1)) < j->e->nshards) {
		const struct vr_manifest_shard *sh = &j->e->shards[i];
		int ret;

		if (i > atomic_load(&j->first_bad))
			continue; /* an earlier shard already differs: that one is named */
		ret = hash_range(&x, j->m->hash, j->read, j->ctx, sh->start, sh->end, buf, got);
		if (ret)
			shard_fail(j, ret);
		else if (!memeql_sec(got, sh->digest, dlen))
			shard_differs(j, i);
	}
	EVP_MD_CTX_free(x.evp);
	free(buf);
	return NULL;
}

/* How many threads E's shards (SIZE bytes in all) are worth: one per CPU, each with
 * SHARD_MIN_SHARE bytes or more, no more than there are shards. */
#define SHARD_MIN_SHARE ((uint64_t)4 << 20)
static unsigned shard_threads(const struct vr_manifest_entry *e, uint64_t size)
{
	uint64_t n = vr_cpu_count();

	if (n > size / SHARD_MIN_SHARE)
		n = size / SHARD_MIN_SHARE;
	if (n > e->nshards)
		n = e->nshards;
	if (n > SHARD_THREADS)
		n = SHARD_THREADS;
	return n ? (unsigned)n : 1;
}

/* Hashes E's shards on as many threads as are worth it; 0, -EBADMSG (WHY names the first
 * that differs) or the first error. */
static int check_shards(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			vr_read_fn read, void *ctx, uint64_t size, char why[VR_WHY_MAX])
{
	struct shard_job j = {.m = m, .e = e, .read = read, .ctx = ctx};
	pthread_t tids[SHARD_THREADS];
	unsigned want = shard_threads(e, size), started = 0;

	atomic_init(&j.next, 0);
	atomic_init(&j.first_bad, e->nshards);
	atomic_init(&j.err, 0);
	for (unsigned t = 1; t < want; t++) {
		if (pthread_create(&tids[started], NULL, shard_worker, &j) != 0)
			break; /* those started, and this thread, take its share */
		started++;
	}
	shard_worker(&j);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	if (atomic_load(&j.err))
		return atomic_load(&j.err);
	size_t bad = atomic_load(&j.first_bad);

	if (bad < e->nshards)
		return mf_fail(why, -EBADMSG, "%s of shard %" PRIu64 ":%" PRIu64 " differs",
			       vr_hash_name(m->hash), e->shards[bad].start, e->shards[bad].end);
	return 0;
}

/* The whole file's digest: BLAKE3's subtrees on every core, the others on this thread. */
static int check_whole(const struct vr_manifest *m, const struct vr_manifest_entry *e,
		       vr_read_fn read, void *ctx, uint64_t size, char why[VR_WHY_MAX])
{
	struct hasher x = {0};
	uint8_t got[VR_HASH_MAX], *buf;
	int ret;

	if (m->hash == VR_HASH_BLAKE3) {
		ret = vr_blake3_parallel_read(read, ctx, size, 0, got);
	} else if (!(buf = malloc(PIECE))) {
		ret = -ENOMEM;
	} else {
		ret = hash_range(&x, m->hash, read, ctx, 0, size, buf, got);
		EVP_MD_CTX_free(x.evp);
		free(buf);
	}
	if (ret == 0 && !memeql_sec(got, e->digest, vr_hash_size(m->hash)))
		ret = mf_fail(why, -EBADMSG, "%s differs", vr_hash_name(m->hash));
	return ret;
}

/*
 * Checks the SIZE bytes READ gives against E (see vr_manifest_check_bytes):
 * shards first by the size they add up to, then each on whichever thread is
 * free, naming the first in order that differs. READ is called from several
 * threads at once. Returns 0, -EBADMSG (WHY), READ's error, -ENOMEM or -EIO
 * (libcrypto refused).
 */
int vr_manifest_check_read(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			   vr_read_fn read, void *ctx, uint64_t size, char why[VR_WHY_MAX])
{
	uint64_t want_size = e->shards && e->nshards ? e->shards[e->nshards - 1].end : 0;
	int ret;

	if (e->shards && size != want_size)
		return mf_fail(why, -EBADMSG, "%" PRIu64 " bytes where the shards list %" PRIu64,
			       size, want_size);
	if (e->shards)
		ret = check_shards(m, e, read, ctx, size, why);
	else
		ret = check_whole(m, e, read, ctx, size, why);
	if (ret == -ENOMEM)
		mf_fail(why, ret, "out of memory");
	else if (ret && ret != -EBADMSG)
		mf_fail(why, ret, "cannot be read or hashed: %s", strerror(-ret));
	return ret;
}

struct mem {
	const uint8_t *p;
	uint64_t len;
};

static int read_mem(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct mem *mm = ctx;

	if (off > mm->len || len > mm->len - off)
		return -EIO;
	memcpy(buf, mm->p + off, len);
	return 0;
}

int vr_manifest_check_bytes(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			    const uint8_t *data, uint64_t len, char why[VR_WHY_MAX])
{
	struct mem mm = {data, len};

	return vr_manifest_check_read(m, e, read_mem, &mm, len, why);
}
