/* test_manifest.c - SHA256SUMS and OMS parsers: the reference vector, a signer, every fault. */
#include "check.h"
#include "manifest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmp.h>
#include <nettle/base64.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/knuth-lfib.h>
#include <nettle/sha2.h>

#ifndef VR_TEST_DATA
#define VR_TEST_DATA "tests/data"
#endif
#define OMS_DIR VR_TEST_DATA "/oms/v1.1.0-elliptic-key"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);

	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*len = (size_t)n;
	}
	return buf;
}

static char *b64(const void *data, size_t len)
{
	char *out = malloc(BASE64_ENCODE_RAW_LENGTH(len) + 1);

	base64_encode_raw(out, len, data);
	out[BASE64_ENCODE_RAW_LENGTH(len)] = '\0';
	return out;
}

static uint8_t *unb64(const char *s, size_t *len)
{
	struct base64_decode_ctx c;
	size_t n = BASE64_DECODE_LENGTH(strlen(s));
	uint8_t *out = malloc(n + 1);

	base64_decode_init(&c);
	if (!base64_decode_update(&c, &n, out, strlen(s), s) || !base64_decode_final(&c)) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}

/* Finds the first FIELD's string value in JSON: it lies between *Q1 and *Q2 (the quotes). */
static bool find_value(const char *json, const char *field, const char **q1, const char **q2)
{
	char key[64];
	const char *k;

	snprintf(key, sizeof(key), "\"%s\"", field);
	k = strstr(json, key);
	if (!k)
		return false;
	*q1 = strchr(k + strlen(key), '"');
	*q2 = *q1 ? strchr(*q1 + 1, '"') : NULL;
	return *q2 != NULL;
}

/* Replaces the first FIELD string value ("FIELD": "...") in JSON text with VALUE. */
static char *replace_field(const char *json, const char *field, const char *value)
{
	const char *q1, *q2;

	if (!find_value(json, field, &q1, &q2))
		return NULL;
	size_t n = (size_t)(q1 + 1 - json) + strlen(value) + strlen(q2) + 1;
	char *out = malloc(n);

	snprintf(out, n, "%.*s%s%s", (int)(q1 + 1 - json), json, value, q2);
	return out;
}

/* The value of the first FIELD string in JSON, malloc'd. */
static char *field_of(const char *json, const char *field)
{
	const char *q1, *q2;

	return find_value(json, field, &q1, &q2) ? strndup(q1 + 1, (size_t)(q2 - q1 - 1)) : NULL;
}

static int oms(const char *text, const struct vr_trust *t, struct vr_manifest **m, char *why)
{
	*m = NULL;
	return vr_oms_verify(text, strlen(text), t, m, why);
}

/* ---- the reference implementation's vector ---- */

/*
 * Flips MASK in bytes of the decoded FIELD of bundle SIG (every byte for short fields, then
 * sparser) and counts the tries and how many the verifier refused.
 */
static void flip_each(const char *sig, const char *field, uint8_t *bytes, size_t len, uint8_t mask,
		      const struct vr_trust *t, unsigned *tries, unsigned *refused)
{
	struct vr_manifest *m;
	char why[VR_WHY_MAX];

	for (size_t i = 0; i < len; i += 1 + i / 64) {
		bytes[i] ^= mask;
		char *e = b64(bytes, len);
		char *edited = replace_field(sig, field, e);

		(*tries)++;
		*refused += oms(edited, t, &m, why) != 0;
		vr_manifest_free(m);
		free(e);
		free(edited);
		bytes[i] ^= mask;
	}
}

