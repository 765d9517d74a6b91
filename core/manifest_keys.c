/* manifest_keys.c - base64 and DER readers, and the trusted keys that may sign models. */
#include "manifest_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmp.h>
#include <nettle/base64.h>
#include <nettle/sha2.h>

/* ---- base64 and DER ---- */

/*
 * Decodes base64 TEXT into a malloc'd *OUT (NULL when this fails). Accepts
 * whitespace anywhere, as PEM's line breaks need; padding is checked by
 * base64_decode_final. Refuses input over VR_MANIFEST_MAX_BYTES before any
 * allocation: nothing this reads is larger, so a huge length cannot become a
 * huge allocation. Returns 0, -ENOMEM or -EINVAL.
 */
int mf_b64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
{
	struct base64_decode_ctx ctx;
	uint8_t *buf;
	size_t n;

	*out = NULL;
	if (len > VR_MANIFEST_MAX_BYTES) /* nothing this reads is larger: no huge allocation */
		return -EINVAL;
	n = BASE64_DECODE_LENGTH(len) + 1;
	buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, buf, len, text) || !base64_decode_final(&ctx)) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/*
 * Takes one element of type TAG from D (minimal lengths only); its content
 * into *OUT, and D moves past it. Accepts DER, not BER: a definite length in
 * its shortest form (the long form only from 128 on, no leading zero byte),
 * of at most three length bytes (16 MiB), so every element has one encoding
 * and what was signed is what is read. Refuses another tag (single-byte tags
 * only: all this reads) and a length past what is left of D.
 */
bool mf_der_take(struct der *d, uint8_t tag, struct der *out)
{
	size_t l, hdr = 2;

	if (d->len < 2 || d->p[0] != tag)
		return false;
	l = d->p[1];
	if (l & 0x80) {
		size_t nb = l & 0x7f;

		if (nb == 0 || nb > 3 || d->len < 2 + nb || d->p[2] == 0)
			return false;
		l = 0;
		for (size_t i = 0; i < nb; i++)
			l = l << 8 | d->p[2 + i];
		if (l < 0x80)
			return false;
		hdr += nb;
	}
	if (d->len - hdr < l)
		return false;
	out->p = d->p + hdr;
	out->len = l;
	d->p += hdr + l;
	d->len -= hdr + l;
	return true;
}

/* Whether D's content is exactly the LEN bytes BYTES: an OID matches whole, never a prefix. */
static bool der_eq(const struct der *d, const uint8_t *bytes, size_t len)
{
	return d->len == len && memcmp(d->p, bytes, len) == 0;
}

/* ---- trusted keys ---- */

static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_P521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};

/*
 * The hex SHA-256 of DER written as canonical PEM (64-column base64, as
 * openssl writes): the hint a bundle names its key by. It is computed from
 * the parsed key, not from the file's bytes, so however a trusted key file
 * happens to be laid out, its key has the hint the signer's tools give it.
 * Returns 0 or -ENOMEM.
 */
static int canonical_hint(const uint8_t *der, size_t len, char hint[2 * VR_DIGEST_SIZE + 1])
{
	size_t b64len = BASE64_ENCODE_RAW_LENGTH(len);
	char *b64 = malloc(b64len);
	struct sha256_ctx ctx;
	uint8_t d[VR_DIGEST_SIZE];

	if (!b64)
		return -ENOMEM;
	base64_encode_raw(b64, len, der);
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(PEM_BEGIN "\n"), (const uint8_t *)PEM_BEGIN "\n");
	for (size_t off = 0; off < b64len; off += 64) {
		size_t n = b64len - off < 64 ? b64len - off : 64;

		sha256_update(&ctx, n, (const uint8_t *)b64 + off);
		sha256_update(&ctx, 1, (const uint8_t *)"\n");
	}
	sha256_update(&ctx, strlen(PEM_END "\n"), (const uint8_t *)PEM_END "\n");
	sha256_digest(&ctx, sizeof(d), d);
	free(b64);
	vr_hex(d, sizeof(d), hint);
	return 0;
}

/*
 * Parses DER, an ECDSA SubjectPublicKeyInfo, into K (K->der is left to the
 * caller; K->pub is set only when this returns 0). Accepts id-ecPublicKey on
 * the named curve P-256, P-384 or P-521, with an uncompressed point of the
 * curve's size that lies on the curve; each curve fixes the hash its
 * signatures use (SHA-256, -384, -512). Refuses anything else, trailing bytes
 * included: other key types (RSA, Ed25519) and explicit curve parameters are
 * not what model signing keys are, compressed points would need decompressing
 * here, and a point off the curve is the start of an invalid-curve attack.
 */
