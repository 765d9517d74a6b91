/* test_seal.c - seal encoding, signing and strict parsing: known answers and properties. */
#include "check.h"
#include "rng.h"
#include "seal.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <nettle/sha2.h>

static struct vr_keyring *keys;

static void vector_seal(struct vr_seal *s)
{
	memset(s, 0, sizeof(*s));
	s->version = 1;
	strcpy(s->path, "llama/model.gguf");
	s->size = 5;
	vr_sha256("hello", 5, s->sha256);
	memset(s->fsverity, 0xab, 32);
	strcpy(s->device.backend, "mock");
	s->device.index = 0;
	strcpy(s->device.name, "mock device (host memory, not a GPU)");
	strcpy(s->device.uuid, "MOCK-00000000-0000-0000-0000-000000000000");
	strcpy(s->sealed_at, "2026-11-26T13:21:37Z");
}

/* The vector of docs/seal-format.md, from tools/dev/seal-reference.py (Python hashlib/hmac). */
static void test_known_answer(void)
{
	struct vr_seal s;
	uint8_t canon[8192], h[32];
	size_t len;
	char hex[65];

	vector_seal(&s);
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_STR(s.key_id, "0a974af5507617ff");
	CHECK_EQ(vr_seal_canonical(&s, canon, sizeof(canon), &len), 0);
	vr_sha256(canon, len, h);
	vr_hex(h, 32, hex);
	CHECK_STR(hex, "1d52420e4537299be08078d3b23fc7991c52d79727d54f490785b8efdf1962d8");
	vr_hex(s.signature, 32, hex);
	CHECK_STR(hex, "8d8ac985abd2315c30958d6311f00e1d026f45b42f5dd6bde9e17d3c94a0738e");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(vr_seal_canonical(&s, canon, 10, &len), -ENOSPC);
}

/* The version-2 vector: the same file, checked against the OMS reference vector's signature. */
static void vector_seal_v2(struct vr_seal *s)
{
	vector_seal(s);
	s->version = 2;
	strcpy(s->expected.kind, "oms");
	strcpy(s->expected.source, "llama/model.sig");
	strcpy(s->expected.key_hint,
	       "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e");
	vr_unhex("92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4",
		 s->expected.subject, 32);
}

static void test_known_answer_v2(void)
{
	struct vr_seal s, back;
	uint8_t canon[16384], h[32];
	size_t len;
	char hex[65], *json;

	vector_seal_v2(&s);
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_EQ(s.version, 2);
	CHECK_EQ(vr_seal_canonical(&s, canon, sizeof(canon), &len), 0);
	vr_sha256(canon, len, h);
	vr_hex(h, 32, hex);
	CHECK_STR(hex, "5f9ab14cefebd7d220bbc9589c805fa7a1e958714b4e885e052198ba2d4f7578");
	vr_hex(s.signature, 32, hex);
	CHECK_STR(hex, "7336bc8f0ac8dc38f3f8e62b9f29e1ffa58458c43dd2aa53ac9eb89d4f011358");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	CHECK(strstr(json, "\"subject\":\t\"sha256:92745110") != NULL);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, NULL), 0);
	CHECK_MEM(&back, &s, sizeof(s));
	free(json);
	/* a version-2 seal checked against nothing says so: "expected": null */
	vector_seal(&s);
	s.version = 0;
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_EQ(s.version, 2);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	CHECK(strstr(json, "\"expected\":\tnull") != NULL);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, NULL), 0);
	CHECK_MEM(&back, &s, sizeof(s));
	free(json);
	/* sha256=off: "sha256": null, signed as an empty value, round trip; version 1 cannot */
	vector_seal(&s);
	s.version = 2;
	s.no_sha256 = true;
	memset(s.sha256, 0, sizeof(s.sha256));
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	CHECK(strstr(json, "\"sha256\":\tnull") != NULL);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, NULL), 0);
	CHECK_MEM(&back, &s, sizeof(s));
	CHECK_EQ(vr_seal_verify(&back, keys), 0);
	back.no_sha256 = false; /* claiming the all-zero digest instead: refused */
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	free(json);
	back = s;
	back.version = 1;
	CHECK_EQ(vr_seal_verify(&back, keys), -EINVAL);
	/* the expected fields are signed: moving the source or the kind breaks the seal */
	vector_seal_v2(&s);
	vr_seal_sign(&s, keys);
	back = s;
	strcpy(back.expected.source, "other/model.sig");
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	back = s;
	back.expected.subject[5] ^= 1;
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	back = s;
	memset(&back.expected, 0, sizeof(back.expected));
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	/* a version-1 seal cannot carry them */
	back = s;
	back.version = 1;
	CHECK_EQ(vr_seal_verify(&back, keys), -EINVAL);
}

