/* test_manifest_oms11.c - OMS 1.1 parity: shards at every boundary, sha256 / blake2b / blake3,
 * the reference implementation's certificate-mode vector, and malformed shard statements.
 * Bundles are signed here with OpenSSL's EVP (the key-mode verifier is Nettle's); digests
 * come from OpenSSL (SHA-256, BLAKE2b) and from BLAKE3 checked against its official vectors. */
#include "blake3.h"
#include "check.h"
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#ifndef VR_TEST_DATA
#define VR_TEST_DATA "tests/data"
#endif
#define CERT_DIR VR_TEST_DATA "/oms/v1.1.0-certificate"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
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

/* ---- text: a growing string ---- */

struct str {
	char *p;
	size_t len, cap;
};

static void put(struct str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (s->len + (size_t)n + 1 > s->cap) {
		s->cap = (s->len + (size_t)n + 1) * 2;
		s->p = realloc(s->p, s->cap);
	}
	va_start(ap, fmt);
	vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

static char *b64(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* ---- digests and a signer, both OpenSSL's ---- */

static void digest(enum vr_hash h, const uint8_t *data, size_t len, uint8_t out[64])
{
	if (h == VR_HASH_BLAKE3) {
		struct vr_blake3 b;

		vr_blake3_init(&b);
		vr_blake3_update(&b, data, len);
		vr_blake3_final(&b, out, 32);
		return;
	}
	unsigned n = 0;

	EVP_Digest(data, len, out, &n, h == VR_HASH_SHA256 ? EVP_sha256() : EVP_blake2b512(), NULL);
}

static void hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static EVP_PKEY *signer;
static struct vr_trust *trust;

static void signer_init(void)
{
	char why[VR_WHY_MAX];
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long n;

	signer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(signer != NULL);
	PEM_write_bio_PUBKEY(bio, signer);
	n = BIO_get_mem_data(bio, &pem);
	CHECK_EQ(vr_trust_from_pem(pem, (size_t)n, &trust, why), 0);
	BIO_free(bio);
}

/* A bundle signing STATEMENT with the signer (ECDSA P-256, SHA-256 over DSSE's PAE). */
static char *sign_bundle(const char *statement)
{
	const char *type = "application/vnd.in-toto+json";
	struct str pae = {0}, out = {0};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[128];
	size_t slen = sizeof(sig);

	put(&pae, "DSSEv1 %zu %s %zu %s", strlen(type), type, strlen(statement), statement);
	CHECK(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, signer) == 1);
	CHECK(EVP_DigestSign(ctx, sig, &slen, (uint8_t *)pae.p, pae.len) == 1);
	EVP_MD_CTX_free(ctx);
	char *s64 = b64(sig, slen), *p64 = b64(statement, strlen(statement));

	put(&out,
	    "{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\", "
	    "\"verificationMaterial\": {\"publicKey\": {\"hint\": \"%s\"}, \"tlogEntries\": []}, "
	    "\"dsseEnvelope\": {\"payload\": \"%s\", \"payloadType\": \"%s\", "
	    "\"signatures\": [{\"sig\": \"%s\", \"keyid\": \"\"}]}}",
	    vr_trust_hint(trust, 0), p64, type, s64);
	free(s64);
	free(p64);
	free(pae.p);
	return out.p;
}

/* ---- statements as model_signing writes them ---- */

struct file {
	const char *name;
	const uint8_t *data;
	size_t len;
};

/*
 * The statement for FILES (in model_signing's resource order: by path, then
 * offset) serialized by H, by shards of SHARD bytes (0: by files). The
 * resources are RES (a JSON array's inside) when given, else made here.
 */
static char *statement(const struct file *files, size_t n, enum vr_hash h, uint64_t shard,
		       const char *res)
{
	struct str r = {0}, out = {0};
	EVP_MD_CTX *subj = EVP_MD_CTX_new();
	uint8_t d[64], s[32];
	char dx[129], sx[65];
	size_t dl = vr_hash_size(h);

	EVP_DigestInit_ex(subj, EVP_sha256(), NULL);
	put(&r, "%s", "");
	for (size_t i = 0; i < n && !res; i++) {
		for (uint64_t at = 0; shard ? at < files[i].len : at == 0;) {
			uint64_t end =
			    shard && files[i].len - at > shard ? at + shard : files[i].len;

			digest(h, files[i].data + at, (size_t)(end - at), d);
			hex(d, dl, dx);
			EVP_DigestUpdate(subj, d, dl);
			if (shard)
				put(&r,
				    "%s{\"algorithm\": \"%s-sharded-%" PRIu64 "\", \"digest\": "
				    "\"%s\", \"name\": \"%s:%" PRIu64 ":%" PRIu64 "\"}",
				    r.len ? ", " : "", vr_hash_name(h), shard, dx, files[i].name,
				    at, end);
			else
				put(&r,
				    "%s{\"algorithm\": \"%s\", \"digest\": \"%s\", \"name\": "
				    "\"%s\"}",
				    r.len ? ", " : "", vr_hash_name(h), dx, files[i].name);
			at = end;
			if (!shard)
				break;
		}
	}
	EVP_DigestFinal_ex(subj, s, NULL);
	EVP_MD_CTX_free(subj);
	hex(s, 32, sx);
	put(&out,
	    "{\"_type\": \"https://in-toto.io/Statement/v1\", \"subject\": [{\"name\": \"m\", "
	    "\"digest\": {\"sha256\": \"%s\"}}], \"predicateType\": "
	    "\"https://model_signing/signature/v1.0\", \"predicate\": {\"serialization\": "
	    "{\"method\": \"%s\", \"hash_type\": \"%s\", \"allow_symlinks\": false",
	    sx, shard ? "shards" : "files", vr_hash_name(h));
	if (shard)
		put(&out, ", \"shard_size\": %" PRIu64 ".0",
		    shard); /* as protobuf's Struct writes */
	put(&out, ", \"ignore_paths\": [\"skip\"]}, \"resources\": [%s]}}", res ? res : r.p);
	free(r.p);
	return out.p;
}

static int verify(const char *st, struct vr_manifest **m, char why[VR_WHY_MAX])
{
	char *b = sign_bundle(st);
	int ret = vr_oms_verify(b, strlen(b), trust, m, why);

	free(b);
	return ret;
}

/* ---- shards at every boundary, each hash ---- */

static uint8_t bytes[64];

/* Checks FILE's entry in M against its bytes, then every flipped byte and a size off by one. */
static void check_entry(const struct vr_manifest *m, const struct file *f)
{
	const struct vr_manifest_entry *e = vr_manifest_find(m, f->name);
	uint8_t copy[sizeof(bytes) + 1];
	char why[VR_WHY_MAX];

	if (m->shard_size && f->len == 0) {
		CHECK(e == NULL); /* model_signing cuts no shard from an empty file */
		return;
	}
	CHECK(e != NULL);
	if (!e)
		return;
	if (m->shard_size) {
		CHECK_EQ(e->nshards, (f->len + m->shard_size - 1) / m->shard_size);
		CHECK_EQ(e->shards[e->nshards - 1].end, f->len);
	}
	CHECK_EQ(vr_manifest_check_bytes(m, e, f->data, f->len, why), 0);
	memcpy(copy, f->data, f->len);
	for (size_t i = 0; i < f->len; i++) {
		char at[64];

		copy[i] ^= 0x01;
		CHECK_EQ(vr_manifest_check_bytes(m, e, copy, f->len, why), -EBADMSG);
		if (m->shard_size) {
			snprintf(at, sizeof(at), "shard %" PRIu64 ":",
				 i / m->shard_size * m->shard_size);
			CHECK(strstr(why, at) != NULL);
		}
		copy[i] ^= 0x01;
	}
	copy[f->len] = 0;
	CHECK_EQ(vr_manifest_check_bytes(m, e, copy, f->len + 1, why), -EBADMSG);
	if (f->len)
		CHECK_EQ(vr_manifest_check_bytes(m, e, copy, f->len - 1, why), -EBADMSG);
}

static void test_boundaries(void)
{
	static const size_t sizes[] = {0, 1, 3, 4, 5, 8, 9, 13, 64};
	static const enum vr_hash hashes[] = {VR_HASH_SHA256, VR_HASH_BLAKE2B, VR_HASH_BLAKE3};
	char why[VR_WHY_MAX];

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 37 + 11);
	for (size_t h = 0; h < 3; h++) {
		for (uint64_t shard = 0; shard <= 4; shard += 4) {
			for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
				struct file f[] = {{"d/w.bin", bytes, sizes[k]},
						   {"x", bytes + 3, 6}};
				struct vr_manifest *m = NULL;
				char *st = statement(f, 2, hashes[h], shard, NULL);

				CHECK_EQ(verify(st, &m, why), 0);
				if (m) {
					CHECK_EQ(m->hash, hashes[h]);
					CHECK_EQ(m->shard_size, shard);
					CHECK_EQ(vr_manifest_seal_comparable(m),
						 !shard && hashes[h] != VR_HASH_BLAKE2B);
					CHECK(vr_manifest_ignored(m, "skip/a"));
					check_entry(m, &f[0]);
					check_entry(m, &f[1]);
				}
				vr_manifest_free(m);
				free(st);
			}
		}
	}
}