static int parse_spki(const uint8_t *der, size_t len, struct trust_key *k, char why[VR_WHY_MAX])
{
	struct der all = {der, len}, spki, alg, oid, curve, bits;
	mpz_t x, y;
	int ok;

	if (!mf_der_take(&all, 0x30, &spki) || all.len || !mf_der_take(&spki, 0x30, &alg) ||
	    !mf_der_take(&spki, 0x03, &bits) || spki.len || !mf_der_take(&alg, 0x06, &oid))
		return mf_fail(why, -EINVAL, "not a SubjectPublicKeyInfo");
	if (!der_eq(&oid, OID_EC_PUBLIC_KEY, sizeof(OID_EC_PUBLIC_KEY)))
		return mf_fail(why, -EINVAL, "not an elliptic-curve (ECDSA) public key");
	if (!mf_der_take(&alg, 0x06, &curve) || alg.len)
		return mf_fail(why, -EINVAL, "an EC key without a named curve");
	if (der_eq(&curve, OID_P256, sizeof(OID_P256))) {
		k->curve = nettle_get_secp_256r1();
		k->hash = &nettle_sha256;
		k->coord = 32;
	} else if (der_eq(&curve, OID_P384, sizeof(OID_P384))) {
		k->curve = nettle_get_secp_384r1();
		k->hash = &nettle_sha384;
		k->coord = 48;
	} else if (der_eq(&curve, OID_P521, sizeof(OID_P521))) {
		k->curve = nettle_get_secp_521r1();
		k->hash = &nettle_sha512;
		k->coord = 66;
	} else {
		return mf_fail(why, -EINVAL, "an unsupported curve (P-256, P-384 and P-521 are)");
	}
	if (bits.len != 2 + 2 * k->coord || bits.p[0] != 0 || bits.p[1] != 0x04)
		return mf_fail(why, -EINVAL, "not an uncompressed point of the curve's size");
	mpz_init(x);
	mpz_init(y);
	mpz_import(x, k->coord, 1, 1, 1, 0, bits.p + 2);
	mpz_import(y, k->coord, 1, 1, 1, 0, bits.p + 2 + k->coord);
	ecc_point_init(&k->pub, k->curve);
	ok = ecc_point_set(&k->pub, x, y);
	mpz_clear(x);
	mpz_clear(y);
	if (!ok) {
		ecc_point_clear(&k->pub);
		return mf_fail(why, -EINVAL, "the point is not on the curve");
	}
	return 0;
}

/* Frees what K owns: a key that parse_spki accepted, whose DER it holds. */
static void key_clear(struct trust_key *k)
{
	ecc_point_clear(&k->pub);
	free(k->der);
}

/*
 * Adds every "PUBLIC KEY" PEM block of TEXT to T. SRC names it in reasons.
 * Text outside those blocks (comments, certtool's dump, other PEM blocks such
 * as a certificate) is skipped: key files commonly carry it. Refuses the
 * whole text when a block lacks its END line, is not base64 or holds a key
 * parse_spki refuses, for a trust configuration that is partly wrong is to be
 * fixed, not partly used; refuses too a text without any block, and the key
 * past VR_TRUST_MAX_KEYS. Returns 0 or -errno.
 */
static int add_pem(struct vr_trust *t, const char *text, size_t len, const char *src,
		   char why[VR_WHY_MAX])
{
	const char *p = text, *end = text + len;
	size_t found = 0;

	for (;;) {
		const char *b = memmem(p, (size_t)(end - p), PEM_BEGIN, strlen(PEM_BEGIN));
		const char *e;
		char inner[VR_WHY_MAX];
		struct trust_key k = {0};
		uint8_t *der;
		size_t derlen;
		int ret;

		if (!b)
			break;
		b += strlen(PEM_BEGIN);
		e = memmem(b, (size_t)(end - b), PEM_END, strlen(PEM_END));
		if (!e)
			return mf_fail(why, -EINVAL, "%s: a PUBLIC KEY block without its END line",
				       src);
		if (t->count == VR_TRUST_MAX_KEYS)
			return mf_fail(why, -E2BIG, "more than %d trusted keys", VR_TRUST_MAX_KEYS);
		ret = mf_b64_decode(b, (size_t)(e - b), &der, &derlen);
		if (ret)
			return ret == -ENOMEM
				   ? mf_fail(why, ret, "%s: out of memory", src)
				   : mf_fail(why, ret, "%s: a PUBLIC KEY block is not base64", src);
		/* DER joins K once K is filled in: the analyser loses what K holds when nettle
		 * initialises k.pub */
		ret = parse_spki(der, derlen, &k, inner);
		if (ret) {
			free(der);
			return mf_fail(why, ret, "%s: key %zu: %s", src, found + 1, inner);
		}
		ret = canonical_hint(der, derlen, k.hint);
		k.der = der;
		k.derlen = derlen;
		if (ret) {
			key_clear(&k);
			return mf_fail(why, ret, "%s: out of memory", src);
		}
		t->keys[t->count++] = k;
		found++;
		p = e + strlen(PEM_END);
	}
	size_t roots = 0;
	int ret = mf_add_roots(t, text, len, src, &roots, why);

	if (ret)
		return ret;
	if (!found && !roots)
		return mf_fail(why, -EINVAL,
			       "%s: no \"" PEM_BEGIN "\" or \"-----BEGIN CERTIFICATE-----\" block",
			       src);
	return 0;
}