/* One edit of a seal's JSON: the first FROM replaced by TO. */
struct seal_edit {
	const char *from, *to;
};

/* Each of the N EDITS of seal S's JSON must be refused (-EINVAL) with a reason; LABEL names
 * the set in a failure's message. */
static void refuse_edits(const struct vr_seal *s, const struct seal_edit *edits, size_t n,
			 const char *label)
{
	struct vr_seal back;
	const char *why;
	char *json, buf[16384];

	if (vr_seal_to_json(s, &json) != 0) {
		CHECK(!"the seal prints");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *at = strstr(json, edits[i].from);

		CHECK(at != NULL);
		if (!at)
			continue;
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - json), json, edits[i].to,
			 at + strlen(edits[i].from));
		why = NULL;
		int r = vr_seal_parse(buf, strlen(buf), &back, &why);

		if (r != -EINVAL)
			fprintf(stderr, "%s edit %zu accepted: %s\n", label, i, buf);
		CHECK_EQ(r, -EINVAL);
		CHECK(why != NULL && strlen(why) > 5);
	}
	free(json);
}

/* The version-3 vector: the same file, listed in a checksums.blake3 (its BLAKE3 is b3sum's). */
static void vector_seal_v3(struct vr_seal *s)
{
	vector_seal(s);
	s->version = 3;
	strcpy(s->expected.kind, "blake3sums");
	strcpy(s->expected.source, "llama/checksums.blake3");
	s->has_blake3 = true;
	vr_unhex("ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f", s->blake3, 32);
}

static void test_known_answer_v3(void)
{
	struct vr_seal s, back;
	uint8_t canon[16384], h[32];
	size_t len;
	char hex[65], *json;

	vector_seal_v3(&s);
	s.version = 2; /* signing makes it 3: it has a BLAKE3 */
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_EQ(s.version, 3);
	CHECK_EQ(vr_seal_canonical(&s, canon, sizeof(canon), &len), 0);
	CHECK_EQ(len, 716);
	vr_sha256(canon, len, h);
	vr_hex(h, 32, hex);
	CHECK_STR(hex, "a9dfe79d97b3da9a5bc28113af22d987d4df045d419effc5e202337487895810");
	vr_hex(s.signature, 32, hex);
	CHECK_STR(hex, "d7100944faae572af1710b9ed251bd6378c9fbde8144d9d1a437bc83ffdcd6af");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	CHECK(strstr(json, "\"blake3\":\t\"ea8f163d") != NULL);
	CHECK(strstr(json, "\"kind\":\t\"blake3sums\"") != NULL);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, NULL), 0);
	CHECK_MEM(&back, &s, sizeof(s));
	free(json);
	/* the BLAKE3 is signed; without it the seal is version 2's and its kind refused */
	back = s;
	back.blake3[0] ^= 1;
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	back = s;
	back.has_blake3 = false;
	CHECK_EQ(vr_seal_verify(&back, keys), -EINVAL);
	back.version = 2;
	memset(back.blake3, 0, sizeof(back.blake3));
	CHECK_EQ(vr_seal_verify(&back, keys), -EINVAL); /* blake3sums needs the digest */
	strcpy(back.expected.kind, "sha256sums");
	CHECK_EQ(vr_seal_verify(&back, keys), -EBADMSG);
	back = s;
	back.version = 2; /* a version-2 seal cannot claim one */
	CHECK_EQ(vr_seal_verify(&back, keys), -EINVAL);
	/* any expected kind, or none, and sha256=off, go with a BLAKE3 */
	vector_seal_v3(&s);
	memset(&s.expected, 0, sizeof(s.expected));
	s.no_sha256 = true;
	memset(s.sha256, 0, sizeof(s.sha256));
	CHECK_EQ(vr_seal_sign(&s, keys), 0);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, NULL), 0);
	CHECK_MEM(&back, &s, sizeof(s));
	CHECK_EQ(vr_seal_verify(&back, keys), 0);
	free(json);
}

