/* manifest_oms.c - the OpenSSF model signing (OMS) verifier: Sigstore bundle, DSSE, in-toto. */
#include "manifest_private.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <gmp.h>
#include <nettle/dsa.h>
#include <nettle/ecdsa.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#define OMS_MEDIA_TYPE	   "application/vnd.dev.sigstore.bundle.v0.3+json"
#define OMS_MEDIA_TYPE_ALT "application/vnd.dev.sigstore.bundle+json;version=0.3"
#define INTOTO_TYPE	   "application/vnd.in-toto+json"

/*
 * Parses DER, the envelope's ECDSA-Sig-Value (a SEQUENCE of the INTEGERs r
 * and s), into SIG (initialised by the caller). Accepts only positive,
 * minimally encoded integers and nothing after them, so one signature has one
 * encoding; that 0 < r, s < q is ecdsa_verify's own check.
 */
static bool parse_sig(const uint8_t *der, size_t len, struct dsa_signature *sig)
{
	struct der all = {der, len}, seq, ints[2];

	if (!mf_der_take(&all, 0x30, &seq) || all.len || !mf_der_take(&seq, 0x02, &ints[0]) ||
	    !mf_der_take(&seq, 0x02, &ints[1]) || seq.len)
		return false;
	for (int i = 0; i < 2; i++) {
		const struct der *v = &ints[i];

		/* positive and minimal: no sign bit, no needless leading zero */
		if (v->len == 0 || (v->p[0] & 0x80) ||
		    (v->len > 1 && v->p[0] == 0 && !(v->p[1] & 0x80)))
			return false;
	}
	mpz_import(sig->r, ints[0].len, 1, 1, 1, 0, ints[0].p);
	mpz_import(sig->s, ints[1].len, 1, 1, 1, 0, ints[1].p);
	return true;
}

/*
 * Hashes DSSE's pre-authentication encoding of (TYPE, PAYLOAD), "DSSEv1
 * <len> <type> <len> <payload>", with the hash K's curve uses; returns the
 * digest's length. The signature covers the type as well, so a payload cannot
 * be passed off under another type. TYPE is the in-toto type the caller
 * checked, so HEAD has room for it.
 */
static size_t pae_digest(const struct trust_key *k, const char *type, const uint8_t *payload,
			 size_t plen, uint8_t out[SHA512_DIGEST_SIZE])
{
	char head[128];
	int hl = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type), type, plen);
	struct sha512_ctx ctx; /* the largest of the three contexts */

	k->hash->init(&ctx);
	k->hash->update(&ctx, (size_t)hl, (const uint8_t *)head);
	k->hash->update(&ctx, plen, payload);
	k->hash->digest(&ctx, k->hash->digest_size, out);
	return k->hash->digest_size;
}

/*
 * The string member NAME of OBJ, or NULL: absent, of another JSON type, or
 * OBJ not an object. A member of the wrong type is treated as absent, so
 * callers test one NULL. Names match case-sensitively, as the formats spell
 * them; of duplicate names cJSON gives the first.
 */
