/* manifest.h - expected digests: SHA256SUMS and checksums.blake3 files, and OpenSSF model
 * signatures (OMS). */
#ifndef VR_MANIFEST_H
#define VR_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/* The file names that are sources of expected digests for their directory. */
#define VR_SUMS_NAME   "SHA256SUMS"
#define VR_OMS_NAME    "model.sig"
#define VR_B3SUMS_NAME "checksums.blake3"

/* Strict limits on what the parsers read. */
#define VR_MANIFEST_MAX_BYTES	(16u << 20) /* a source larger than this is refused */
#define VR_MANIFEST_MAX_ENTRIES 100000	    /* files one source may list */
#define VR_MANIFEST_NAME_MAX	4095	    /* bytes of one listed relative path */
#define VR_SUMS_LINE_MAX	(VR_MANIFEST_NAME_MAX + 80)
#define VR_OMS_IGNORE_MAX	256 /* ignore_paths entries */
#define VR_TRUST_MAX_KEYS	64
#define VR_TRUST_MAX_ROOTS	64  /* CERTIFICATE blocks in trust= */
#define VR_OMS_CHAIN_MAX	10  /* certificates in a bundle's x509CertificateChain */
#define VR_WHY_MAX		256 /* room for a reason given to the caller */

enum vr_manifest_kind {
	VR_MANIFEST_SUMS = 1,	/* a sha256sum-format file */
	VR_MANIFEST_OMS = 2,	/* an OpenSSF model signing bundle, signature checked */
	VR_MANIFEST_B3SUMS = 3, /* a b3sum-format file (NGC's checksums.blake3): BLAKE3 digests */
};

/* The hash a source's digests are of: SHA-256, BLAKE2b-512 (OMS "blake2b", 64 bytes) or
 * BLAKE3 (32 bytes). */
enum vr_hash {
	VR_HASH_SHA256 = 0,
	VR_HASH_BLAKE2B = 1,
	VR_HASH_BLAKE3 = 2,
};
#define VR_HASH_MAX 64 /* bytes of the largest digest (BLAKE2b) */

/* One piece of a file an OMS "shards" statement lists: bytes [START, END) and their digest. */
struct vr_manifest_shard {
	uint64_t start, end;
	uint8_t digest[VR_HASH_MAX];
};

struct vr_manifest_entry {
	char *name; /* relative to the source's directory, '/'-separated, normalized */
	/* the listed digest of the whole file, of the manifest's hash (vr_manifest_hash());
	 * unused when SHARDS is set */
	uint8_t digest[VR_HASH_MAX];
	/* OMS "shards": the file's pieces in order, contiguous from 0, each SHARD_SIZE bytes but
	 * the last (1 to SHARD_SIZE); the file's size is the last one's end. NULL otherwise. */
	struct vr_manifest_shard *shards;
	size_t nshards;
};

/* The expected digests one source states, names sorted (strcmp) and unique. */
struct vr_manifest {
	enum vr_manifest_kind kind;
	struct vr_manifest_entry *entries;
	size_t count;
	/* whether a listed name may be a symbolic link, followed to the bytes it names: OMS, the
	 * statement's serialization.allow_symlinks (absent: false, as model_signing); SHA256SUMS
	 * and checksums.blake3: true (sha256sum and b3sum read through links) */
	bool allow_symlinks;
	char **ignore; /* OMS: paths (and what is below them) that are not expected */
	size_t nignore;
	enum vr_hash hash; /* what the digests are of */
	/* OMS "shards": the statement's shard_size (entries hold SHARDS); 0 for whole files */
	uint64_t shard_size;
	/* OMS: hex SHA-256 of the signer's canonical PEM (a key), or of the leaf certificate's
	 * public key as canonical PEM (certificate mode: CERT_SIGNED) */
	char key_hint[2 * VR_DIGEST_SIZE + 1];
	bool cert_signed;		 /* OMS: verified through an X.509 chain to a trust= root */
	uint8_t subject[VR_DIGEST_SIZE]; /* OMS: the statement's subject digest */
};

/* Public keys an operator trusts to sign models (ECDSA P-256, P-384, P-521), and root
 * certificates for bundles signed in certificate mode (an X.509 chain). */
struct vr_trust;

/*
 * Loads trusted keys and roots from PATH: a PEM file (text around the PEM
 * blocks, such as certtool's dump, is skipped) or a directory of them (every
 * regular "*.pem" file). Each "PUBLIC KEY" block must be an ECDSA
 * SubjectPublicKeyInfo on a supported curve; each "CERTIFICATE" block must be
 * a self-signed X.509 CA certificate, a root for certificate-mode bundles.
 * Returns 0; -ENOENT, -EINVAL (no key or root, or one that does not parse),
 * -E2BIG (over VR_TRUST_MAX_KEYS or VR_TRUST_MAX_ROOTS) or another -errno,
 * with the reason in WHY.
 */