/* Version 3's "blake3": wrong, missing, or in another version's seal, refused with a reason. */
static void test_strict_parse_v3(void)
{
	static const struct seal_edit edits[] = {
	    {"\"blake3\":\t\"ea", "\"blake3\": \"EA"},
	    {"\"blake3\":\t\"ea", "\"blake3\": \"0ea"},
	    {"\"blake3\":\t\"ea", "\"blake3\": null, \"x\": \"ea"},
	    {"\"blake3\":\t\"ea", "\"blake4\": \"ea"},
	    {"\"blake3\":\t\"ea", "\"blake3\": 1, \"x\": \"ea"},
	    {"\"version\":\t3", "\"version\": 2"},
	    {"\"version\":\t3", "\"version\": 4"},
	    {"\"kind\":\t\"blake3sums\"", "\"kind\": \"blake3\""},
	};
	struct vr_seal s;

	vector_seal_v3(&s);
	vr_seal_sign(&s, keys);
	refuse_edits(&s, edits, sizeof(edits) / sizeof(edits[0]), "v3");
}

static void random_seal(struct vr_seal *s)
{
	static const char *const names[] = {"a",     "llama", "x y", "\xc3\xa9t\xc3\xa9",
					    "w.bin", "d-1"};
	int depth = (int)(rng() % 4) + 1;

	vector_seal(s);
	/* whole fields cleared, so the struct compares equal after a round trip */
	memset(s->path, 0, sizeof(s->path));
	memset(s->device.uuid, 0, sizeof(s->device.uuid));
	for (int i = 0; i < depth; i++) {
		if (i)
			strcat(s->path, "/");
		strcat(s->path, names[rng() % 6]);
	}
	s->size = rng() % VR_SIZE_MAX_JSON;
	for (int i = 0; i < 32; i++) {
		s->sha256[i] = (uint8_t)rng();
		s->fsverity[i] = (uint8_t)rng();
	}
	s->device.index = (int)(rng() % 8);
	snprintf(s->device.uuid, sizeof(s->device.uuid), "GPU-%08x-1111-2222-3333-%012llx",
		 (unsigned)rng(), (unsigned long long)(rng() & 0xffffffffffffULL));
	strcpy(s->device.backend, rng() % 2 ? "cuda" : "mock");
	/* version 1, or 2 checked against nothing, a SHA256SUMS or a signature */
	switch (rng() % 4) {
	case 0:
		break;
	case 1:
		s->version = 2;
		break;
	case 2:
		s->version = 2;
		strcpy(s->expected.kind, "sha256sums");
		snprintf(s->expected.source, sizeof(s->expected.source), "%s/SHA256SUMS",
			 names[rng() % 6]);
		break;
	case 3:
		s->version = 2;
		strcpy(s->expected.kind, "oms");
		strcpy(s->expected.source, "m/model.sig");
		for (int i = 0; i < 32; i++) {
			s->expected.subject[i] = (uint8_t)rng();
			snprintf(s->expected.key_hint + 2 * i, 3, "%02x", (unsigned)(rng() & 0xff));
		}
		break;
	}
}

/* Properties over 1000 random seals: sign->verify accepts; JSON round trip is the
 * identity; any flipped bit of a signed field or of the signature is refused. */
