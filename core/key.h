/* key.h - the master secret in locked memory and the seal keys HKDF derives from it. */
#ifndef VR_KEY_H
#define VR_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VR_SECRET_MIN	    32
#define VR_SECRET_MAX	    4096
#define VR_KEY_ID_HEX	    16 /* hex digits of a key_id */
#define VR_HKDF_SALT	    "vram-residency/v1"
#define VR_HKDF_INFO	    "vram-residency/v1 seal key"
#define VR_HKDF_RECORD_INFO "vram-residency/v1 record key"
#define VR_KEY_ID_LABEL	    "vram-residency/v1 key id"

/* The master secret, held in locked, non-dumpable memory and wiped on free. */
struct vr_keyring;

/*
 * Loads the master secret from PATH. The file must be a regular file owned by
 * the effective user, with no group or other permission bits, of 32 to 4096
 * bytes. Returns 0; -ENOENT, -EACCES (loose mode or wrong owner), -EINVAL
 * (size, not a regular file), -ENOMEM or another -errno. Logs why, never a
 * byte of the secret.
 */
int vr_keyring_load(const char *path, struct vr_keyring **out);
/* Takes a secret from memory (tests, ephemeral secrets); returns 0, -EINVAL or -ENOMEM. */
int vr_keyring_from_bytes(const void *secret, size_t len, struct vr_keyring **out);
/* Makes a random 32-byte secret (from getrandom); returns 0 or -errno. */
int vr_keyring_generate(struct vr_keyring **out);
/* Whether A and B hold the same secret (compared in constant time). */
bool vr_keyring_equal(const struct vr_keyring *a, const struct vr_keyring *b);
/* Wipes and frees; NULL is fine. */
void vr_keyring_free(struct vr_keyring *k);

/*
 * HMAC-SHA256 of MSG under the seal key of device UUID:
 * key = HKDF-SHA256(IKM = master, salt = VR_HKDF_SALT, info = VR_HKDF_INFO "\0" UUID).
 * Returns 0 or -EINVAL (UUID too long).
 */
int vr_keyring_mac(const struct vr_keyring *k, const char *uuid, const void *msg, size_t len,
		   uint8_t out[32]);
/*
 * HMAC-SHA256 of MSG under the key of the records a daemon leaves a keeper for device UUID
 * (restart.c): HKDF as the seal key's, with info = VR_HKDF_RECORD_INFO "\0" UUID, so neither
 * key's MAC stands for the other's. Returns 0 or -EINVAL.
 */
int vr_keyring_record_mac(const struct vr_keyring *k, const char *uuid, const void *msg, size_t len,
			  uint8_t out[32]);
/*
 * The key_id of device UUID's seal key: the first 8 bytes, in hex, of
 * HMAC-SHA256(key, VR_KEY_ID_LABEL). Returns 0 or -EINVAL.
 */
int vr_keyring_key_id(const struct vr_keyring *k, const char *uuid, char out[VR_KEY_ID_HEX + 1]);

/*
 * LEN bytes of memory for key material: zeroed, locked (never swapped out; a warning is
 * logged when the lock is refused) and left out of core dumps. NULL when out of memory.
 */
void *vr_secure_alloc(size_t len);
/* Wipes, unlocks and frees what vr_secure_alloc gave (LEN as asked); NULL is fine. */
void vr_secure_free(void *p, size_t len);

/* HMAC-SHA256 (RFC 2104); exposed for the RFC 4231 tests. */
void vr_hmac_sha256(const void *key, size_t klen, const void *msg, size_t len, uint8_t out[32]);
/* HKDF-SHA256 (RFC 5869) into OUT (OLEN <= 8160); returns 0 or -EINVAL. */
int vr_hkdf_sha256(const void *salt, size_t slen, const void *ikm, size_t ilen, const void *info,
		   size_t infolen, uint8_t *out, size_t olen);

#endif