int vr_trust_load(const char *path, struct vr_trust **out, char why[VR_WHY_MAX]);
/* The same from PEM text in memory (tests, the fuzzer). */
int vr_trust_from_pem(const char *text, size_t len, struct vr_trust **out, char why[VR_WHY_MAX]);
size_t vr_trust_count(const struct vr_trust *t);
/* The number of root certificates in T (NULL has none). */
size_t vr_trust_roots(const struct vr_trust *t);
/* The hint (hex SHA-256 of the canonical PEM) of key I, as bundles name it. */
const char *vr_trust_hint(const struct vr_trust *t, size_t i);
void vr_trust_free(struct vr_trust *t);

/*
 * Parses a SHA256SUMS text (sha256sum's output: "<64 hex>  <name>" or
 * "<64 hex> *<name>", a leading '\' for escaped names, "./" prefixes
 * dropped; '#' comments and blank lines skipped). Names must be relative,
 * without "." or ".." components, and listed once. Returns 0, -EFBIG (over
 * VR_MANIFEST_MAX_BYTES), -E2BIG (over VR_MANIFEST_MAX_ENTRIES), -EINVAL
 * (WHY gives the line number and the fault) or -ENOMEM.
 */
int vr_sums_parse(const char *text, size_t len, struct vr_manifest **out, char why[VR_WHY_MAX]);

/*
 * Parses a checksums.blake3 text as b3sum --check reads it, strictly:
 * "<64 lowercase hex>  <name>" lines ending in '\n' (the last may not), a
 * leading '\' for escaped names (\\ and \n), no blank line, comment, '*'
 * (binary mode) or '\r'. Names as vr_sums_parse. Returns as vr_sums_parse,
 * WHY naming the line.
 */
int vr_b3sums_parse(const char *text, size_t len, struct vr_manifest **out, char why[VR_WHY_MAX]);

/*
 * Parses an OMS bundle (model.sig) and checks it: a Sigstore bundle v0.3 with
 * a public key (a hint, or the key itself in rawBytes) that must be one of
 * TRUST's, or an X.509 certificate chain that must lead to one of TRUST's
 * roots (valid at the leaf's notBefore, the signing time the bundle states;
 * the leaf usable for signing); one DSSE signature over an
 * in-toto Statement v1 of predicate type https://model_signing/signature/v1.0,
 * method "files" or "shards" with sha256, blake2b or blake3, and a subject
 * digest that matches the resources. Returns 0 with the manifest in *OUT;
 * -EFBIG; -EINVAL (malformed); -EOPNOTSUPP (another method or hash, keyless
 * Sigstore, transparency-log entries); -EKEYREJECTED (no trusted key or root
 * matches, an expired certificate or one not for signing; TRUST may be NULL);
 * -EBADMSG (the signature or the subject digest does not verify); -ENOMEM.
 * WHY says which, in one line.
 */
int vr_oms_verify(const char *text, size_t len, const struct vr_trust *trust,
		  struct vr_manifest **out, char why[VR_WHY_MAX]);

void vr_manifest_free(struct vr_manifest *m);
/* The entry for relative path REL, or NULL. */
const struct vr_manifest_entry *vr_manifest_find(const struct vr_manifest *m, const char *rel);
/* Whether REL is not expected at all: an OMS ignored path (or below one). */
bool vr_manifest_ignored(const struct vr_manifest *m, const char *rel);
/* Which kind a file named NAME is a source of; 0 when none. */
enum vr_manifest_kind vr_manifest_kind_of(const char *name);
/* "SHA256SUMS", "checksums.blake3" or "OMS" */
const char *vr_manifest_kind_name(enum vr_manifest_kind kind);
/* Whether KIND lists BLAKE3 digests (else SHA-256). */
bool vr_manifest_blake3(enum vr_manifest_kind kind);
/* "sha256", "blake2b" or "blake3" */
const char *vr_hash_name(enum vr_hash h);
/* The size of an H digest in bytes. */
size_t vr_hash_size(enum vr_hash h);
/*
 * Whether the whole-file digest a seal carries (its SHA-256, or its BLAKE3
 * where M lists BLAKE3) is what M compares: false for shards and for BLAKE2b,
 * whose digests must be taken from the bytes (vr_manifest_check_bytes).
 */
bool vr_manifest_seal_comparable(const struct vr_manifest *m);
/*
 * Checks the LEN bytes DATA of the file E names against E: its whole-file
 * digest, or each shard's (the size the shards add up to, then every shard's
 * digest, in constant time). Returns 0 when they match, -EBADMSG with WHY
 * naming the first difference (the size, or the shard "START:END"), -ENOMEM.
 */
int vr_manifest_check_bytes(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			    const uint8_t *data, uint64_t len, char why[VR_WHY_MAX]);
/* The same over a file of SIZE bytes read through READ(CTX, ...) in pieces of 1 MiB (device
 * memory read back); also READ's error, or -EIO. */
int vr_manifest_check_read(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			   vr_read_fn read, void *ctx, uint64_t size, char why[VR_WHY_MAX]);

#endif
