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
#define STATEMENT_TYPE	   "https://in-toto.io/Statement/v1"
#define OMS_PREDICATE	   "https://model_signing/signature/v1.0"

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
 * Checks the Sigstore bundle B around the envelope and finds its publicKey
 * (*PK). Accepts a JSON object of a v0.3 mediaType (either spelling) whose
 * verificationMaterial holds a publicKey. Refuses by -EOPNOTSUPP, rather than
 * skip, what this verifier cannot check: a messageSignature (it signs one
 * blob, not a model), a certificate or chain (keyless signing needs Fulcio's
 * roots and an identity policy), transparency-log entries (Rekor's key and
 * inclusion proofs); an empty tlogEntries array counts as none. Returns 0 or
 * -errno with WHY.
 */
static int check_bundle(const cJSON *b, const cJSON **pk, char why[VR_WHY_MAX])
{
	const char *media = str_of(b, "mediaType");
	const cJSON *vm = cJSON_GetObjectItemCaseSensitive(b, "verificationMaterial");
	const cJSON *tlog;

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
	if (cJSON_GetObjectItemCaseSensitive(vm, "certificate") ||
	    cJSON_GetObjectItemCaseSensitive(vm, "x509CertificateChain"))
		return mf_fail(why, -EOPNOTSUPP,
			       "certificate-signed (keyless, Fulcio) bundles are not supported; "
			       "sign with a key");
	tlog = cJSON_GetObjectItemCaseSensitive(vm, "tlogEntries");
	if (tlog && (!cJSON_IsArray(tlog) || cJSON_GetArraySize(tlog) != 0))
		return mf_fail(
		    why, -EOPNOTSUPP,
		    "transparency-log (Rekor) entries are not supported; sign with a key");
	*pk = cJSON_GetObjectItemCaseSensitive(vm, "publicKey");
	if (!cJSON_IsObject(*pk))
		return mf_fail(why, -EINVAL, "verificationMaterial has no publicKey");
	return 0;
}

/*
 * Verifies the DSSE envelope's signature over its payload with the trusted
 * key pick_key finds; the decoded payload into *PAYLOAD (NULL on failure) and
 * the key's hint into HINT. Accepts payloadType application/vnd.in-toto+json
 * and exactly one signature: with several, which must verify would need a
 * policy. Its keyid is not read: the bundle's publicKey names the key. The
 * key is picked before anything is decoded, so a bundle from an untrusted
 * signer costs little. Nothing in the payload is read here: only a payload
 * whose signature verified goes on to read_statement.
 */
static int check_envelope(const cJSON *b, const cJSON *pk, const struct vr_trust *trust,
			  uint8_t **payload, size_t *plen, char hint[2 * VR_DIGEST_SIZE + 1],
			  char why[VR_WHY_MAX])
{
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(b, "dsseEnvelope");
	const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(env, "signatures");
	const char *ptype = str_of(env, "payloadType"), *p64 = str_of(env, "payload");
	const struct trust_key *k;
	struct dsa_signature sig;
	uint8_t digest[SHA512_DIGEST_SIZE], *der;
	size_t dlen, derlen;
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
	k = pick_key(pk, trust, &ret, why);
	if (!k)
		return ret;
	ret = mf_b64_decode(p64, strlen(p64), payload, plen);
	if (ret)
		return mf_fail(why, ret,
			       ret == -ENOMEM ? "out of memory" : "the payload is not base64");
	ret = mf_b64_decode(s64, strlen(s64), &der, &derlen);
	dsa_signature_init(&sig);
	if (ret == 0 && !parse_sig(der, derlen, &sig))
		ret = -EINVAL;
	free(der);
	if (ret) {
		mf_fail(why, ret,
			ret == -ENOMEM ? "out of memory"
				       : "the signature is not a base64 DER ECDSA signature");
	} else {
		dlen = pae_digest(k, ptype, *payload, *plen, digest);
		if (!ecdsa_verify(&k->pub, dlen, digest, &sig))
			ret = mf_fail(why, -EBADMSG,
				      "signature does not verify with the trusted key");
	}
	dsa_signature_clear(&sig);
	if (ret) {
		free(*payload);
		*payload = NULL;
		return ret;
	}
	memcpy(hint, k->hint, 2 * VR_DIGEST_SIZE + 1);
	return 0;
}