/* model_signing lists resources by path as PurePosixPath sorts them ("a/b" before "a-b",
 * where strcmp has "a-b" first) and checks the subject in that order */
static void test_listed_order(void)
{
	struct file f[] = {{"a/b", bytes, 3}, {"a-b", bytes + 1, 3}};
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];
	char *st = statement(f, 2, VR_HASH_SHA256, 0, NULL);

	CHECK_EQ(verify(st, &m, why), 0);
	CHECK(m && m->count == 2 && vr_manifest_find(m, "a/b") && vr_manifest_find(m, "a-b"));
	vr_manifest_free(m);
	free(st);
}

#define D64 "a37010c994067764d86540bf479d93b4d0c3bb3955de7b61f951caf2fd0301b0"
#define SH(name, alg)                                                                              \
	"{\"algorithm\": \"" alg "\", \"digest\": \"" D64 "\", \"name\": \"" name "\"}"

/* malformed shard statements: each refused, with a reason naming what */
static void test_shard_refusals(void)
{
	static const struct {
		const char *res;
		int err;
		const char *why;
	} cases[] = {
	    {SH("w:0:4", "sha256-sharded-4") ", " SH("w:5:8", "sha256-sharded-4"), -EINVAL, "gap"},
	    {SH("w:0:4", "sha256-sharded-4") ", " SH("w:3:6", "sha256-sharded-4"), -EINVAL, "gap"},
	    {SH("w:0:4", "sha256-sharded-4") ", " SH("w:0:4", "sha256-sharded-4"), -EINVAL, "gap"},
	    {SH("w:4:8", "sha256-sharded-4"), -EINVAL, "gap"},
	    {SH("w:0:3", "sha256-sharded-4") ", " SH("w:3:7", "sha256-sharded-4"), -EINVAL,
	     "not the last"},
	    {SH("w:0:5", "sha256-sharded-4"), -EINVAL, "longer than shard_size"},
	    {SH("w:4:4", "sha256-sharded-4"), -EINVAL, "empty"},
	    {SH("w:4:2", "sha256-sharded-4"), -EINVAL, "backwards"},
	    {SH("w:00:4", "sha256-sharded-4"), -EINVAL, "decimal"},
	    {SH("w:+0:4", "sha256-sharded-4"), -EINVAL, "decimal"},
	    {SH("w:0:4a", "sha256-sharded-4"), -EINVAL, "decimal"},
	    {SH("w:0:", "sha256-sharded-4"), -EINVAL, "decimal"},
	    {SH("w:0:99999999999999999999", "sha256-sharded-4"), -EINVAL, "decimal"},
	    {SH("w:0", "sha256-sharded-4"), -EINVAL, "PATH:START:END"},
	    {SH("a:b:0:4", "sha256-sharded-4"), -EINVAL, "PATH:START:END"},
	    {SH("../w:0:4", "sha256-sharded-4"), -EINVAL, "the name is"},
	    {SH("w:0:4", "sha256"), -EOPNOTSUPP, "not the statement's hash"},
	    {SH("w:0:4", "sha256-sharded-8"), -EOPNOTSUPP, "not the statement's hash"},
	    {SH("w:0:4", "blake2b-sharded-4"), -EOPNOTSUPP, "not the statement's hash"},
	};
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *st = statement(NULL, 0, VR_HASH_SHA256, 4, cases[i].res);

		CHECK_EQ(verify(st, &m, why), cases[i].err);
		if (!strstr(why, cases[i].why))
			fprintf(stderr, "case %zu: %s\n", i, why);
		CHECK(strstr(why, cases[i].why) != NULL);
		vr_manifest_free(m);
		m = NULL;
		free(st);
	}
}