static void test_reference_vector(void)
{
	size_t klen, slen, alen, blen;
	char *pem = slurp(VR_TEST_DATA "/oms/signing-key-pub.pem", &klen);
	char *sig = slurp(OMS_DIR "/model.sig", &slen);
	char *a = slurp(OMS_DIR "/signme-1", &alen), *b = slurp(OMS_DIR "/signme-2", &blen);
	struct vr_trust *t = NULL;
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX] = "";
	uint8_t d[VR_DIGEST_SIZE];

	CHECK(pem && sig && a && b);
	if (!pem || !sig || !a || !b)
		return;
	CHECK_EQ(vr_trust_from_pem(pem, klen, &t, why), 0);
	CHECK_EQ(vr_trust_count(t), 1);
	/* the bundle's hint: the hex SHA-256 of the key's canonical PEM */
	CHECK_STR(vr_trust_hint(t, 0),
		  "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e");
	CHECK_EQ(vr_oms_verify(sig, slen, t, &m, why), 0);
	if (!m) {
		fprintf(stderr, "reference vector refused: %s\n", why);
		goto out;
	}
	CHECK_EQ(m->kind, VR_MANIFEST_OMS);
	CHECK_EQ(m->count, 2);
	CHECK_STR(m->key_hint, vr_trust_hint(t, 0));
	const struct vr_manifest_entry *e1 = vr_manifest_find(m, "signme-1");
	const struct vr_manifest_entry *e2 = vr_manifest_find(m, "signme-2");

	CHECK(e1 && e2);
	vr_sha256(a, alen, d);
	CHECK(e1 && memcmp(e1->digest, d, sizeof(d)) == 0);
	vr_sha256(b, blen, d);
	CHECK(e2 && memcmp(e2->digest, d, sizeof(d)) == 0);
	CHECK(!m->allow_symlinks); /* the vector's statement says false */
	CHECK(vr_manifest_find(m, "ignore-me") == NULL);
	CHECK(vr_manifest_ignored(m, "ignore-me"));
	CHECK(vr_manifest_ignored(m, "model.sig"));
	CHECK(vr_manifest_ignored(m, ".git/config"));
	CHECK(!vr_manifest_ignored(m, ".gitx"));
	CHECK(!vr_manifest_ignored(m, "signme-1"));
	vr_manifest_free(m);
	m = NULL;

	/* no trust, or trust in another key: refused, and the reason says so */
	CHECK_EQ(vr_oms_verify(sig, slen, NULL, &m, why), -EKEYREJECTED);
	CHECK(strstr(why, "not trusted") != NULL);

	/* the key itself as rawBytes (model_signing 1.0.x): accepted for the trusted key */
	char *pem64 = b64(pem, klen);
	char *raw = replace_field(sig, "hint", pem64);
	char *rawsig = NULL;

	/* "hint" -> "rawBytes" */
	if (raw) {
		char *h = strstr(raw, "\"hint\"");
		size_t n = strlen(raw) + 8;

		rawsig = malloc(n);
		snprintf(rawsig, n, "%.*s\"rawBytes\"%s", (int)(h - raw), raw, h + 6);
	}
	CHECK(rawsig != NULL);
	if (rawsig) {
		CHECK_EQ(oms(rawsig, t, &m, why), 0);
		vr_manifest_free(m);
	}
	free(pem64);
	free(raw);
	free(rawsig);

	/* rawBytes whose END line shares the BEGIN line's dashes (found by fuzz_oms) */
	char *odd = replace_field(
	    sig, "hint", "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0tRU5EIFBVQkxJQyBLRVktLS0tLQo=");
	char *h = odd ? strstr(odd, "\"hint\"") : NULL;

	CHECK(h != NULL);
	if (h) {
		size_t n = strlen(odd) + 8;
		char *oddraw = malloc(n);

		snprintf(oddraw, n, "%.*s\"rawBytes\"%s", (int)(h - odd), odd, h + 6);
		CHECK_EQ(oms(oddraw, t, &m, why), -EINVAL);
		free(oddraw);
	}
	free(odd);

	/* a hint no trusted key has */
	char *other = replace_field(
	    sig, "hint", "0000000000000000000000000000000000000000000000000000000000000000");

	CHECK_EQ(oms(other, t, &m, why), -EKEYREJECTED);
	free(other);

	/* property: any change to a byte of the payload or the signature is refused */
	char *p64 = field_of(sig, "payload"), *s64 = field_of(sig, "sig");
	size_t plen, dlen;
	uint8_t *payload = unb64(p64, &plen), *der = unb64(s64, &dlen);
	unsigned refused = 0, tries = 0;

	CHECK(payload && der);
	if (payload)
		flip_each(sig, "payload", payload, plen, 0x01, t, &tries, &refused);
	if (der)
		flip_each(sig, "sig", der, dlen, 0x40, t, &tries, &refused);
	CHECK(tries > 100);
	CHECK_EQ(refused, tries);
	free(payload);
	free(der);
	free(p64);
	free(s64);

	/* truncated anywhere: refused, never a crash */
	refused = tries = 0;
	for (size_t n = 0; n < slen; n += 7) {
		tries++;
		m = NULL;
		refused += vr_oms_verify(sig, n, t, &m, why) != 0;
		vr_manifest_free(m);
	}
	CHECK_EQ(refused, tries);
out:
	vr_trust_free(t);
	free(pem);
	free(sig);
	free(a);
	free(b);
}

/* ---- a signer, to make bundles with every field right or wrong ---- */

struct signer {
	const struct ecc_curve *curve;
	size_t coord;
	struct ecc_point pub;
	struct ecc_scalar key;
	struct knuth_lfib_ctx rnd;
	char *pem;
};

static void rnd(void *ctx, size_t n, uint8_t *dst)
{
	knuth_lfib_random(ctx, n, dst);
}

static void put_coord(uint8_t *out, size_t n, const mpz_t v)
{
	size_t count;

	memset(out, 0, n);
	mpz_export(out + n - (mpz_sizeinbase(v, 2) + 7) / 8, &count, 1, 1, 1, 0, v);
}

static void signer_init(struct signer *s, int bits, unsigned seed)
{
	static const uint8_t p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
				       0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
				       0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
	static const uint8_t p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
				       0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
				       0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04};
	const uint8_t *head = bits == 256 ? p256 : p384;
	size_t hl = bits == 256 ? sizeof(p256) : sizeof(p384);
	uint8_t der[200];
	mpz_t x, y;

	s->curve = bits == 256 ? nettle_get_secp_256r1() : nettle_get_secp_384r1();
	s->coord = bits / 8;
	knuth_lfib_init(&s->rnd, seed);
	ecc_point_init(&s->pub, s->curve);
	ecc_scalar_init(&s->key, s->curve);
	ecdsa_generate_keypair(&s->pub, &s->key, &s->rnd, rnd);
	mpz_init(x);
	mpz_init(y);
	ecc_point_get(&s->pub, x, y);
	memcpy(der, head, hl);
	put_coord(der + hl, s->coord, x);
	put_coord(der + hl + s->coord, s->coord, y);
	mpz_clear(x);
	mpz_clear(y);
	char *body = b64(der, hl + 2 * s->coord);
	size_t n = strlen(body) + 128;

	s->pem = malloc(n);
	snprintf(s->pem, n, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", body);
	free(body);
}