static void prop_seals(uint64_t seed)
{
	struct vr_seal *s = malloc(sizeof(*s)), *back = malloc(sizeof(*back)),
		       *t = malloc(sizeof(*t));
	int bad = 0;

	rng_state = seed | 1;
	for (int iter = 0; iter < 1000 && !bad; iter++) {
		char *json;

		random_seal(s);
		if (vr_seal_sign(s, keys) || vr_seal_verify(s, keys)) {
			fprintf(stderr, "seed %llu iter %d: sign/verify failed\n",
				(unsigned long long)seed, iter);
			bad = 1;
			break;
		}
		if (vr_seal_to_json(s, &json) || vr_seal_parse(json, strlen(json), back, NULL) ||
		    memcmp(s, back, sizeof(*s)) != 0) {
			fprintf(stderr, "seed %llu iter %d: JSON round trip differs\n",
				(unsigned long long)seed, iter);
			bad = 1;
		}
		free(json);
		/* flip one bit in a signed region: digests, size, index, strings, signature */
		*t = *s;
		switch (rng() % (s->expected.kind[0] ? 11 : 9)) {
		case 0:
			t->sha256[rng() % 32] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 1:
			t->fsverity[rng() % 32] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 2:
			t->size ^= 1ULL << (rng() % 53);
			break;
		case 3:
			t->device.index ^= 1 << (rng() % 15);
			break;
		case 4:
			t->signature[rng() % 32] ^= (uint8_t)(1u << (rng() % 8));
			break;
		case 5:
			t->path[0] ^= 0x01;
			break; /* 'a'->'`', 'l'->'m', ... stay valid */
		case 6:
			t->sealed_at[3] = t->sealed_at[3] == '6' ? '7' : '6';
			break;
		case 7:
			t->device.uuid[4] ^= 0x01;
			break;
		case 8:
			t->device.name[0] ^= 0x01;
			break;
		case 9:
			t->expected.source[0] ^= 0x01;
			break;
		case 10:
			strcpy(t->expected.kind,
			       strcmp(t->expected.kind, "oms") ? "oms" : "sha256sums");
			break;
		}
		int r = vr_seal_verify(t, keys);

		if (r != -EBADMSG && r != -EINVAL) {
			fprintf(stderr, "seed %llu iter %d: tampered seal accepted (%d)\n",
				(unsigned long long)seed, iter, r);
			bad = 1;
		}
		/* key_id flips are refused too */
		*t = *s;
		t->key_id[rng() % 16] = t->key_id[0] == '0' ? '1' : '0';
		if (vr_seal_verify(t, keys) == 0 && memcmp(t->key_id, s->key_id, 16) != 0)
			bad = 1;
	}
	CHECK(!bad);
	free(s);
	free(back);
	free(t);
}

/* Every bit of a seal's JSON text: a flip must make it unparsable or unverifiable,
 * except flips that only change insignificant whitespace. */
static void test_json_bitflips(void)
{
	struct vr_seal s, back;
	char *json;
	int accepted = 0;

	vector_seal(&s);
	vr_seal_sign(&s, keys);
	CHECK_EQ(vr_seal_to_json(&s, &json), 0);
	size_t n = strlen(json);

	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			json[i] ^= (char)(1 << b);
			if (vr_seal_parse(json, n, &back, NULL) == 0 &&
			    vr_seal_verify(&back, keys) == 0 && memcmp(&back, &s, sizeof(s)) != 0)
				accepted++;
			json[i] ^= (char)(1 << b);
		}
	CHECK_EQ(accepted, 0);
	free(json);
}

static void test_strict_parse(void)
{
	struct vr_seal s, back;
	const char *why = NULL;
	char *json, buf[8192];

	vector_seal(&s);
	vr_seal_sign(&s, keys);
	vr_seal_to_json(&s, &json);
	CHECK_EQ(vr_seal_parse(json, strlen(json), &back, &why), 0);

	struct {
		const char *from, *to;
	} edits[] = {
	    {"\"version\":\t1", "\"version\": 2"},
	    {"\"version\":\t1", "\"version\": \"1\""},
	    {"\"size\":\t5", "\"size\": -5"},
	    {"\"size\":\t5", "\"size\": 5.5"},
	    {"\"size\":\t5", "\"size\": 1e300"},
	    {"\"alg\":\t\"HMAC-SHA256\"", "\"alg\": \"none\""},
	    {"\"sha256\":\t\"2c", "\"sha256\": \"2C"},
	    {"\"sha256\":\t\"2c", "\"sha256\": \"2"},
	    {"\"fsverity\":\t\"sha256:", "\"fsverity\": \"sha512:"},
	    {"\"path\":\t\"llama/model.gguf\"", "\"path\": \"/llama/model.gguf\""},
	    {"\"path\":\t\"llama/model.gguf\"", "\"path\": \"llama/../x\""},
	    {"\"path\":\t\"llama/model.gguf\"", "\"path\": 7"},
	    {"\"index\":\t0", "\"index\": 0, \"extra\": 1"},
	    {"\"version\":\t1", "\"version\": 1, \"version\": 1"},
	    {"\"version\":\t1", "\"version\": 1, \"comment\": \"x\""},
	    {"\"sealed_at\":\t\"2026-11-26T13:21:37Z\"", "\"sealed_at\": \"yesterday\""},
	    {"\"key_id\":\t\"", "\"key_id\": \"x"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const char *at = strstr(json, edits[i].from);

		CHECK(at != NULL);
		if (!at)
			continue;
		size_t pre = (size_t)(at - json);

		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, json, edits[i].to,
			 at + strlen(edits[i].from));
		why = NULL;
		int r = vr_seal_parse(buf, strlen(buf), &back, &why);

		if (r != -EINVAL)
			fprintf(stderr, "edit %zu accepted: %s\n", i, buf);
		CHECK_EQ(r, -EINVAL);
		CHECK(why != NULL && strlen(why) > 5);
	}
	/* a path below the root may hold the root's generated names (issue 21) */
	{
		const char *at = strstr(json, "\"llama/model.gguf\"");

		CHECK(at != NULL);
		if (at) {
			snprintf(buf, sizeof(buf), "%.*s\"metrics/status\"%s", (int)(at - json),
				 json, at + strlen("\"llama/model.gguf\""));
			CHECK_EQ(vr_seal_parse(buf, strlen(buf), &back, &why), 0);
			CHECK_STR(back.path, "metrics/status");
		}
	}
	CHECK_EQ(vr_seal_parse("[]", 2, &back, &why), -EINVAL);
	CHECK_EQ(vr_seal_parse("{", 1, &back, &why), -EINVAL);
	CHECK_EQ(vr_seal_parse("", 0, &back, &why), -EINVAL);
	snprintf(buf, sizeof(buf), "%s x", json);
	CHECK_EQ(vr_seal_parse(buf, strlen(buf), &back, &why), -EINVAL);
	char *big = malloc(VR_SEAL_JSON_MAX + 2);

	memset(big, ' ', VR_SEAL_JSON_MAX + 1);
	memcpy(big, json, strlen(json));
	CHECK_EQ(vr_seal_parse(big, VR_SEAL_JSON_MAX + 1, &back, &why), -EINVAL);
	free(big);
	free(json);
}