/* shard_size and hash_type as the statement states them */
static void test_serialization_refusals(void)
{
	static const struct {
		const char *from, *to;
		int err;
		const char *why;
	} cases[] = {
	    {"\"shard_size\": 4.0", "\"shard_size\": 0", -EINVAL, "shard_size"},
	    {"\"shard_size\": 4.0", "\"shard_size\": 4.5", -EINVAL, "shard_size"},
	    {"\"shard_size\": 4.0", "\"shard_size\": -4", -EINVAL, "shard_size"},
	    {"\"shard_size\": 4.0", "\"shard_size\": \"4\"", -EINVAL, "shard_size"},
	    {"\"shard_size\": 4.0", "\"shard_size\": 1e300", -EINVAL, "shard_size"},
	    {"\"shard_size\": 4.0", "\"shard_sizes\": 4", -EINVAL, "shard_size"},
	    {"\"hash_type\": \"sha256\"", "\"hash_type\": \"blake2\"", -EOPNOTSUPP, "blake2"},
	    {"\"hash_type\": \"sha256\"", "\"hash_type\": \"md5\"", -EOPNOTSUPP, "md5"},
	    {"\"shard_size\": 4.0", "\"shard_size\": 4", 0, ""},
	};
	struct file f[] = {{"w", bytes, 9}};
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *st = statement(f, 1, VR_HASH_SHA256, 4, NULL),
		     *at = strstr(st, cases[i].from);
		struct str e = {0};

		CHECK(at != NULL);
		put(&e, "%.*s%s%s", (int)(at - st), st, cases[i].to, at + strlen(cases[i].from));
		CHECK_EQ(verify(e.p, &m, why), cases[i].err);
		CHECK(strstr(why, cases[i].why) != NULL);
		vr_manifest_free(m);
		m = NULL;
		free(e.p);
		free(st);
	}
	/* a blake2b digest must be 128 hex digits; a sha256 one 64 */
	char *st = statement(NULL, 0, VR_HASH_BLAKE2B, 0, SH("w", "blake2b"));

	CHECK_EQ(verify(st, &m, why), -EINVAL);
	CHECK(strstr(why, "128 lowercase hex") != NULL);
	free(st);
}

