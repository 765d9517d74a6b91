/* manifest_x509.c - OMS certificate mode: trust= roots, a bundle's X.509 chain validated by
 * OpenSSL's libcrypto (never parsed here), the leaf's usage and its signature over DSSE. */
#include "manifest_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nettle/sha2.h>
#include <openssl/bio.h>
#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define CERT_END   "-----END CERTIFICATE-----"

/* Reads DER (LEN bytes) as one X.509 certificate with nothing after it; NULL when it is not. */
static X509 *cert_of_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = len <= (size_t)INT32_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;

	if (x && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

/*
 * Adds X to T's roots: a root must be a self-signed CA certificate (its own
 * signature verifies), so trust= names exactly where chains end. Takes X over.
 */
static int add_root(struct vr_trust *t, X509 *x, const char *src, size_t nth, char why[VR_WHY_MAX])
{
	int ret = 0;

	if (t->nroots == VR_TRUST_MAX_ROOTS)
		ret = mf_fail(why, -E2BIG, "more than %d trusted root certificates",
			      VR_TRUST_MAX_ROOTS);
	else if (X509_self_signed(x, 1) != 1 || X509_check_ca(x) == 0)
		ret = mf_fail(why, -EINVAL,
			      "%s: certificate %zu is not a self-signed CA certificate (a root)",
			      src, nth);
	else if (!t->roots && !(t->roots = X509_STORE_new()))
		ret = mf_fail(why, -ENOMEM, "out of memory");
	else if (X509_STORE_add_cert(t->roots, x) != 1)
		ret = mf_fail(why, -EINVAL, "%s: certificate %zu cannot be added (a duplicate?)",
			      src, nth);
	else
		t->nroots++;
	X509_free(x); /* the store holds its own reference */
	return ret;
}

int mf_add_roots(struct vr_trust *t, const char *text, size_t len, const char *src, size_t *found,
		 char why[VR_WHY_MAX])
{
	const char *p = text, *end = text + len;

	*found = 0;
	for (;;) {
		const char *b = memmem(p, (size_t)(end - p), CERT_BEGIN, strlen(CERT_BEGIN)), *e;
		uint8_t *der;
		size_t derlen;
		X509 *x;
		int ret;

		if (!b)
			return 0;
		b += strlen(CERT_BEGIN);
		e = memmem(b, (size_t)(end - b), CERT_END, strlen(CERT_END));
		if (!e)
			return mf_fail(why, -EINVAL, "%s: a CERTIFICATE block without its END line",
				       src);
		ret = mf_b64_decode(b, (size_t)(e - b), &der, &derlen);
		if (ret)
			return ret == -ENOMEM
				   ? mf_fail(why, ret, "%s: out of memory", src)
				   : mf_fail(why, ret, "%s: a CERTIFICATE block is not base64",
					     src);
		x = cert_of_der(der, derlen);
		free(der);
		if (!x)
			return mf_fail(why, -EINVAL, "%s: certificate %zu is not X.509 DER", src,
				       *found + 1);
		ret = add_root(t, x, src, *found + 1, why);
		if (ret)
			return ret;
		(*found)++;
		p = e + strlen(CERT_END);
	}
}

/*
 * Reads the bundle's certificates CERTS (an array of {"rawBytes": base64
 * DER}, the leaf first, or one such object) into *LEAF and the untrusted
 * rest *CHAIN. Refuses none, more than VR_OMS_CHAIN_MAX, and one that is not
 * base64 of one DER certificate (-EINVAL).
 */
static int read_chain(const cJSON *certs, X509 **leaf, STACK_OF(X509) * *chain,
		      char why[VR_WHY_MAX])
{
	int n = cJSON_IsArray(certs) ? cJSON_GetArraySize(certs) : 1;

	if (n < 1 || n > VR_OMS_CHAIN_MAX)
		return mf_fail(why, -EINVAL,
			       "the certificate chain holds %d certificates (1 to %d)", n,
			       VR_OMS_CHAIN_MAX);
	*chain = sk_X509_new_null();
	if (!*chain)
		return mf_fail(why, -ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		const cJSON *c = cJSON_IsArray(certs) ? cJSON_GetArrayItem(certs, i) : certs;
		const cJSON *raw = cJSON_GetObjectItemCaseSensitive(c, "rawBytes");
		uint8_t *der = NULL;
		size_t derlen = 0;
		int ret =
		    cJSON_IsString(raw)
			? mf_b64_decode(raw->valuestring, strlen(raw->valuestring), &der, &derlen)
			: -EINVAL;
		X509 *x = ret ? NULL : cert_of_der(der, derlen);

		free(der);
		if (ret == -ENOMEM)
			return mf_fail(why, ret, "out of memory");
		if (!x)
			return mf_fail(why, -EINVAL,
				       "certificate %d of the chain is not base64 X.509 DER",
				       i + 1);
		if (i == 0) {
			*leaf = x;
		} else if (!sk_X509_push(*chain, x)) {
			X509_free(x);
			return mf_fail(why, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

/*
 * The time the chain is validated at: the signing time the bundle states, as
 * model_signing reads it, which is its leaf's notBefore (a certificate-mode
 * bundle holds no other: its tlogEntries are empty, and an RFC 3161 timestamp
 * would need its authority's roots). That time is the issuing CA's, signed in
 * the leaf; this host's clock only refuses one after now, which no signature
 * that exists can have been made at (-EKEYREJECTED).
 */
static int signing_time(X509 *leaf, time_t *at, char why[VR_WHY_MAX])
{
	const ASN1_TIME *nb = X509_get0_notBefore(leaf);
	struct tm tm;

	if (!nb || ASN1_TIME_to_tm(nb, &tm) != 1)
		return mf_fail(why, -EINVAL, "the leaf certificate's notBefore cannot be read");
	if (X509_cmp_current_time(nb) > 0)
		return mf_fail(why, -EKEYREJECTED,
			       "certificate not trusted: the leaf is not valid yet (its notBefore, "
			       "the signing time the bundle states, is after now)");
	*at = timegm(&tm);
	return 0;
}

/*
 * Validates LEAF's path to a trust= root through the untrusted CHAIN with
 * X509_verify_cert: signatures, CA flags, path length, and every certificate
 * valid at the signing time the bundle states (signing_time: the leaf's
 * notBefore, model_signing's rule), so a leaf that expired since it signed
 * still verifies and one whose CA was not valid then does not. Refuses with
 * OpenSSL's reason and the depth it failed at (-EKEYREJECTED).
 */
static int check_path(const struct vr_trust *t, X509 *leaf, STACK_OF(X509) * chain,
		      char why[VR_WHY_MAX])
{
	X509_STORE_CTX *ctx;
	int ret, err;
	time_t at = 0;

	ret = signing_time(leaf, &at, why);
	if (ret)
		return ret;
	ctx = X509_STORE_CTX_new();
	if (!ctx || X509_STORE_CTX_init(ctx, t->roots, leaf, chain) != 1) {
		X509_STORE_CTX_free(ctx);
		return mf_fail(why, -ENOMEM, "out of memory");
	}
	X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), VR_OMS_CHAIN_MAX);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), at);
	if (X509_verify_cert(ctx) != 1) {
		err = X509_STORE_CTX_get_error(ctx);
		bool when =
		    err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;

		ret = mf_fail(
		    why, -EKEYREJECTED, "certificate not trusted: %s%s (at depth %d of the chain)",
		    X509_verify_cert_error_string(err),
		    when ? " at the signing time the bundle states (the leaf's notBefore)" : "",
		    X509_STORE_CTX_get_error_depth(ctx));
	}
	X509_STORE_CTX_free(ctx);
	return ret;
}

/*
 * Whether LEAF may sign, as model_signing asks: its key usage has
 * digitalSignature, or its extended key usage has codeSigning.
 */
static bool may_sign(X509 *leaf)
{
	uint32_t flags = X509_get_extension_flags(leaf);

	if ((flags & EXFLAG_KUSAGE) && (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		return true;
	return (flags & EXFLAG_XKUSAGE) && (X509_get_extended_key_usage(leaf) & XKU_CODE_SIGN);
}

/* The digest ECDSA signatures with KEY use, by its curve as model_signing picks it; NULL for a
 * key that is not ECDSA on P-256, P-384 or P-521. */
static const EVP_MD *md_of(EVP_PKEY *key)
{
	char curve[64];
	size_t n = 0;

	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), &n) != 1)
		return NULL;
	if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0)
		return EVP_sha256();
	if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0)
		return EVP_sha384();
	if (strcmp(curve, "secp521r1") == 0 || strcmp(curve, "P-521") == 0)
		return EVP_sha512();
	return NULL;
}