static const char *str_of(const cJSON *obj, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/*
 * Picks the trusted key the bundle's publicKey PK names: by hint (the hex
 * SHA-256 of its canonical PEM), by rawBytes (base64 of a PEM public key,
 * matched to a trusted key's DER byte for byte), or by both, which must then
 * name one key. Only a key already in TRUST is ever picked: the bundle's own
 * key material chooses, it never verifies. Refuses: neither given, rawBytes
 * that hold no PEM block, hint and rawBytes naming two keys (-EINVAL); no
 * trusted keys, or none that matches (-EKEYREJECTED: what trust= fixes).
 * Returns NULL with *ERR and WHY set.
 */
static const struct trust_key *pick_key(const cJSON *pk, const struct vr_trust *trust, int *err,
					char why[VR_WHY_MAX])
{
	const char *hint = str_of(pk, "hint");
	const char *raw = str_of(pk, "rawBytes");
	const struct trust_key *by_hint = NULL, *by_raw = NULL;

	*err = -EKEYREJECTED;
	if (!hint && !raw) {
		*err =
		    mf_fail(why, -EINVAL, "verificationMaterial.publicKey has no hint or rawBytes");
		return NULL;
	}
	if (!trust || trust->count == 0) {
		mf_fail(why, 0,
			"signature not trusted: no trusted keys are configured (-o trust=)");
		return NULL;
	}
	if (hint) {
		for (size_t i = 0; i < trust->count && !by_hint; i++)
			if (strcmp(hint, trust->keys[i].hint) == 0)
				by_hint = &trust->keys[i];
		if (!by_hint) {
			mf_fail(why, 0, "signature not trusted: no trusted key has hint %.64s",
				hint);
			return NULL;
		}
	}
	if (raw) {
		size_t pemlen, derlen;
		uint8_t *pem, *der = NULL;
		bool oom = mf_b64_decode(raw, strlen(raw), &pem, &pemlen) == -ENOMEM;
		const char *b = pem ? memmem(pem, pemlen, PEM_BEGIN, strlen(PEM_BEGIN)) : NULL;
		/* the END line is looked for after the whole BEGIN line: the two may share dashes
		 * ("-----BEGIN PUBLIC KEY-----END PUBLIC KEY-----"; found by fuzz_oms) */
		const char *body = b ? b + strlen(PEM_BEGIN) : NULL;
		const char *e = body ? memmem(body, pemlen - (size_t)(body - (char *)pem), PEM_END,
					      strlen(PEM_END))
				     : NULL;

		if (e)
			oom |= mf_b64_decode(body, (size_t)(e - body), &der, &derlen) == -ENOMEM;
		free(pem);
		if (!der) {
			*err = oom ? mf_fail(why, -ENOMEM, "out of memory")
				   : mf_fail(why, -EINVAL,
					     "publicKey.rawBytes is not a base64 PEM public key");
			return NULL;
		}
		for (size_t i = 0; i < trust->count && !by_raw; i++)
			if (trust->keys[i].derlen == derlen &&
			    memcmp(trust->keys[i].der, der, derlen) == 0)
				by_raw = &trust->keys[i];
		free(der);
		if (!by_raw) {
			mf_fail(why, 0,
				"signature not trusted: the signer's key is not a trusted key");
			return NULL;
		}
		if (by_hint && by_hint != by_raw) {
			*err = mf_fail(why, -EINVAL,
				       "publicKey's hint and rawBytes name different keys");
			return NULL;
		}
	}
	return by_hint ? by_hint : by_raw;
}

/*
 * Checks the Sigstore bundle B around the envelope and finds its signer: a
 * publicKey (*PK) or the certificates of an x509CertificateChain, or of a
 * single certificate (*CERTS, an array). Accepts a JSON object of a v0.3
 * mediaType (either spelling) whose verificationMaterial holds one of them.
 * Refuses by -EOPNOTSUPP, rather than skip, what this verifier cannot check: a
 * messageSignature (it signs one blob, not a model), transparency-log
 * entries (Rekor's key and inclusion proofs: Sigstore keyless signing, whose
 * Fulcio certificate also needs an identity policy); an empty tlogEntries
 * array counts as none. Returns 0 or -errno with WHY.
 */
static int check_bundle(const cJSON *b, const cJSON **pk, const cJSON **certs, char why[VR_WHY_MAX])
{
	const char *media = str_of(b, "mediaType");
	const cJSON *vm = cJSON_GetObjectItemCaseSensitive(b, "verificationMaterial");
	const cJSON *tlog, *chain, *one;

	if (!cJSON_IsObject(b))
		return mf_fail(why, -EINVAL, "not a JSON object");
	if (!media)
		return mf_fail(why, -EINVAL, "no mediaType: not a Sigstore bundle");
	if (strcmp(media, OMS_MEDIA_TYPE) != 0 && strcmp(media, OMS_MEDIA_TYPE_ALT) != 0)
		return mf_fail(why, -EOPNOTSUPP,
			       "bundle mediaType %.100s is not supported (v0.3 is)", media);
	if (cJSON_GetObjectItemCaseSensitive(b, "messageSignature"))
		return mf_fail(why, -EOPNOTSUPP,
			       "a messageSignature bundle is not a model signature");
	if (!cJSON_IsObject(vm))
		return mf_fail(why, -EINVAL, "no verificationMaterial");
	tlog = cJSON_GetObjectItemCaseSensitive(vm, "tlogEntries");
	if (tlog && (!cJSON_IsArray(tlog) || cJSON_GetArraySize(tlog) != 0))
		return mf_fail(why, -EOPNOTSUPP,
			       "Sigstore keyless or transparency-log (Rekor) entries are not "
			       "supported; sign with a key or a certificate chain");
	*pk = cJSON_GetObjectItemCaseSensitive(vm, "publicKey");
	chain = cJSON_GetObjectItemCaseSensitive(vm, "x509CertificateChain");
	one = cJSON_GetObjectItemCaseSensitive(vm, "certificate");
	if (!!*pk + !!chain + !!one > 1)
		return mf_fail(why, -EINVAL,
			       "verificationMaterial names more than one of publicKey, "
			       "x509CertificateChain and certificate");
	if (chain || one) {
		*certs = chain ? cJSON_GetObjectItemCaseSensitive(chain, "certificates") : one;
		*pk = NULL;
		if (!cJSON_IsArray(*certs) && !cJSON_IsObject(*certs))
			return mf_fail(why, -EINVAL,
				       "x509CertificateChain has no certificates array");
		return 0;
	}
	if (!cJSON_IsObject(*pk))
		return mf_fail(why, -EINVAL, "verificationMaterial has no publicKey");
	return 0;
}

/* Verifies SIG (DER, SLEN bytes) over PAYLOAD with the trusted key K (Nettle). */
static int verify_with_key(const struct trust_key *k, const char *ptype, const uint8_t *payload,
			   size_t plen, const uint8_t *der, size_t derlen, char why[VR_WHY_MAX])
{
	uint8_t digest[SHA512_DIGEST_SIZE];
	struct dsa_signature sig;
	size_t dlen;
	int ret = 0;

	dsa_signature_init(&sig);
	if (!parse_sig(der, derlen, &sig)) {
		ret = mf_fail(why, -EINVAL, "the signature is not a base64 DER ECDSA signature");
	} else {
		dlen = pae_digest(k, ptype, payload, plen, digest);
		if (!ecdsa_verify(&k->pub, dlen, digest, &sig))
			ret = mf_fail(why, -EBADMSG,
				      "signature does not verify with the trusted key");
	}
	dsa_signature_clear(&sig);
	return ret;
}

/*
 * Verifies the DSSE envelope's signature over its payload: with the trusted
 * key pick_key finds (PK), or with the leaf of the certificate chain CERTS
 * once it chains to a trusted root (mf_cert_verify); the decoded payload into
 * *PAYLOAD (NULL on failure) and the signer's hint into HINT. Accepts
 * payloadType application/vnd.in-toto+json and exactly one signature: with
 * several, which must verify would need a policy. Its keyid is not read: the
 * bundle's verificationMaterial names the signer. A key is picked before
 * anything is decoded, so a bundle from an untrusted signer costs little.
 * Nothing in the payload is read here: only a payload whose signature
 * verified goes on to mf_read_statement.
 */
static int check_envelope(const cJSON *b, const cJSON *pk, const cJSON *certs,
			  const struct vr_trust *trust, uint8_t **payload, size_t *plen,
			  char hint[2 * VR_DIGEST_SIZE + 1], char why[VR_WHY_MAX])
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(b, "dsseEnvelope");
	const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(env, "signatures");
	const char *ptype = str_of(env, "payloadType"), *p64 = str_of(env, "payload");
	const struct trust_key *k = NULL;
	uint8_t *der = NULL;
	size_t derlen;
	const char *s64;
	int ret;

	if (!cJSON_IsObject(env))
		return mf_fail(why, -EINVAL, "no dsseEnvelope");
	if (!ptype || !p64 || !cJSON_IsArray(sigs))
		return mf_fail(why, -EINVAL,
			       "dsseEnvelope lacks payload, payloadType or signatures");
	if (strcmp(ptype, INTOTO_TYPE) != 0)
		return mf_fail(why, -EINVAL, "payloadType is not " INTOTO_TYPE);
	if (cJSON_GetArraySize(sigs) != 1)
		return mf_fail(why, -EINVAL, "the envelope must hold exactly one signature");
	s64 = str_of(cJSON_GetArrayItem(sigs, 0), "sig");
	if (!s64)
		return mf_fail(why, -EINVAL, "the signature has no sig");
	if (pk && !(k = pick_key(pk, trust, &ret, why)))
		return ret;
	ret = mf_b64_decode(p64, strlen(p64), payload, plen);
	if (ret)
		return mf_fail(why, ret,
			       ret == -ENOMEM ? "out of memory" : "the payload is not base64");
	ret = mf_b64_decode(s64, strlen(s64), &der, &derlen);
	if (ret)
		mf_fail(why, ret,
			ret == -ENOMEM ? "out of memory"
				       : "the signature is not a base64 DER ECDSA signature");
	else if (k)
		ret = verify_with_key(k, ptype, *payload, *plen, der, derlen, why);
	else
		ret = mf_cert_verify(certs, trust, ptype, *payload, *plen, der, derlen, hint, why);
	free(der);
	if (ret) {
		free(*payload);
		*payload = NULL;
		return ret;
	}
	if (k)
		memcpy(hint, k->hint, 2 * VR_DIGEST_SIZE + 1);
	return 0;
}