/* Builds a trust store from PEM text in memory, by add_pem's rules (tests, the fuzzer). */
int vr_trust_from_pem(const char *text, size_t len, struct vr_trust **out, char why[VR_WHY_MAX])
{
	struct vr_trust *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return mf_fail(why, -ENOMEM, "out of memory");
	ret = add_pem(t, text, len, "trusted key", why);
	if (ret) {
		vr_trust_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/*
 * Reads file NAME (relative to DIRFD; SHOWN in reasons) and adds its keys.
 * Accepts a regular file of at most 1 MiB: key files are small. Refuses a
 * symbolic link (O_NOFOLLOW), so what is trusted is the file the operator
 * named or put in the directory, and a FIFO or device, which O_NONBLOCK keeps
 * from blocking the open.
 */
static int add_file(struct vr_trust *t, int dirfd, const char *name, const char *shown,
		    char why[VR_WHY_MAX])
{
	/* O_NONBLOCK: a FIFO must be refused at once, not wait for a writer */
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	char *buf;
	ssize_t got;
	int ret;

	if (fd < 0)
		return mf_fail(why, -errno, "%s: %s", shown, strerror(errno));
	if (fstat(fd, &st) != 0) {
		ret = mf_fail(why, -errno, "%s: %s", shown, strerror(errno));
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		close(fd);
		return mf_fail(why, -EINVAL, "%s: not a regular file of at most 1 MiB", shown);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return mf_fail(why, -ENOMEM, "out of memory");
	}
	got = read(fd, buf, (size_t)st.st_size);
	ret = got < 0 ? mf_fail(why, -errno, "%s: %s", shown, strerror(errno)) : 0;
	close(fd);
	if (ret == 0)
		ret = add_pem(t, buf, (size_t)got, shown, why);
	free(buf);
	return ret;
}

/*
 * Loads PATH: one PEM file, or every "*.pem" entry of a directory (other
 * names skipped, so a README may sit beside the keys). Any file that fails
 * add_file fails the whole load, as in add_pem; so does a directory without a
 * key, since trust= naming nothing is a mistake, not a policy.
 */
int vr_trust_load(const char *path, struct vr_trust **out, char why[VR_WHY_MAX])
{
	struct vr_trust *t = calloc(1, sizeof(*t));
	struct stat st;
	int ret = 0;

	if (!t)
		return mf_fail(why, -ENOMEM, "out of memory");
	if (stat(path, &st)) {
		ret = mf_fail(why, -errno, "%s: %s", path, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			ret = mf_fail(why, -errno, "%s: %s", path, strerror(errno));
		while (d && ret == 0 && (de = readdir(d))) {
			size_t n = strlen(de->d_name);
			char shown[VR_WHY_MAX / 2];

			if (n < 5 || strcmp(de->d_name + n - 4, ".pem") != 0)
				continue;
			/* cut to half a reason: the rest of it says what is wrong */
			snprintf(shown, sizeof(shown), "%.*s", (int)sizeof(shown) - 1, de->d_name);
			ret = add_file(t, dirfd(d), de->d_name, shown, why);
		}
		if (d)
			closedir(d);
		if (ret == 0 && t->count == 0 && t->nroots == 0)
			ret = mf_fail(why, -EINVAL,
				      "%s: no *.pem file with a public key or root certificate",
				      path);
	} else {
		ret = add_file(t, AT_FDCWD, path, path, why);
	}
	if (ret) {
		vr_trust_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* The number of keys in T; NULL (no trust= given) has none. */
size_t vr_trust_count(const struct vr_trust *t)
{
	return t ? t->count : 0;
}

size_t vr_trust_roots(const struct vr_trust *t)
{
	return t ? t->nroots : 0;
}

/* Key I's hint; I must be below vr_trust_count(T). */
const char *vr_trust_hint(const struct vr_trust *t, size_t i)
{
	return t->keys[i].hint;
}

/* Frees T. Accepts NULL, and a store a load gave up on: COUNT counts only whole keys. */
void vr_trust_free(struct vr_trust *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		key_clear(&t->keys[i]);
	X509_STORE_free(t->roots);
	free(t);
}