static void signer_free(struct signer *s)
{
	ecc_point_clear(&s->pub);
	ecc_scalar_clear(&s->key);
	free(s->pem);
}

/* DER of one positive INTEGER from V into OUT; returns its length. */
static size_t der_int(uint8_t *out, const mpz_t v)
{
	uint8_t buf[80];
	size_t n;

	mpz_export(buf, &n, 1, 1, 1, 0, v);
	size_t pad = buf[0] & 0x80 ? 1 : 0;

	out[0] = 0x02;
	out[1] = (uint8_t)(n + pad);
	out[2] = 0;
	memcpy(out + 2 + pad, buf, n);
	return 2 + pad + n;
}

/* A bundle signing STATEMENT with S; HINT names the key (else rawBytes). Malloc'd. */
static char *sign_bundle(struct signer *s, const char *statement, const char *hint)
{
	const char *type = "application/vnd.in-toto+json";
	char head[128];
	int hl = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(type), type,
			  strlen(statement));
	uint8_t digest[SHA384_DIGEST_SIZE], der[256], ints[220];
	size_t dl = s->coord == 32 ? SHA256_DIGEST_SIZE : SHA384_DIGEST_SIZE, il;
	struct dsa_signature sig;

	if (s->coord == 32) {
		struct sha256_ctx c;

		sha256_init(&c);
		sha256_update(&c, (size_t)hl, (const uint8_t *)head);
		sha256_update(&c, strlen(statement), (const uint8_t *)statement);
		sha256_digest(&c, dl, digest);
	} else {
		struct sha384_ctx c;

		sha384_init(&c);
		sha384_update(&c, (size_t)hl, (const uint8_t *)head);
		sha384_update(&c, strlen(statement), (const uint8_t *)statement);
		sha384_digest(&c, dl, digest);
	}
	dsa_signature_init(&sig);
	ecdsa_sign(&s->key, &s->rnd, rnd, dl, digest, &sig);
	il = der_int(ints, sig.r);
	il += der_int(ints + il, sig.s);
	dsa_signature_clear(&sig);
	size_t dlen;

	if (il < 0x80) {
		der[0] = 0x30;
		der[1] = (uint8_t)il;
		memcpy(der + 2, ints, il);
		dlen = 2 + il;
	} else {
		der[0] = 0x30;
		der[1] = 0x81;
		der[2] = (uint8_t)il;
		memcpy(der + 3, ints, il);
		dlen = 3 + il;
	}
	char *sig64 = b64(der, dlen), *p64 = b64(statement, strlen(statement));
	char *key64 = hint ? NULL : b64(s->pem, strlen(s->pem));
	size_t n = strlen(sig64) + strlen(p64) + (key64 ? strlen(key64) : 64) + 512;
	char *out = malloc(n);

	snprintf(
	    out, n,
	    "{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", "
	    "\"verificationMaterial\": {\"publicKey\": {\"%s\": \"%s\"}, \"tlogEntries\": []}, "
	    "\"dsseEnvelope\": {\"payload\": \"%s\", \"payloadType\": \"%s\", "
	    "\"signatures\": [{\"sig\": \"%s\", \"keyid\": \"\"}]}}",
	    hint ? "hint" : "rawBytes", hint ? hint : key64, p64, type, sig64);
	free(sig64);
	free(p64);
	free(key64);
	return out;
}

#define DA "bc9a717db6064a32cbe9eae6fc40651dd6d36ef1757183f590eff2b1765d7ebc"
#define DB "32dcb1f8e1ae52d5963e56a6ba06ab58b424c15ed2a6b70d2feca1d089370028"
/* SHA-256(raw DA || raw DB): the subject of a statement listing a (DA) and sub/b (DB) */
static char subject_ab[65];

static char *statement(const char *subject, const char *method, const char *hash,
		       const char *resources)
{
	char *out = malloc(4096);

	snprintf(out, 4096,
		 "{\"_type\": \"https://in-toto.io/Statement/v1\", \"subject\": [{\"name\": "
		 "\"m\", \"digest\": {\"sha256\": \"%s\"}}], \"predicateType\": "
		 "\"https://model_signing/signature/v1.0\", \"predicate\": {\"serialization\": "
		 "{\"method\": \"%s\", \"hash_type\": \"%s\", \"allow_symlinks\": false, "
		 "\"ignore_paths\": [\"logs\"]}, \"resources\": [%s]}}",
		 subject, method, hash, resources);
	return out;
}

static const char *good_resources =
    "{\"name\": \"sub/b\", \"algorithm\": \"sha256\", \"digest\": \"" DB "\"}, "
    "{\"name\": \"a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}";

