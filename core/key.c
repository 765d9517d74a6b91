/* key.c - the master secret in locked memory and the seal keys HKDF derives from it. */
#include "key.h"
#include "digest.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/memops.h>

#include <nettle/hkdf.h>
#include <nettle/hmac.h>

struct vr_keyring {
	size_t len;
	uint8_t secret[VR_SECRET_MAX];
};

#define UUID_MAX 128

void *vr_secure_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Locked so the secret never reaches swap; excluded from core dumps. */
	if (mlock(p, len) != 0)
		vr_log(LOG_WARNING, "cannot lock key memory (%s); the secret may be swapped out",
		       strerror(errno));
	if (madvise(p, len, MADV_DONTDUMP) != 0)
		vr_log(LOG_WARNING, "cannot exclude key memory from core dumps (%s)",
		       strerror(errno));
	return p;
}

void vr_secure_free(void *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	munlock(p, len);
	munmap(p, len);
}

static int keyring_alloc(struct vr_keyring **out)
{
	struct vr_keyring *k = vr_secure_alloc(sizeof(*k));

	if (!k)
		return -ENOMEM;
	k->len = 0;
	*out = k;
	return 0;
}

bool vr_keyring_equal(const struct vr_keyring *a, const struct vr_keyring *b)
{
	return a->len == b->len && nettle_memeql_sec(a->secret, b->secret, a->len);
}

void vr_keyring_free(struct vr_keyring *k)
{
	vr_secure_free(k, k ? sizeof(*k) : 0);
}

int vr_keyring_from_bytes(const void *secret, size_t len, struct vr_keyring **out)
{
	struct vr_keyring *k;
	int ret;

	if (len < VR_SECRET_MIN || len > VR_SECRET_MAX)
		return -EINVAL;
	ret = keyring_alloc(&k);
	if (ret)
		return ret;
	memcpy(k->secret, secret, len);
	k->len = len;
	*out = k;
	return 0;
}

int vr_keyring_generate(struct vr_keyring **out)
{
	struct vr_keyring *k;
	int ret = keyring_alloc(&k);

	if (ret)
		return ret;
	for (size_t got = 0; got < 32;) {
		ssize_t n = getrandom(k->secret + got, 32 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			vr_keyring_free(k);
			return ret;
		}
		got += (size_t)n;
	}
	k->len = 32;
	*out = k;
	return 0;
}