/*
 * Sets M's ignored paths: model_signing's defaults (the git files and
 * model.sig itself, which is not among the resources it signs) and
 * serialization.ignore_paths, LIST. Refuses a LIST that is not an array, over
 * VR_OMS_IGNORE_MAX entries, or with an entry that is not a string. An entry
 * that mf_normalize_rel refuses is skipped, not refused: it cannot name
 * anything inside the model, so ignoring it changes nothing.
 */
static int add_ignores(struct vr_manifest *m, const cJSON *list, char why[VR_WHY_MAX])
{
	static const char *const defaults[] = {".git", ".gitattributes", ".github", ".gitignore",
					       VR_OMS_NAME};
	size_t n = sizeof(defaults) / sizeof(defaults[0]);
	size_t extra = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
	const cJSON *it;

	if (list && !cJSON_IsArray(list))
		return mf_fail(why, -EINVAL, "serialization.ignore_paths is not an array");
	if (extra > VR_OMS_IGNORE_MAX)
		return mf_fail(why, -E2BIG, "more than %d ignore_paths", VR_OMS_IGNORE_MAX);
	m->ignore = calloc(n + extra, sizeof(char *));
	if (!m->ignore)
		return mf_fail(why, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m->ignore[m->nignore] = strdup(defaults[i]);
		if (!m->ignore[m->nignore])
			return mf_fail(why, -ENOMEM, "out of memory");
		m->nignore++;
	}
	cJSON_ArrayForEach(it, list)
	{
		char *p;

		if (!cJSON_IsString(it))
			return mf_fail(why, -EINVAL, "an ignore_paths entry is not a string");
		p = strdup(it->valuestring);
		if (!p)
			return mf_fail(why, -ENOMEM, "out of memory");
		/* a path that is not relative to the model cannot name anything in it */
		if (mf_normalize_rel(p)) {
			free(p);
			continue;
		}
		m->ignore[m->nignore++] = p;
	}
	return 0;
}

/*
 * Parses the verified PAYLOAD as JSON into *ST (for the caller to free, also
 * on failure) and checks it is an in-toto Statement v1 of OMS's predicate
 * type. Refuses JSON that is not an object or another statement type
 * (-EINVAL), and another predicate type (-EOPNOTSUPP): a key signs many
 * things, and only a model signature says which files hold which bytes.
 */
static int parse_statement(const uint8_t *payload, size_t plen, cJSON **st, char why[VR_WHY_MAX])
{
	const char *s;
	int ret;

	*st = vr_json_parse((const char *)payload, plen, NULL, &ret);
	if (ret == -ENOMEM)
		return mf_fail(why, ret, "out of memory");
	if (ret == -ENOTUNIQ)
		return mf_fail(why, -EINVAL, "the payload: " VR_JSON_REPEATED_WHY);
	if (!cJSON_IsObject(*st))
		return mf_fail(why, -EINVAL, "the payload is not a JSON object");
	s = str_of(*st, "_type");
	if (!s || strcmp(s, STATEMENT_TYPE) != 0)
		return mf_fail(why, -EINVAL, "the payload is not an in-toto Statement v1");
	s = str_of(*st, "predicateType");
	if (!s || strcmp(s, OMS_PREDICATE) != 0)
		return mf_fail(why, -EOPNOTSUPP, "predicateType is not " OMS_PREDICATE);
	return 0;
}

/*
 * Reads the sha256 digest of the statement's subject into WANT. Refuses any
 * number of subjects but one (with several, which one do the resources make
 * up?) and a digest that is not 64 lowercase hex digits.
 */