/* ST (which states allow_symlinks false) with that value replaced by VALUE, or without the key
 * when VALUE is NULL; malloc'd. */
static char *with_links(const char *st, const char *value)
{
	static const char key[] = "\"allow_symlinks\": false";
	const char *at = strstr(st, key);
	size_t n = strlen(st) + (value ? strlen(value) : 0) + 1;
	char *out = at ? malloc(n) : NULL;

	if (!out)
		return NULL;
	if (value)
		snprintf(out, n, "%.*s\"allow_symlinks\": %s%s", (int)(at - st), st, value,
			 at + strlen(key));
	else
		snprintf(out, n, "%.*s%s", (int)(at - st), st, at + strlen(key) + 2); /* and ", " */
	return out;
}

/* allow_symlinks is read: false, true, absent (false), and refused when not a boolean */
static void allow_symlinks_read(struct signer *s, const struct vr_trust *t, const char *st)
{
	static const struct {
		const char *value;
		int ret;
		bool allow;
	} cases[] = {{"false", 0, false},
		     {"true", 0, true},
		     {NULL, 0, false},
		     {"\"yes\"", -EINVAL, false},
		     {"1", -EINVAL, false},
		     {"null", -EINVAL, false},
		     /* a repeated member: cJSON would keep the first, Python's json the last */
		     {"false, \"allow_symlinks\": true", -EINVAL, false}};
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *v = with_links(st, cases[i].value);
		char *bundle = v ? sign_bundle(s, v, vr_trust_hint(t, 0)) : NULL;

		CHECK(bundle != NULL);
		if (bundle)
			CHECK_EQ(oms(bundle, t, &m, why), cases[i].ret);
		if (bundle && cases[i].value && strstr(cases[i].value, "allow_symlinks"))
			CHECK(strstr(why, "names a member twice") != NULL);
		if (m)
			CHECK_EQ(m->allow_symlinks, cases[i].allow);
		vr_manifest_free(m);
		m = NULL;
		free(bundle);
		free(v);
	}
}

static void test_signed(int bits)
{
	struct signer s, stranger;
	struct vr_trust *t = NULL, *t2 = NULL;
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];
	char *st, *bundle;

	signer_init(&s, bits, 1234 + (unsigned)bits);
	signer_init(&stranger, bits, 99);
	CHECK_EQ(vr_trust_from_pem(s.pem, strlen(s.pem), &t, why), 0);
	CHECK_EQ(vr_trust_from_pem(stranger.pem, strlen(stranger.pem), &t2, why), 0);
	if (!t || !t2)
		goto out;

	/* good, by hint and by rawBytes; names normalized, sorted, ignore_paths kept */
	st = statement(subject_ab, "files", "sha256", good_resources);
	bundle = sign_bundle(&s, st, vr_trust_hint(t, 0));
	CHECK_EQ(oms(bundle, t, &m, why), 0);
	CHECK(m && m->count == 2 && strcmp(m->entries[0].name, "a") == 0 &&
	      strcmp(m->entries[1].name, "sub/b") == 0);
	CHECK(m && vr_manifest_ignored(m, "logs/run1.txt") && !vr_manifest_ignored(m, "a"));
	vr_manifest_free(m);
	/* signed by another key: never trusted, whatever the bundle says */
	CHECK_EQ(oms(bundle, t2, &m, why), -EKEYREJECTED);
	free(bundle);
	allow_symlinks_read(&s, t, st);
	bundle = sign_bundle(&s, st, NULL);
	CHECK_EQ(oms(bundle, t, &m, why), 0);
	vr_manifest_free(m);
	CHECK_EQ(oms(bundle, t2, &m, why), -EKEYREJECTED);
	free(bundle);
	/* the stranger claims the trusted key's hint: the signature does not verify */
	bundle = sign_bundle(&stranger, st, vr_trust_hint(t, 0));
	CHECK_EQ(oms(bundle, t, &m, why), -EBADMSG);
	CHECK(strstr(why, "does not verify") != NULL);
	free(bundle);
	free(st);

	/* a resource list that does not match its subject (signed as such), unsupported methods
	 * and hashes: refused with a reason */
	static const struct {
		const char *subject, *method, *hash;
		int err;
		const char *why;
	} refusals[] = {
	    {"0000000000000000000000000000000000000000000000000000000000000000", "files", "sha256",
	     -EBADMSG, "subject digest"},
	    {subject_ab, "shards", "sha256", -EINVAL, "shard_size"}, /* shards need their size */
	    {subject_ab, "lines", "sha256", -EOPNOTSUPP, "lines"},
	    {subject_ab, "files", "blake2", -EOPNOTSUPP, "blake2"},
	};
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		st = statement(refusals[i].subject, refusals[i].method, refusals[i].hash,
			       good_resources);
		bundle = sign_bundle(&s, st, vr_trust_hint(t, 0));
		CHECK_EQ(oms(bundle, t, &m, why), refusals[i].err);
		CHECK(strstr(why, refusals[i].why) != NULL);
		free(bundle);
		free(st);
	}

	/* each resource field missing or wrong; names that escape the directory */
	static const char *const bad[] = {
	    "{\"algorithm\": \"sha256\", \"digest\": \"" DA "\"}",
	    "{\"name\": \"a\", \"digest\": \"" DA "\"}",
	    "{\"name\": \"a\", \"algorithm\": \"sha256\"}",
	    "{\"name\": \"a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "00\"}",
	    "{\"name\": \"a\", \"algorithm\": \"sha256\", \"digest\": 5}",
	    "{\"name\": \"../a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}",
	    "{\"name\": \"/etc/a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}",
	    "{\"name\": \"a//b\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}",
	    "{\"name\": \"a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}, "
	    "{\"name\": \"./a\", \"algorithm\": \"sha256\", \"digest\": \"" DA "\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st = statement(subject_ab, "files", "sha256", bad[i]);
		bundle = sign_bundle(&s, st, vr_trust_hint(t, 0));
		int ret = oms(bundle, t, &m, why);

		CHECK(ret == -EINVAL || ret == -EBADMSG);
		if (ret == 0)
			fprintf(stderr, "accepted bad resource %zu\n", i);
		vr_manifest_free(m);
		free(bundle);
		free(st);
	}
	/* statements that are not model signatures */
	static const char *const bad_st[] = {
	    "[]",
	    "{\"_type\": \"https://in-toto.io/Statement/v0.1\"}",
	    "{\"_type\": \"https://in-toto.io/Statement/v1\", \"predicateType\": \"x\"}",
	    "{\"_type\": \"https://in-toto.io/Statement/v1\", \"predicateType\": "
	    "\"https://model_signing/signature/v1.0\", \"subject\": []}",
	    "not json",
	};
	for (size_t i = 0; i < sizeof(bad_st) / sizeof(bad_st[0]); i++) {
		bundle = sign_bundle(&s, bad_st[i], vr_trust_hint(t, 0));
		int ret = oms(bundle, t, &m, why);

		CHECK(ret == -EINVAL || ret == -EOPNOTSUPP);
		vr_manifest_free(m);
		free(bundle);
	}
