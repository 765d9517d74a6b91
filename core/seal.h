/* seal.h - signed seals: the canonical signed encoding, JSON form and strict parser. */
#ifndef VR_SEAL_H
#define VR_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "key.h"

#define VR_SEAL_VERSION	   2 /* what the daemon signs; version 1 seals still verify */
#define VR_SEAL_VERSION_B3 3 /* ... and with a BLAKE3 digest in the seal */
#define VR_SEAL_ALG	   "HMAC-SHA256"
#define VR_SEAL_PATH_MAX   4096
#define VR_SEAL_JSON_MAX   65536	       /* longest seal text the parser reads */
#define VR_SIZE_MAX_JSON   9007199254740991ULL /* 2^53-1: exact in every JSON reader */
#define VR_CANON_TAG	   "vram-residency seal v1"
#define VR_CANON_TAG_V2	   "vram-residency seal v2"
#define VR_CANON_TAG_V3	   "vram-residency seal v3"

struct vr_seal_device {
	char backend[16]; /* "mock" or "cuda" */
	int index;
	char name[256];
	char uuid[128];
};

/* What a version-2 seal's bytes were checked against: a publisher's expected digest. */
struct vr_seal_expected {
	char kind[16]; /* "" (not checked), "sha256sums", "blake3sums" (version 3) or "oms" */
	char source[VR_SEAL_PATH_MAX];	       /* the source's path, relative to the mount root */
	char key_hint[2 * VR_DIGEST_SIZE + 1]; /* oms: the signer's key hint */
	uint8_t subject[VR_DIGEST_SIZE];       /* oms: the statement's subject digest */
};

struct vr_seal {
	/* 1, 2 or 3; signing makes a version-3 seal when it has a BLAKE3, else a version-2
	 * one (a version-1 seal without a BLAKE3 stays 1) */
	int version;
	char path[VR_SEAL_PATH_MAX]; /* relative to the mount root, no leading '/' */
	uint64_t size;
	bool no_sha256; /* version 2 under sha256=off: "sha256": null, only the tree digest */
	uint8_t sha256[VR_DIGEST_SIZE];
	uint8_t fsverity[VR_DIGEST_SIZE];
	/* version 3 only, and always there: the BLAKE3 of the bytes (b3sum's), taken where a
	 * checksums.blake3 names the file */
	bool has_blake3;
	uint8_t blake3[VR_DIGEST_SIZE];
	struct vr_seal_device device;
	char sealed_at[32];		  /* RFC 3339 UTC, seconds: 2026-11-26T13:21:37Z */
	struct vr_seal_expected expected; /* version 2; all zero in version 1 */
	char key_id[VR_KEY_ID_HEX + 1];
	char alg[16];
	uint8_t signature[32];
};

/* Writes the current time in the seal's format into OUT (>= 21 bytes). */
void vr_seal_now(char out[32]);

/*
 * The canonical encoding the signature covers (docs/seal-format.md): the tag
 * of the seal's version (VR_CANON_TAG, VR_CANON_TAG_V2) and a NUL, then for
 * each field in a fixed order its name, a NUL, an 8-byte big-endian value
 * length and the value. Writes at most CAP
 * bytes into BUF and the length into *LEN; returns 0 or -ENOSPC (CAP too small)
 * or -EINVAL (a field out of range).
 */
int vr_seal_canonical(const struct vr_seal *s, uint8_t *buf, size_t cap, size_t *len);
/* Sets version (kept at 1 only when it is 1), alg, key_id and signature; returns 0 or
 * -EINVAL/-ENOMEM. */
int vr_seal_sign(struct vr_seal *s, const struct vr_keyring *k);
/*
 * Checks version, alg, key_id and the signature (constant-time). Returns 0,
 * -EBADMSG for a mismatch, -EINVAL for a malformed seal.
 */
int vr_seal_verify(const struct vr_seal *s, const struct vr_keyring *k);
/* The seal as pretty JSON ending in a newline, malloc'd into *OUT; returns 0, -EINVAL or -ENOMEM.
 */
int vr_seal_to_json(const struct vr_seal *s, char **out);
/*
 * Parses seal JSON strictly: exactly the documented fields and types of
 * version 1 or 2, lowercase hex digests of the right length, at most VR_SEAL_JSON_MAX bytes.
 * Fills *OUT only on success. Returns 0 or -EINVAL with *WHY (if not NULL)
 * pointing at a static reason.
 */
int vr_seal_parse(const char *text, size_t len, struct vr_seal *out, const char **why);

#endif
