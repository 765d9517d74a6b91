/* manifest_hash.c - a listed file's bytes against what its source lists: the whole file's
 * digest or each shard's, in SHA-256, BLAKE2b-512 or BLAKE3. */
#include "manifest_private.h"
#include "blake3.h"

#include <errno.h>
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

/*
 * Checks the SIZE bytes READ gives against E (see vr_manifest_check_bytes):
 * shards first by the size they add up to, then one by one in order, so the
 * first that differs is named. Returns 0, -EBADMSG (WHY), READ's error, -ENOMEM
 * or -EIO (libcrypto refused).
 */
int vr_manifest_check_read(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			   vr_read_fn read, void *ctx, uint64_t size, char why[VR_WHY_MAX])
{
	size_t dlen = vr_hash_size(m->hash);
	uint64_t want_size = e->shards && e->nshards ? e->shards[e->nshards - 1].end : 0;
	struct hasher x = {0};
	uint8_t got[VR_HASH_MAX], *buf;
	int ret = 0;

	if (e->shards && size != want_size)
		return mf_fail(why, -EBADMSG, "%" PRIu64 " bytes where the shards list %" PRIu64,
			       size, want_size);
	buf = malloc(PIECE);
	if (!buf)
		return mf_fail(why, -ENOMEM, "out of memory");
	if (!e->shards) {
		ret = hash_range(&x, m->hash, read, ctx, 0, size, buf, got);
		if (ret == 0 && !memeql_sec(got, e->digest, dlen))
			ret = mf_fail(why, -EBADMSG, "%s differs", vr_hash_name(m->hash));
	}
	for (size_t i = 0; e->shards && ret == 0 && i < e->nshards; i++) {
		const struct vr_manifest_shard *sh = &e->shards[i];

		ret = hash_range(&x, m->hash, read, ctx, sh->start, sh->end, buf, got);
		if (ret == 0 && !memeql_sec(got, sh->digest, dlen))
			ret = mf_fail(why, -EBADMSG, "%s of shard %" PRIu64 ":%" PRIu64 " differs",
				      vr_hash_name(m->hash), sh->start, sh->end);
	}
	EVP_MD_CTX_free(x.evp);
	free(buf);
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