out:
	vr_trust_free(t);
	vr_trust_free(t2);
	signer_free(&s);
	signer_free(&stranger);
}

/* Bundles whose envelope or material is wrong, around the reference vector. */
static void test_bundle_faults(void)
{
	size_t klen, slen;
	char *pem = slurp(VR_TEST_DATA "/oms/signing-key-pub.pem", &klen);
	char *sig = slurp(OMS_DIR "/model.sig", &slen);
	struct vr_trust *t = NULL;
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];
	static const struct {
		const char *field, *value;
		int err;
	} edits[] = {
	    {"mediaType", "application/vnd.dev.sigstore.bundle.v0.1+json", -EOPNOTSUPP},
	    {"payloadType", "text/plain", -EINVAL},
	    {"payload", "!!!not base64!!!", -EINVAL},
	    {"sig", "AAAA", -EINVAL},
	    {"hint", "", -EKEYREJECTED},
	};

	if (!pem || !sig || vr_trust_from_pem(pem, klen, &t, why)) {
		CHECK(0);
		goto out;
	}
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *e = replace_field(sig, edits[i].field, edits[i].value);

		CHECK_EQ(oms(e, t, &m, why), edits[i].err);
		free(e);
	}
	/* keyless bundles: a Fulcio certificate with Rekor entries, Rekor entries */
	static const char *const keyless[] = {
	    "{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", "
	    "\"verificationMaterial\": {\"certificate\": {\"rawBytes\": \"AAAA\"}, "
	    "\"tlogEntries\": [{\"logIndex\": \"1\"}]}, \"dsseEnvelope\": {}}",
	    "{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", "
	    "\"verificationMaterial\": {\"x509CertificateChain\": {}, \"tlogEntries\": "
	    "[{}]}, \"dsseEnvelope\": {}}",
	    "{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", "
	    "\"verificationMaterial\": {\"publicKey\": {\"hint\": \"ab\"}, \"tlogEntries\": "
	    "[{\"logIndex\": \"1\"}]}, \"dsseEnvelope\": {}}",
	};
	for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++) {
		CHECK_EQ(oms(keyless[i], t, &m, why), -EOPNOTSUPP);
		CHECK(strstr(why, "not supported") != NULL);
	}
	CHECK_EQ(oms("{}", t, &m, why), -EINVAL);
	/* a bundle naming a member twice, however deep, is refused for it */
	CHECK_EQ(oms("{\"a\": 1, \"a\": 2}", t, &m, why), -EINVAL);
	CHECK(strstr(why, "names a member twice") != NULL);
	CHECK_EQ(oms("{\"x\": [{\"b\": {\"c\": 1, \"c\": 1}}]}", t, &m, why), -EINVAL);
	CHECK(strstr(why, "names a member twice") != NULL);
	/* an object of many members is checked sorted: a repeat anywhere in it, or none */
	char many[2048];
	size_t at = (size_t)snprintf(many, sizeof(many), "{");

	for (int i = 0; i < 40; i++)
		at += (size_t)snprintf(many + at, sizeof(many) - at, "\"k%02d\": %d, ", i, i);
	snprintf(many + at, sizeof(many) - at, "\"k17\": 0}");
	CHECK_EQ(oms(many, t, &m, why), -EINVAL);
	CHECK(strstr(why, "names a member twice") != NULL);
	snprintf(many + at, sizeof(many) - at, "\"k99\": 0}");
	CHECK_EQ(oms(many, t, &m, why), -EINVAL);
	CHECK(strstr(why, "names a member twice") == NULL);
	CHECK_EQ(oms("{\"x\": [{\"c\": 1}, {\"c\": 1}]}", t, &m, why), -EINVAL);
	CHECK(strstr(why, "names a member twice") == NULL); /* the same name in two objects */
	CHECK_EQ(oms("", t, &m, why), -EINVAL);
	CHECK_EQ(
	    oms("{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\"}", t, &m, why),
	    -EINVAL);
	/* over the size limit: refused before parsing */
	char *big = calloc(1, VR_MANIFEST_MAX_BYTES + 2);

	memset(big, ' ', VR_MANIFEST_MAX_BYTES + 1);
	CHECK_EQ(vr_oms_verify(big, VR_MANIFEST_MAX_BYTES + 1, t, &m, why), -EFBIG);
	free(big);