int vr_keyring_load(const char *path, struct vr_keyring **out)
{
	struct vr_keyring *k;
	struct stat st;
	int fd, ret;

	/* O_NONBLOCK: a FIFO given as the secret must be refused at once, not wait for a writer */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		vr_log(LOG_ERR, "cannot open secret file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		vr_log(LOG_ERR, "cannot stat secret file %s: %s", path, strerror(errno));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		vr_log(LOG_ERR, "secret file %s is not a regular file", path);
		goto close_fd;
	}
	if (st.st_uid != geteuid()) {
		ret = -EACCES;
		vr_log(LOG_ERR,
		       "secret file %s is owned by uid %u, not by uid %u running this; fix: chown "
		       "%u %s",
		       path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
		goto close_fd;
	}
	if (st.st_mode & 077) {
		ret = -EACCES;
		vr_log(LOG_ERR,
		       "secret file %s is accessible by group or others (mode %04o); fix: chmod "
		       "600 %s",
		       path, (unsigned)(st.st_mode & 07777), path);
		goto close_fd;
	}
	if (st.st_size < VR_SECRET_MIN || st.st_size > VR_SECRET_MAX) {
		ret = -EINVAL;
		vr_log(LOG_ERR,
		       "secret file %s holds %lld bytes; it needs %d to %d (e.g. head -c 32 "
		       "/dev/urandom > %s)",
		       path, (long long)st.st_size, VR_SECRET_MIN, VR_SECRET_MAX, path);
		goto close_fd;
	}
	ret = keyring_alloc(&k);
	if (ret)
		goto close_fd;
	while (k->len < (size_t)st.st_size) {
		ssize_t n = read(fd, k->secret + k->len, (size_t)st.st_size - k->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			vr_log(LOG_ERR, "cannot read secret file %s: %s", path,
			       n < 0 ? strerror(errno) : "file shrank while read");
			goto free_keyring;
		}
		k->len += (size_t)n;
	}
	*out = k;
	close(fd);
	return 0;

free_keyring:
	vr_keyring_free(k);
close_fd:
	close(fd);
	return ret;
}

void vr_hmac_sha256(const void *key, size_t klen, const void *msg, size_t len, uint8_t out[32])
{
	struct hmac_sha256_ctx c;

	hmac_sha256_set_key(&c, klen, key);
	hmac_sha256_update(&c, len, msg);
	hmac_sha256_digest(&c, SHA256_DIGEST_SIZE, out);
	explicit_bzero(&c, sizeof(c));
}

int vr_hkdf_sha256(const void *salt, size_t slen, const void *ikm, size_t ilen, const void *info,
		   size_t infolen, uint8_t *out, size_t olen)
{
	static const uint8_t zeros[SHA256_DIGEST_SIZE];
	struct hmac_sha256_ctx c;
	uint8_t prk[SHA256_DIGEST_SIZE];

	if (olen > 255 * SHA256_DIGEST_SIZE)
		return -EINVAL;
	/* RFC 5869: an absent salt is HashLen zero bytes */
	if (slen == 0)
		hmac_sha256_set_key(&c, sizeof(zeros), zeros);
	else
		hmac_sha256_set_key(&c, slen, salt);
	hkdf_extract(&c, (nettle_hash_update_func *)hmac_sha256_update,
		     (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, ilen, ikm,
		     prk);
	hmac_sha256_set_key(&c, sizeof(prk), prk);
	hkdf_expand(&c, (nettle_hash_update_func *)hmac_sha256_update,
		    (nettle_hash_digest_func *)hmac_sha256_digest, SHA256_DIGEST_SIZE, infolen,
		    info, olen, out);
	explicit_bzero(&c, sizeof(c));
	explicit_bzero(prk, sizeof(prk));
	return 0;
}

/* HKDF-SHA256(IKM = master, salt = VR_HKDF_SALT, info = LABEL "\0" UUID) into KEY. */
static int derive_for(const struct vr_keyring *k, const char *label, const char *uuid,
		      uint8_t key[32])
{
	uint8_t info[64 + UUID_MAX];
	size_t llen = strlen(label) + 1, ulen = strlen(uuid);

	if (ulen >= UUID_MAX || llen > 64)
		return -EINVAL;
	/* the NUL separates the label from the UUID; INFO is bytes with a length, not a
	 * string, so the UUID needs no NUL after it */
	memcpy(info, label, llen);
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
	memcpy(info + llen, uuid, ulen);
	return vr_hkdf_sha256(VR_HKDF_SALT, strlen(VR_HKDF_SALT), k->secret, k->len, info,
			      llen + ulen, key, 32);
}

static int derive(const struct vr_keyring *k, const char *uuid, uint8_t key[32])
{
	return derive_for(k, VR_HKDF_INFO, uuid, key);
}

int vr_keyring_record_mac(const struct vr_keyring *k, const char *uuid, const void *msg, size_t len,
			  uint8_t out[32])
{
	uint8_t key[32];
	int ret = derive_for(k, VR_HKDF_RECORD_INFO, uuid, key);

	if (ret == 0)
		vr_hmac_sha256(key, sizeof(key), msg, len, out);
	explicit_bzero(key, sizeof(key));
	return ret;
}

int vr_keyring_mac(const struct vr_keyring *k, const char *uuid, const void *msg, size_t len,
		   uint8_t out[32])
{
	uint8_t key[32];
	int ret = derive(k, uuid, key);

	if (ret == 0)
		vr_hmac_sha256(key, sizeof(key), msg, len, out);
	explicit_bzero(key, sizeof(key));
	return ret;
}

int vr_keyring_key_id(const struct vr_keyring *k, const char *uuid, char out[VR_KEY_ID_HEX + 1])
{
	uint8_t mac[32];
	int ret = vr_keyring_mac(k, uuid, VR_KEY_ID_LABEL, strlen(VR_KEY_ID_LABEL), mac);

	if (ret == 0)
		vr_hex(mac, VR_KEY_ID_HEX / 2, out);
	return ret;
}