static int read_subject(const cJSON *st, uint8_t want[VR_DIGEST_SIZE], char why[VR_WHY_MAX])
{
	const cJSON *subj = cJSON_GetObjectItemCaseSensitive(st, "subject");
	const char *s =
	    cJSON_GetArraySize(subj) == 1
		? str_of(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(subj, 0), "digest"),
			 "sha256")
		: NULL;

	if (!cJSON_IsArray(subj) || !s || vr_unhex(s, want, VR_DIGEST_SIZE))
		return mf_fail(why, -EINVAL,
			       "the statement needs one subject with a sha256 digest");
	return 0;
}

/*
 * Checks the predicate's serialization, takes its allow_symlinks (a boolean,
 * false when absent) and ignore_paths into M (add_ignores) and finds its
 * resources array (*RES). Accepts method "files"
 * with hash_type sha256 alone: one SHA-256 per whole file is what a seal can
 * be compared with. Refuses a predicate without a serialization object or a
 * resources array (-EINVAL), another method (shards) or hash (-EOPNOTSUPP;
 * -EINVAL when absent).
 */
static int read_serialization(struct vr_manifest *m, const cJSON *st, const cJSON **res,
			      char why[VR_WHY_MAX])
{
	const cJSON *pred = cJSON_GetObjectItemCaseSensitive(st, "predicate");
	const cJSON *ser = cJSON_GetObjectItemCaseSensitive(pred, "serialization");
	const char *s;

	*res = cJSON_GetObjectItemCaseSensitive(pred, "resources");
	if (!cJSON_IsObject(ser) || !cJSON_IsArray(*res))
		return mf_fail(why, -EINVAL, "the predicate lacks serialization or resources");
	s = str_of(ser, "method");
	if (!s || strcmp(s, "files") != 0)
		return mf_fail(why, s ? -EOPNOTSUPP : -EINVAL,
			       "serialization method %.40s is not supported (files is)",
			       s ? s : "(none)");
	s = str_of(ser, "hash_type");
	if (!s || strcmp(s, "sha256") != 0)
		return mf_fail(why, s ? -EOPNOTSUPP : -EINVAL,
			       "hash_type %.40s is not supported (sha256 is)", s ? s : "(none)");
	const cJSON *links = cJSON_GetObjectItemCaseSensitive(ser, "allow_symlinks");

	if (links && !cJSON_IsBool(links))
		return mf_fail(why, -EINVAL, "serialization.allow_symlinks is not a boolean");
	m->allow_symlinks = cJSON_IsTrue(links);
	return add_ignores(m, cJSON_GetObjectItemCaseSensitive(ser, "ignore_paths"), why);
}

/*
 * Adds resource IT ({"name", "algorithm", "digest"}) to M; CAP is the room in
 * M->ENTRIES. Refuses a resource without all three strings (-EINVAL), another
 * algorithm (-EOPNOTSUPP), a digest that is not 64 lowercase hex digits, a
 * name that mf_normalize_rel refuses (-EINVAL), and the resource past
 * VR_MANIFEST_MAX_ENTRIES (-E2BIG). -ENOMEM leaves WHY to the caller.
 */
static int add_resource(struct vr_manifest *m, size_t *cap, const cJSON *it, char why[VR_WHY_MAX])
{
	const char *name = str_of(it, "name"), *alg = str_of(it, "algorithm");
	const char *dig = str_of(it, "digest"), *bad;
	uint8_t sha[VR_DIGEST_SIZE];
	char *copy;
	int ret;

	if (!name || !alg || !dig)
		return mf_fail(why, -EINVAL, "resource %zu lacks name, algorithm or digest",
			       m->count + 1);
	if (strcmp(alg, "sha256") != 0)
		return mf_fail(why, -EOPNOTSUPP, "resource %.100s: algorithm %.40s is not sha256",
			       name, alg);
	if (vr_unhex(dig, sha, sizeof(sha)))
		return mf_fail(why, -EINVAL, "resource %.100s: digest is not 64 lowercase hex",
			       name);
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	bad = mf_normalize_file(copy);
	if (bad) {
		free(copy);
		return mf_fail(why, -EINVAL, "resource %.100s: the name is %s", name, bad);
	}
	ret = mf_add_entry(m, cap, copy, sha);
	if (ret == -E2BIG)
		mf_fail(why, ret, "more than %u resources", VR_MANIFEST_MAX_ENTRIES);
	return ret;
}