out:
	vr_trust_free(t);
	free(pem);
	free(sig);
}

static void test_trust_faults(void)
{
	struct vr_trust *t = NULL;
	char why[VR_WHY_MAX];
	/* RSA and Ed25519 keys (made by openssl genpkey): not ECDSA */
	static const char rsa[] =
	    "-----BEGIN PUBLIC KEY-----\n"
	    "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAOygYVa6dtpzy8UBFUMRH3DG6jNs63mE\n"
	    "BeNn3j8FDFbdqMthv164ndkgrJtu5HmGDt7VHA5R/qs3iTNo6hmvGNMCAwEAAQ==\n"
	    "-----END PUBLIC KEY-----\n";
	static const char ed25519[] =
	    "-----BEGIN PUBLIC KEY-----\n"
	    "MCowBQYDK2VwAyEAJpchhYinQ9QC7/jc0r6XC3NKD6w0bFW1fTYXVo/UWpk=\n"
	    "-----END PUBLIC KEY-----\n";

	CHECK_EQ(vr_trust_from_pem(ed25519, strlen(ed25519), &t, why), -EINVAL);
	CHECK(strstr(why, "elliptic-curve (ECDSA)") != NULL);
	CHECK_EQ(vr_trust_from_pem("no key here", 11, &t, why), -EINVAL);
	CHECK_EQ(vr_trust_from_pem(rsa, strlen(rsa), &t, why), -EINVAL);
	CHECK(strstr(why, "elliptic") != NULL);
	CHECK_EQ(vr_trust_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n", 31, &t, why), -EINVAL);
	CHECK_EQ(vr_trust_load("/nonexistent/key.pem", &t, why), -ENOENT);
	/* a FIFO among the keys is refused at once, not waited on */
	char tmp[] = "/tmp/vr-trust-XXXXXX", fifo[64];

	CHECK(mkdtemp(tmp) != NULL);
	snprintf(fifo, sizeof(fifo), "%s/key.pem", tmp);
	CHECK_EQ(mkfifo(fifo, 0600), 0);
	alarm(10);
	CHECK_EQ(vr_trust_load(fifo, &t, why), -EINVAL);
	CHECK_EQ(vr_trust_load(tmp, &t, why), -EINVAL);
	alarm(0);
	unlink(fifo);
	rmdir(tmp);
	CHECK_EQ(vr_trust_load(VR_TEST_DATA "/oms", &t, why), 0);
	CHECK_EQ(vr_trust_count(t), 1);
	vr_trust_free(t);
	t = NULL;
	/* a point not on the curve: the reference key with one coordinate byte changed */
	size_t klen;
	char *pem = slurp(VR_TEST_DATA "/oms/signing-key-pub.pem", &klen);
	char *p = pem ? strstr(pem, "MHYw") : NULL;

	CHECK(p != NULL);
	if (p) {
		p[60] = p[60] == 'A' ? 'B' : 'A';
		CHECK_EQ(vr_trust_from_pem(pem, klen, &t, why), -EINVAL);
	}
	free(pem);
}

/* TEXT parsed by PARSE (LABEL in messages): its result must be WANT, its reason hold WHY_HAS. */
static struct vr_manifest *
parse_as(int (*parse)(const char *, size_t, struct vr_manifest **, char[VR_WHY_MAX]),
	 const char *label, const char *text, int want, const char *why_has)
{
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX] = "";
	int ret = parse(text, strlen(text), &m, why);

	CHECK_EQ(ret, want);
	if (why_has)
		CHECK(strstr(why, why_has) != NULL);
	if (ret != want || (why_has && !strstr(why, why_has)))
		fprintf(stderr, "%s %.60s: %d (%s)\n", label, text, ret, why);
	/* sha256sum and b3sum read through links: a listed link is checked through its target */
	if (m)
		CHECK(m->allow_symlinks);
	return m;
}

static struct vr_manifest *sums(const char *text, int want, const char *why_has)
{
	return parse_as(vr_sums_parse, "SHA256SUMS", text, want, why_has);
}