/*
 * Accepts a bundle of at most VR_MANIFEST_MAX_BYTES without a NUL byte (JSON
 * text holds none), then checks it in order: the bundle (check_bundle), the
 * signature with a trusted key or certificate chain (check_envelope), the
 * statement (mf_read_statement). The statement's parser sees only signed bytes.
 */
int vr_oms_verify(const char *text, size_t len, const struct vr_trust *trust,
		  struct vr_manifest **out, char why[VR_WHY_MAX])
{
	const cJSON *pk = NULL, *certs = NULL;
	struct vr_manifest *m;
	uint8_t *payload = NULL;
	size_t plen = 0;
	cJSON *b;
	int ret;

	if (len > VR_MANIFEST_MAX_BYTES)
		return mf_fail(why, -EFBIG, "larger than %u MiB", VR_MANIFEST_MAX_BYTES >> 20);
	if (memchr(text, '\0', len))
		return mf_fail(why, -EINVAL, "a NUL byte: not a JSON bundle");
	m = calloc(1, sizeof(*m));
	if (!m)
		return mf_fail(why, -ENOMEM, "out of memory");
	m->kind = VR_MANIFEST_OMS;
	b = vr_json_parse(text, len, NULL, &ret);
	if (!b) {
		ret = mf_fail(why, ret == -ENOMEM ? ret : -EINVAL,
			      ret == -ENOMEM	 ? "out of memory"
			      : ret == -ENOTUNIQ ? VR_JSON_REPEATED_WHY
						 : "not valid JSON");
		goto free_m;
	}
	ret = check_bundle(b, &pk, &certs, why);
	if (ret == 0)
		ret = check_envelope(b, pk, certs, trust, &payload, &plen, m->key_hint, why);
	m->cert_signed = certs != NULL;
	/* only a payload whose signature verified is read further */
	if (ret == 0)
		ret = mf_read_statement(m, payload, plen, why);
	free(payload);
	cJSON_Delete(b);
free_m:
	if (ret) {
		if (ret == -ENOMEM)
			mf_fail(why, ret, "out of memory");
		vr_manifest_free(m);
		return ret;
	}
	*out = m;
	return 0;
}