/*
 * Adds every resource of RES to M (add_resource) and sorts them. Refuses the
 * statement at the first bad resource, and when a name is listed twice: one
 * file with two digests has no answer.
 */
static int read_resources(struct vr_manifest *m, const cJSON *res, char why[VR_WHY_MAX])
{
	const cJSON *it;
	size_t cap = 0;
	long dup;
	int ret;

	cJSON_ArrayForEach(it, res)
	{
		ret = add_resource(m, &cap, it, why);
		if (ret)
			return ret;
	}
	dup = mf_sort_entries(m);
	if (dup >= 0)
		return mf_fail(why, -EINVAL, "resource %.200s is listed twice",
			       m->entries[dup].name);
	return 0;
}

/*
 * Checks that WANT, the subject digest, is the SHA-256 of M's digests in name
 * order, and keeps it in M. Refuses a mismatch (-EBADMSG): the subject digest
 * covers the resource list, so none can be added, dropped or edited.
 */
static int check_subject(struct vr_manifest *m, const uint8_t want[VR_DIGEST_SIZE],
			 char why[VR_WHY_MAX])
{
	struct sha256_ctx ctx;
	uint8_t got[VR_DIGEST_SIZE];

	sha256_init(&ctx);
	for (size_t i = 0; i < m->count; i++)
		sha256_update(&ctx, VR_DIGEST_SIZE, m->entries[i].digest);
	sha256_digest(&ctx, sizeof(got), got);
	if (!memeql_sec(got, want, sizeof(got)))
		return mf_fail(why, -EBADMSG, "the subject digest does not match the resources");
	memcpy(m->subject, want, VR_DIGEST_SIZE);
	return 0;
}

/*
 * Reads the verified statement PAYLOAD into M: the statement and its
 * predicate type, the subject, the serialization, the resources, and last the
 * check that the subject digest matches them. Stops at the first refusal,
 * with WHY and -errno from that step.
 */
static int read_statement(struct vr_manifest *m, const uint8_t *payload, size_t plen,
			  char why[VR_WHY_MAX])
{
	uint8_t want[VR_DIGEST_SIZE];
	const cJSON *res = NULL;
	cJSON *st;
	int ret;

	ret = parse_statement(payload, plen, &st, why);
	if (ret == 0)
		ret = read_subject(st, want, why);
	if (ret == 0)
		ret = read_serialization(m, st, &res, why);
	if (ret == 0)
		ret = read_resources(m, res, why);
	if (ret == 0)
		ret = check_subject(m, want, why);
	cJSON_Delete(st);
	return ret;
}

/*
 * Accepts a bundle of at most VR_MANIFEST_MAX_BYTES without a NUL byte (JSON
 * text holds none), then checks it in order: the bundle (check_bundle), the
 * signature with a trusted key (check_envelope), the statement
 * (read_statement). The statement's parser sees only signed bytes.
 */
int vr_oms_verify(const char *text, size_t len, const struct vr_trust *trust,
		  struct vr_manifest **out, char why[VR_WHY_MAX])
{
	const cJSON *pk = NULL;
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
	ret = check_bundle(b, &pk, why);
	if (ret == 0)
		ret = check_envelope(b, pk, trust, &payload, &plen, m->key_hint, why);
	/* only a payload whose signature verified is read further */
	if (ret == 0)
		ret = read_statement(m, payload, plen, why);
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