static void test_sums(void)
{
	struct vr_manifest *m;
	uint8_t d[VR_DIGEST_SIZE];

	/* a name no file here can have (a newline: it would forge a line of a report) */
	vr_manifest_free(sums("\\" DB "  new\\nline", -EINVAL, "control character"));
	vr_manifest_free(sums(DB "  bell\a", -EINVAL, "control character"));
	m = sums("# made by sha256sum\n\n" DA "  a\r\n" DB " *./sub/b\n\\" DA "  back\\\\slash\n"
		 "\\" DB "  new\\\\line",
		 0, NULL);
	CHECK(m && m->count == 4);
	if (m) {
		const struct vr_manifest_entry *e = vr_manifest_find(m, "sub/b");

		vr_unhex(DB, d, sizeof(d));
		CHECK(e && memcmp(e->digest, d, sizeof(d)) == 0);
		CHECK(vr_manifest_find(m, "back\\slash") != NULL);
		CHECK(vr_manifest_find(m, "new\\line") != NULL);
		CHECK(vr_manifest_find(m, "c") == NULL);
		CHECK(!vr_manifest_ignored(m, "c"));
		vr_manifest_free(m);
	}
	/* uppercase hex, as some tools write */
	m = sums("BC9A717DB6064A32CBE9EAE6FC40651DD6D36EF1757183F590EFF2B1765D7EBC  A\n", 0, NULL);
	vr_manifest_free(m);
	m = sums("# nothing listed\n", 0, NULL);
	CHECK(m && m->count == 0 && vr_manifest_find(m, "a") == NULL);
	vr_manifest_free(m);
	/* each malformed line names its number */
	vr_manifest_free(sums(DA "  a\n" DB "\n", -EINVAL, "line 2"));
	vr_manifest_free(sums(DA "  a\n\n" DB " b\n", -EINVAL, "line 3"));
	vr_manifest_free(sums("zz" DA "  a\n", -EINVAL, "line 1"));
	vr_manifest_free(sums(DA "  /etc/passwd\n", -EINVAL, "absolute"));
	vr_manifest_free(sums(DA "  ../up\n", -EINVAL, "'..'"));
	vr_manifest_free(sums(DA "  a/../b\n", -EINVAL, "'..'"));
	vr_manifest_free(sums(DA "  \n", -EINVAL, "line 1"));
	vr_manifest_free(sums("\\" DA "  bad\\escape\n", -EINVAL, "escape"));
	vr_manifest_free(sums(DA "  a\n" DB "  ./a\n", -EINVAL, "twice"));
	vr_manifest_free(sums("SHA256 (a) = " DA "\n", -EINVAL, "BSD"));
	/* truncated inside the digest */
	vr_manifest_free(sums(DA "  a\n"
				 "bc9a717db6",
			      -EINVAL, "line 2"));

	/* limits: line length, entries, size */
	char *line = malloc(VR_SUMS_LINE_MAX + 100);

	memcpy(line, DA "  ", 66);
	memset(line + 66, 'x', VR_SUMS_LINE_MAX);
	line[VR_SUMS_LINE_MAX + 66] = '\0';
	vr_manifest_free(sums(line, -EINVAL, "longer than"));
	free(line);
	size_t n = (size_t)(VR_MANIFEST_MAX_ENTRIES + 1) * 80;
	char *many = malloc(n + 1), *w = many;

	for (unsigned i = 0; i <= VR_MANIFEST_MAX_ENTRIES; i++)
		w += sprintf(w, DA "  f%u\n", i);
	vr_manifest_free(sums(many, -E2BIG, "more than"));
	free(many);
	char *big = malloc(VR_MANIFEST_MAX_BYTES + 2);
	struct vr_manifest *bm = NULL;
	char why[VR_WHY_MAX];

	memset(big, '#', VR_MANIFEST_MAX_BYTES + 1);
	CHECK_EQ(vr_sums_parse(big, VR_MANIFEST_MAX_BYTES + 1, &bm, why), -EFBIG);
	free(big);
	CHECK_EQ(vr_manifest_kind_of("SHA256SUMS"), VR_MANIFEST_SUMS);
	CHECK_EQ(vr_manifest_kind_of("model.sig"), VR_MANIFEST_OMS);
	CHECK_EQ(vr_manifest_kind_of("model.sig.seal"), 0);
}

static struct vr_manifest *b3sums(const char *text, int want, const char *why_has)
{
	struct vr_manifest *m = parse_as(vr_b3sums_parse, "checksums.blake3", text, want, why_has);

	if (m)
		CHECK_EQ(m->kind, VR_MANIFEST_B3SUMS);
	return m;
}