/* HINT: the hex SHA-256 of KEY as canonical PEM, as a key bundle's hint names a key. */
static int key_hint(EVP_PKEY *key, char hint[2 * VR_DIGEST_SIZE + 1])
{
	BIO *bio = BIO_new(BIO_s_mem());
	uint8_t sha[VR_DIGEST_SIZE];
	char *pem;
	long n;

	if (!bio || PEM_write_bio_PUBKEY(bio, key) != 1) {
		BIO_free(bio);
		return -ENOMEM;
	}
	n = BIO_get_mem_data(bio, &pem);
	vr_sha256(pem, (size_t)n, sha);
	vr_hex(sha, sizeof(sha), hint);
	BIO_free(bio);
	return 0;
}

/* Verifies the DER ECDSA signature SIG over DSSE's encoding of (PTYPE, PAYLOAD) with KEY. */
static int verify_sig(EVP_PKEY *key, const EVP_MD *md, const char *ptype, const uint8_t *payload,
		      size_t plen, const uint8_t *sig, size_t slen, char why[VR_WHY_MAX])
{
	char head[128];
	int hl = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(ptype), ptype, plen);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
		 EVP_DigestVerifyUpdate(ctx, head, (size_t)hl) == 1 &&
		 EVP_DigestVerifyUpdate(ctx, payload, plen) == 1 &&
		 EVP_DigestVerifyFinal(ctx, sig, slen) == 1;

	EVP_MD_CTX_free(ctx);
	if (!ctx)
		return mf_fail(why, -ENOMEM, "out of memory");
	return ok ? 0
		  : mf_fail(why, -EBADMSG,
			    "signature does not verify with the signing certificate's key");
}