/* Version 2's "expected": each field wrong, missing or extra is refused with a reason. */
static void test_strict_parse_v2(void)
{
	static const struct seal_edit edits[] = {
	    {"\"kind\":\t\"oms\"", "\"kind\": \"md5\""},
	    {"\"kind\":\t\"oms\"", "\"kind\": \"sha256sums\""},
	    {"\"kind\":\t\"oms\"", "\"kind\": 1"},
	    {"\"source\":\t\"llama/model.sig\"", "\"source\": \"/abs\""},
	    {"\"source\":\t\"llama/model.sig\"", "\"source\": \"\""},
	    {"\"key_hint\":\t\"e8", "\"key_hint\": \"E8"},
	    {"\"subject\":\t\"sha256:", "\"subject\": \"sha512:"},
	    {"\"subject\":\t\"sha256:", "\"extra\": 1, \"subject\": \"sha256:"},
	    {"\"version\":\t2", "\"version\": 1"},
	    {"\"version\":\t2", "\"version\": 3"},
	    {"\"expected\":\t{", "\"expected\": [], \"x\": {"},
	};
	struct vr_seal s;

	vector_seal_v2(&s);
	vr_seal_sign(&s, keys);
	refuse_edits(&s, edits, sizeof(edits) / sizeof(edits[0]), "v2");
}

/* A seal made for one device does not verify as another's, nor under another secret. */
static void test_device_binding(void)
{
	struct vr_keyring *other;
	uint8_t secret2[32] = {1};
	struct vr_seal s, t;

	vector_seal(&s);
	vr_seal_sign(&s, keys);
	t = s;
	strcpy(t.device.uuid, "GPU-00000000-0000-0000-0000-000000000001");
	CHECK_EQ(vr_seal_verify(&t, keys), -EBADMSG);
	CHECK_EQ(vr_keyring_from_bytes(secret2, sizeof(secret2), &other), 0);
	CHECK_EQ(vr_seal_verify(&s, other), -EBADMSG);
	vr_keyring_free(other);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
	uint8_t master[32];

	printf("seed %llu (rerun with: %s %llu)\n", (unsigned long long)seed, argv[0],
	       (unsigned long long)seed);
	for (int i = 0; i < 32; i++)
		master[i] = (uint8_t)i;
	if (vr_keyring_from_bytes(master, sizeof(master), &keys) != 0)
		return 1;
	test_known_answer();
	test_known_answer_v2();
	test_strict_parse();
	test_strict_parse_v2();
	test_known_answer_v3();
	test_strict_parse_v3();
	test_json_bitflips();
	test_device_binding();
	prop_seals(seed);
	vr_keyring_free(keys);
	return check_summary();
}