/* checksums.blake3: what b3sum writes and b3sum --check accepts, and nothing else. */
static void test_b3sums(void)
{
	struct vr_manifest *m;
	uint8_t d[VR_DIGEST_SIZE];
	char why[VR_WHY_MAX];

	/* b3sum a sub/b 'back\slash', the last line without its newline, a "./" dropped */
	m = b3sums(DA "  a\n" DB "  ./sub/b\n\\" DA "  back\\\\slash", 0, NULL);
	CHECK(m && m->count == 3);
	if (m) {
		const struct vr_manifest_entry *e = vr_manifest_find(m, "sub/b");

		vr_unhex(DB, d, sizeof(d));
		CHECK(e && memcmp(e->digest, d, sizeof(d)) == 0);
		CHECK(vr_manifest_find(m, "back\\slash") != NULL);
		vr_manifest_free(m);
	}
	m = b3sums("", 0, NULL);
	CHECK(m && m->count == 0);
	vr_manifest_free(m);
	/* what sha256sum's reader forgives and b3sum --check refuses: each names its line */
	vr_manifest_free(b3sums(DA "  a\n\n", -EINVAL, "line 2: an empty line"));
	vr_manifest_free(b3sums(DA "  a\n\n" DB "  b\n", -EINVAL, "line 2: an empty line"));
	vr_manifest_free(b3sums("# made by b3sum\n" DA "  a\n", -EINVAL, "line 1: not"));
	vr_manifest_free(b3sums(DA "  a\n" DB "  b\r\n", -EINVAL, "line 2: ends in a carriage"));
	vr_manifest_free(b3sums(DA " *a\n", -EINVAL, "line 1: not \"<64 lowercase"));
	vr_manifest_free(b3sums(DA " a\n", -EINVAL, "line 1: not"));
	vr_manifest_free(b3sums(DA "\ta\n", -EINVAL, "line 1: not"));
	vr_manifest_free(
	    b3sums("BC9A717DB6064A32CBE9EAE6FC40651DD6D36EF1757183F590EFF2B1765D7EBC  A\n", -EINVAL,
		   "line 1: not"));
	vr_manifest_free(b3sums(DA "  \n", -EINVAL, "line 1: not"));
	vr_manifest_free(b3sums(DA "  a\nbc9a717db6", -EINVAL, "line 2: not"));
	vr_manifest_free(b3sums("\\", -EINVAL, "line 1: not"));
	/* a third space begins the name, as b3sum --check reads it */
	m = b3sums(DA "  a\n" DB "   a\n", 0, NULL);
	CHECK(m && vr_manifest_find(m, " a") != NULL);
	vr_manifest_free(m);
	/* the rules of names SHA256SUMS has */
	vr_manifest_free(b3sums("\\" DA "  bad\\escape\n", -EINVAL, "line 1: a bad escape"));
	vr_manifest_free(b3sums("\\" DA "  new\\nline\n", -EINVAL, "control character"));
	vr_manifest_free(b3sums(DA "  /etc/passwd\n", -EINVAL, "absolute"));
	vr_manifest_free(
	    b3sums(DA "  a\n" DA "  ../up\n", -EINVAL, "line 2: the name is a '.' or '..'"));
	vr_manifest_free(b3sums(DA "  d/\n", -EINVAL, "a folder"));
	vr_manifest_free(b3sums(DA "  a\n" DB "  ./a\n", -EINVAL, "twice"));
	const char nul[] = DA "  a\0b\n";

	m = NULL;
	CHECK_EQ(vr_b3sums_parse(nul, sizeof(nul) - 1, &m, why), -EINVAL);
	CHECK(strstr(why, "line 1: a NUL byte") != NULL);
	char *line = malloc(VR_SUMS_LINE_MAX + 100);

	memcpy(line, DA "  ", 66);
	memset(line + 66, 'x', VR_SUMS_LINE_MAX);
	line[VR_SUMS_LINE_MAX + 66] = '\0';
	vr_manifest_free(b3sums(line, -EINVAL, "line 1: longer than"));
	free(line);
	char *big = calloc(1, VR_MANIFEST_MAX_BYTES + 2);

	CHECK_EQ(vr_b3sums_parse(big, VR_MANIFEST_MAX_BYTES + 1, &m, why), -EFBIG);
	free(big);
	CHECK_EQ(vr_manifest_kind_of("checksums.blake3"), VR_MANIFEST_B3SUMS);
	CHECK_EQ(vr_manifest_kind_of("CHECKSUMS.blake3"), 0);
	CHECK_STR(vr_manifest_kind_name(VR_MANIFEST_B3SUMS), "checksums.blake3");
	CHECK_STR(vr_manifest_kind_name(VR_MANIFEST_SUMS), "SHA256SUMS");
	CHECK_STR(vr_manifest_kind_name(VR_MANIFEST_OMS), "OMS");
	CHECK(vr_manifest_blake3(VR_MANIFEST_B3SUMS));
	CHECK(!vr_manifest_blake3(VR_MANIFEST_SUMS) && !vr_manifest_blake3(VR_MANIFEST_OMS));
}

int main(void)
{
	uint8_t raw[2 * VR_DIGEST_SIZE], d[VR_DIGEST_SIZE];

	vr_unhex(DA, raw, VR_DIGEST_SIZE);
	vr_unhex(DB, raw + VR_DIGEST_SIZE, VR_DIGEST_SIZE);
	vr_sha256(raw, sizeof(raw), d);
	vr_hex(d, sizeof(d), subject_ab);

	test_reference_vector();
	test_signed(256);
	test_signed(384);
	test_bundle_faults();
	test_trust_faults();
	test_sums();
	test_b3sums();
	return check_summary();
}