int mf_cert_verify(const cJSON *certs, const struct vr_trust *trust, const char *ptype,
		   const uint8_t *payload, size_t plen, const uint8_t *sig, size_t slen,
		   char hint[2 * VR_DIGEST_SIZE + 1], char why[VR_WHY_MAX])
{
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	EVP_PKEY *key;
	const EVP_MD *md;
	int ret;

	if (!trust || !trust->nroots)
		return mf_fail(why, -EKEYREJECTED,
			       "certificate not trusted: no root certificates are configured "
			       "(-o trust=)");
	ret = read_chain(certs, &leaf, &chain, why);
	if (ret == 0)
		ret = check_path(trust, leaf, chain, why);
	if (ret == 0 && !may_sign(leaf))
		ret = mf_fail(why, -EKEYREJECTED,
			      "certificate not for signing: the leaf has neither digitalSignature "
			      "key usage nor codeSigning extended key usage");
	key = ret ? NULL : X509_get0_pubkey(leaf);
	md = key ? md_of(key) : NULL;
	if (ret == 0 && !md)
		ret = mf_fail(why, -EOPNOTSUPP,
			      "the signing certificate's key is not ECDSA on P-256, P-384 or "
			      "P-521");
	if (ret == 0)
		ret = verify_sig(key, md, ptype, payload, plen, sig, slen, why);
	if (ret == 0 && key_hint(key, hint) != 0)
		ret = mf_fail(why, -ENOMEM, "out of memory");
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	return ret;
}