/* ---- certificate mode: model_signing 1.1.0's own certificate-signed model ---- */

static struct vr_trust *load_trust(const char *path)
{
	struct vr_trust *t = NULL;
	char why[VR_WHY_MAX];

	CHECK_EQ(vr_trust_load(path, &t, why), 0);
	return t;
}

static void test_cert_vector(void)
{
	struct vr_trust *roots = load_trust(VR_TEST_DATA "/oms/certificate-ca-cert.pem");
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX];
	size_t len = 0;
	char *sig = slurp(CERT_DIR "/model.sig", &len);

	CHECK(sig != NULL && roots != NULL);
	if (!sig || !roots)
		return;
	CHECK_EQ(vr_trust_roots(roots), 1);
	CHECK_EQ(vr_trust_count(roots), 0);
	CHECK_EQ(vr_oms_verify(sig, len, roots, &m, why), 0);
	if (m) {
		CHECK(m->cert_signed);
		CHECK_EQ(m->count, 2);
		CHECK(vr_manifest_ignored(m, "ignore-me"));
		for (size_t i = 0; i < m->count; i++) {
			char path[256];
			size_t flen = 0;
			uint8_t *data;

			snprintf(path, sizeof(path), CERT_DIR "/%s", m->entries[i].name);
			data = (uint8_t *)slurp(path, &flen);
			CHECK(data != NULL);
			CHECK_EQ(vr_manifest_check_bytes(m, &m->entries[i], data, flen, why), 0);
			free(data);
		}
		vr_manifest_free(m);
		m = NULL;
	}
	/* keys only: no root to chain to */
	CHECK_EQ(vr_oms_verify(sig, len, trust, &m, why), -EKEYREJECTED);
	CHECK(strstr(why, "no root certificates") != NULL);
	CHECK_EQ(vr_oms_verify(sig, len, NULL, &m, why), -EKEYREJECTED);
	/* each byte of the signature flipped in its base64: refused */
	char *at = strstr(sig, "\"sig\":\"");

	CHECK(at != NULL);
	for (char *p = at ? at + 7 : NULL; p && *p != '"' && *p != '='; p += 7) {
		char keep = *p;

		*p = *p == 'A' ? 'B' : 'A';
		CHECK(vr_oms_verify(sig, len, roots, &m, why) != 0);
		*p = keep;
	}
	/* a chain of only the leaf: the intermediate is missing */
	at = strstr(sig, "\"},{\"rawBytes\":");
	CHECK(at != NULL);
	if (at) {
		char *end = strchr(at + 3, '}');
		struct str e = {0};

		put(&e, "%.*s%s", (int)(at + 2 - sig), sig, end + 1);
		CHECK_EQ(vr_oms_verify(e.p, e.len, roots, &m, why), -EKEYREJECTED);
		CHECK(strstr(why, "certificate not trusted") != NULL);
		free(e.p);
	}
	/* the chain's shapes: the leaf alone as "certificate" (no intermediate: refused), eleven
	 * certificates, a certificate that is not DER, both a key and a chain */
	char *chain = strstr(sig, "\"x509CertificateChain\":{\"certificates\":[");
	char *leaf_end = chain ? strstr(chain, "\"},{") : NULL;
	char *chain_end = chain ? strstr(chain, "]}") : NULL;

	CHECK(chain && leaf_end && chain_end);
	if (chain && leaf_end && chain_end) {
		static const struct {
			const char *what;
			int err;
			const char *why;
		} shapes[] = {{"one", -EKEYREJECTED, "unable to get local issuer"},
			      {"eleven", -EINVAL, "holds 11 certificates"},
			      {"none", -EINVAL, "holds 0 certificates"},
			      {"notder", -EINVAL, "is not base64 X.509 DER"},
			      {"both", -EINVAL, "more than one of publicKey"}};
		const char *head = chain + strlen("\"x509CertificateChain\":{\"certificates\":[");
		int leaf_len = (int)(leaf_end + 2 - head);

		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
			struct str e = {0};
			const char *w = shapes[i].what;

			put(&e, "%.*s", (int)(chain - sig), sig);
			if (strcmp(w, "one") == 0)
				put(&e, "\"certificate\":%.*s", leaf_len, head);
			else if (strcmp(w, "both") == 0)
				put(&e, "\"publicKey\":{\"hint\":\"ab\"},%.*s",
				    (int)(chain_end + 2 - chain), chain);
			else
				put(&e, "\"x509CertificateChain\":{\"certificates\":[");
			for (int k = 0; strcmp(w, "eleven") == 0 && k < 11; k++)
				put(&e, "%s%.*s", k ? "," : "", leaf_len, head);
			if (strcmp(w, "notder") == 0)
				put(&e, "{\"rawBytes\":\"AAAA\"}");
			if (strcmp(w, "one") != 0 && strcmp(w, "both") != 0)
				put(&e, "]}");
			put(&e, "%s", chain_end + 2);
			CHECK_EQ(vr_oms_verify(e.p, e.len, roots, &m, why), shapes[i].err);
			if (!strstr(why, shapes[i].why))
				fprintf(stderr, "%s: %s\n", w, why);
			CHECK(strstr(why, shapes[i].why) != NULL);
			vr_manifest_free(m);
			m = NULL;
			free(e.p);
		}
	}
	/* the leaf as a trust= root: refused, for a root must be self-signed */
	char *raw = strstr(sig, "\"rawBytes\":\"");
	struct str pem = {0};
	struct vr_trust *bad = NULL;

	CHECK(raw != NULL);
	if (raw) {
		raw += 12;
		put(&pem, "-----BEGIN CERTIFICATE-----\n%.*s\n-----END CERTIFICATE-----\n",
		    (int)(strchr(raw, '"') - raw), raw);
		CHECK_EQ(vr_trust_from_pem(pem.p, pem.len, &bad, why), -EINVAL);
		CHECK(strstr(why, "not a self-signed CA") != NULL);
		free(pem.p);
	}
	free(sig);
	vr_trust_free(roots);
}

int main(void)
{
	signer_init();
	test_boundaries();
	test_listed_order();
	test_shard_refusals();
	test_serialization_refusals();
	test_cert_vector();
	vr_trust_free(trust);
	EVP_PKEY_free(signer);
	return check_summary();
}
