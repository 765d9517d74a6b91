/* manifest_private.h - what the manifest's files share with each other, and no one else. */
#ifndef VR_MANIFEST_PRIVATE_H
#define VR_MANIFEST_PRIVATE_H

#include "manifest.h"

#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/nettle-meta.h>
#include <openssl/x509.h>

struct cJSON;

/* The PEM lines around a SubjectPublicKeyInfo: trusted key files and a bundle's rawBytes. */
#define PEM_BEGIN "-----BEGIN PUBLIC KEY-----"
#define PEM_END	  "-----END PUBLIC KEY-----"

/* ---- manifest_sums.c: reasons, names, entries ---- */

/* Writes the reason into WHY (cut to VR_WHY_MAX) and returns ERR. */
int mf_fail(char why[VR_WHY_MAX], int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Normalizes a listed relative path in place; NULL, or why it is refused. */
const char *mf_normalize_rel(char *p);
/* The same for a listed file's name, which may not end in '/' (that names a folder: sha256sum
 * would fail on it), where an ignored path may. */
const char *mf_normalize_file(char *p);
/* Appends an entry to M (NAME is taken over); 0, -ENOMEM or -E2BIG. */
int mf_add_entry(struct vr_manifest *m, size_t *cap, char *name, const uint8_t *sha);
/* The same with a digest of DLEN bytes (at most VR_HASH_MAX), or none (DIGEST NULL: shards). */
int mf_add_entry_n(struct vr_manifest *m, size_t *cap, char *name, const uint8_t *digest,
		   size_t dlen);
/* Sorts M's entries by name; the index of a name listed twice, or -1. */
long mf_sort_entries(struct vr_manifest *m);

/* ---- manifest_stmt.c: the statement ---- */

/* Reads the verified statement PAYLOAD into M (serialization, resources, subject checked). */
int mf_read_statement(struct vr_manifest *m, const uint8_t *payload, size_t plen,
		      char why[VR_WHY_MAX]);

/* ---- manifest_keys.c: base64, DER, trusted keys ---- */

/* Decodes base64 (whitespace skipped) into a malloc'd *OUT; 0, -ENOMEM or -EINVAL. */
int mf_b64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen);

/* A DER element's content, or what is left of one while it is read. */
struct der {
	const uint8_t *p;
	size_t len;
};

/* Takes one DER element of type TAG from the front of D; its content into *OUT. */
bool mf_der_take(struct der *d, uint8_t tag, struct der *out);

/* One trusted key: what verifying a signature with it needs, and what names it. */
struct trust_key {
	const struct ecc_curve *curve;
	const struct nettle_hash *hash; /* what signatures with this key hash: by curve size */
	size_t coord;			/* bytes of one coordinate */
	struct ecc_point pub;
	uint8_t *der; /* the SubjectPublicKeyInfo */
	size_t derlen;
	char hint[2 * VR_DIGEST_SIZE + 1];
};

struct vr_trust {
	struct trust_key keys[VR_TRUST_MAX_KEYS];
	size_t count;
	X509_STORE *roots; /* the CERTIFICATE blocks: self-signed CA roots; NULL when none */
	size_t nroots;
};

/* ---- manifest_x509.c: certificate mode ---- */

/*
 * Adds every "CERTIFICATE" PEM block of TEXT to T's roots (each must be a
 * self-signed CA certificate); *FOUND counts them. Refuses the whole text at
 * the first bad block, as for keys. Returns 0 or -errno with WHY.
 */
int mf_add_roots(struct vr_trust *t, const char *text, size_t len, const char *src, size_t *found,
		 char why[VR_WHY_MAX]);
/*
 * Verifies a certificate-mode signature: CERTS (the bundle's certificates,
 * leaf first) must chain to one of TRUST's roots, every one valid at the
 * signing time the bundle states (the leaf's notBefore, not after now), the leaf
 * may sign (digitalSignature or codeSigning), and SIG (DER ECDSA) must verify
 * over DSSE's encoding of (PTYPE, PAYLOAD) with the leaf's key. HINT gets the
 * hex SHA-256 of the leaf's key as canonical PEM. Returns 0, -EINVAL,
 * -EKEYREJECTED, -EOPNOTSUPP, -EBADMSG or -ENOMEM, with WHY.
 */
int mf_cert_verify(const struct cJSON *certs, const struct vr_trust *trust, const char *ptype,
		   const uint8_t *payload, size_t plen, const uint8_t *sig, size_t slen,
		   char hint[2 * VR_DIGEST_SIZE + 1], char why[VR_WHY_MAX]);

#endif
