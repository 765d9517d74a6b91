/* seal.c - signed seals: the canonical signed encoding, JSON form and strict parser. */
#include "seal.h"
#include "json.h"
#include "name.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <nettle/memops.h>

#define FSV_PREFIX "sha256:"

void vr_seal_now(char out[32])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool all_chars(const char *s, const char *allowed, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return false;
	return strspn(s, allowed) == n;
}

static bool digits_in(const char *p, int n, int lo, int hi)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	return v >= lo && v <= hi;
}

static bool valid_time(const char *t)
{
	/* 2026-11-26T13:21:37Z */
	return strlen(t) == 20 && digits_in(t, 4, 1970, 9999) && t[4] == '-' &&
	       digits_in(t + 5, 2, 1, 12) && t[7] == '-' && digits_in(t + 8, 2, 1, 31) &&
	       t[10] == 'T' && digits_in(t + 11, 2, 0, 23) && t[13] == ':' &&
	       digits_in(t + 14, 2, 0, 59) && t[16] == ':' && digits_in(t + 17, 2, 0, 60) &&
	       t[19] == 'Z';
}

static bool valid_path(const char *path)
{
	size_t len = strlen(path);
	const char *p = path;

	if (len == 0 || len >= VR_SEAL_PATH_MAX)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (vr_name_syntax(p, n) != 0) /* where it may be is the tree's to say */
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

#define LOWER_ALNUM "abcdefghijklmnopqrstuvwxyz0123456789_"
#define UUID_CHARS  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
#define HEX_CHARS   "0123456789abcdef"

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Checks the expected-digest fields against the seal's version; returns NULL or why. */
static const char *check_expected(const struct vr_seal *s)
{
	const struct vr_seal_expected *e = &s->expected;
	bool oms = strcmp(e->kind, "oms") == 0;

	if (strcmp(e->kind, "blake3sums") == 0 && !s->has_blake3)
		return "expected.kind blake3sums without a blake3 digest (version 3)";
	if (s->version == 1 || e->kind[0] == '\0')
		return e->kind[0] || e->source[0] || e->key_hint[0] ||
			       !all_zero(e->subject, sizeof(e->subject))
			   ? "expected fields without a kind (or in a version-1 seal)"
			   : NULL;
	if (!oms && strcmp(e->kind, "sha256sums") != 0 && strcmp(e->kind, "blake3sums") != 0)
		return "expected.kind is not sha256sums, blake3sums or oms";
	if (!valid_path(e->source))
		return "expected.source is not a valid relative path";
	if (oms && !all_chars(e->key_hint, HEX_CHARS, 64, 64))
		return "expected.key_hint is not 64 lowercase hex digits";
	if (!oms && (e->key_hint[0] || !all_zero(e->subject, sizeof(e->subject))))
		return "expected.key_hint and subject belong to oms only";
	return NULL;
}

/* Checks every field but the signature; returns NULL or why it is bad. */
static const char *check_fields(const struct vr_seal *s)
{
	if (s->version < 1 || s->version > 3)
		return "unsupported seal version";
	if (s->has_blake3 != (s->version == 3) || (!s->has_blake3 && !all_zero(s->blake3, 32)))
		return "a blake3 digest is what makes a seal version 3, and version 3 has one";
	if (s->no_sha256 && (s->version == 1 || !all_zero(s->sha256, sizeof(s->sha256))))
		return "a seal without sha256 is version 2 or 3, with the digest all zero";
	if (!valid_path(s->path))
		return "path is not a valid relative path";
	if (s->size > VR_SIZE_MAX_JSON)
		return "size out of range";
	if (!all_chars(s->device.backend, LOWER_ALNUM, 1, sizeof(s->device.backend) - 1))
		return "device.backend is not a short lowercase word";
	if (s->device.index < 0 || s->device.index > 65535)
		return "device.index out of range";
	for (const char *c = s->device.name; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return "device.name is not printable ASCII";
	if (strlen(s->device.name) == 0)
		return "device.name is empty";
	if (!all_chars(s->device.uuid, UUID_CHARS, 1, sizeof(s->device.uuid) - 1))
		return "device.uuid is not letters, digits and dashes";
	if (!valid_time(s->sealed_at))
		return "sealed_at is not an RFC 3339 UTC time like 2026-11-26T13:21:37Z";
	if (!all_chars(s->key_id, HEX_CHARS, VR_KEY_ID_HEX, VR_KEY_ID_HEX))
		return "key_id is not 16 lowercase hex digits";
	if (strcmp(s->alg, VR_SEAL_ALG) != 0)
		return "alg is not HMAC-SHA256";
	return check_expected(s);
}

struct canon {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
};

static void put_field(struct canon *c, const char *name, const void *val, size_t vlen)
{
	size_t nlen = strlen(name) + 1;

	if (c->overflow || c->cap - c->len < nlen + 8 + vlen) {
		c->overflow = true;
		return;
	}
	memcpy(c->buf + c->len, name, nlen);
	c->len += nlen;
	for (int i = 7; i >= 0; i--)
		c->buf[c->len++] = (uint8_t)((uint64_t)vlen >> (8 * i));
	memcpy(c->buf + c->len, val, vlen);
	c->len += vlen;
}

static void put_str(struct canon *c, const char *name, const char *val)
{
	put_field(c, name, val, strlen(val));
}

static void put_u64(struct canon *c, const char *name, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	put_str(c, name, num);
}

int vr_seal_canonical(const struct vr_seal *s, uint8_t *buf, size_t cap, size_t *len)
{
	struct canon c = {.buf = buf, .cap = cap};
	char hex[2 * VR_DIGEST_SIZE + sizeof(FSV_PREFIX)];

	if (check_fields(s))
		return -EINVAL;
	const char *tag = s->version == 1   ? VR_CANON_TAG
			  : s->version == 2 ? VR_CANON_TAG_V2
					    : VR_CANON_TAG_V3;

	if (cap < strlen(tag) + 1)
		return -ENOSPC;
	memcpy(buf, tag, strlen(tag) + 1);
	c.len = strlen(tag) + 1;
	put_u64(&c, "version", (uint64_t)s->version);
	put_str(&c, "path", s->path);
	put_u64(&c, "size", s->size);
	vr_hex(s->sha256, VR_DIGEST_SIZE, hex);
	put_str(&c, "sha256", s->no_sha256 ? "" : hex);
	strcpy(hex, FSV_PREFIX);
	vr_hex(s->fsverity, VR_DIGEST_SIZE, hex + strlen(FSV_PREFIX));
	put_str(&c, "fsverity", hex);
	put_str(&c, "device.backend", s->device.backend);
	put_u64(&c, "device.index", (uint64_t)s->device.index);
	put_str(&c, "device.name", s->device.name);
	put_str(&c, "device.uuid", s->device.uuid);
	put_str(&c, "sealed_at", s->sealed_at);
	put_str(&c, "key_id", s->key_id);
	put_str(&c, "alg", s->alg);
	if (s->version >= 2) {
		const struct vr_seal_expected *e = &s->expected;
		bool oms = strcmp(e->kind, "oms") == 0;

		put_str(&c, "expected.kind", e->kind[0] ? e->kind : "none");
		put_str(&c, "expected.source", e->source);
		put_str(&c, "expected.key_hint", e->key_hint);
		strcpy(hex, FSV_PREFIX);
		vr_hex(e->subject, VR_DIGEST_SIZE, hex + strlen(FSV_PREFIX));
		put_str(&c, "expected.subject", oms ? hex : "");
	}
	if (s->version >= 3) {
		vr_hex(s->blake3, VR_DIGEST_SIZE, hex);
		put_str(&c, "blake3", hex);
	}
	if (c.overflow)
		return -ENOSPC;
	*len = c.len;
	return 0;
}

/* Upper bound of the canonical encoding's length: two paths and the short fields. */
#define CANON_MAX (2 * VR_SEAL_PATH_MAX + 1024)

static int seal_mac(const struct vr_seal *s, const struct vr_keyring *k, uint8_t mac[32])
{
	uint8_t *buf = malloc(CANON_MAX);
	size_t len;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = vr_seal_canonical(s, buf, CANON_MAX, &len);
	if (ret == 0)
		ret = vr_keyring_mac(k, s->device.uuid, buf, len, mac);
	free(buf);
	return ret;
}

int vr_seal_sign(struct vr_seal *s, const struct vr_keyring *k)
{
	char key_id[VR_KEY_ID_HEX + 1];
	uint8_t mac[32];
	int ret;

	if (s->has_blake3)
		s->version = VR_SEAL_VERSION_B3;
	else if (s->version != 1)
		s->version = VR_SEAL_VERSION;
	strcpy(s->alg, VR_SEAL_ALG);
	ret = vr_keyring_key_id(k, s->device.uuid, key_id);
	if (ret)
		return ret;
	memcpy(s->key_id, key_id, sizeof(key_id));
	ret = seal_mac(s, k, mac);
	if (ret)
		return ret;
	memcpy(s->signature, mac, sizeof(mac));
	return 0;
}

int vr_seal_verify(const struct vr_seal *s, const struct vr_keyring *k)
{
	char key_id[VR_KEY_ID_HEX + 1];
	uint8_t mac[32];
	int ret;

	if (check_fields(s))
		return -EINVAL;
	ret = vr_keyring_key_id(k, s->device.uuid, key_id);
	if (ret)
		return ret;
	ret = seal_mac(s, k, mac);
	if (ret)
		return ret;
	/* both compared in constant time; key_id is public but checked the same way */
	bool id_ok = memeql_sec(key_id, s->key_id, VR_KEY_ID_HEX);
	bool mac_ok = memeql_sec(mac, s->signature, sizeof(mac));

	return id_ok && mac_ok ? 0 : -EBADMSG;
}

/* Adds "expected": null, or its object; returns 0 or -ENOMEM. */
static int add_expected(cJSON *root, const struct vr_seal_expected *e)
{
	char hex[2 * VR_DIGEST_SIZE + sizeof(FSV_PREFIX)];
	cJSON *o;

	if (!e->kind[0])
		return cJSON_AddNullToObject(root, "expected") ? 0 : -ENOMEM;
	o = cJSON_AddObjectToObject(root, "expected");
	if (!o || !cJSON_AddStringToObject(o, "kind", e->kind) ||
	    !cJSON_AddStringToObject(o, "source", e->source))
		return -ENOMEM;
	if (strcmp(e->kind, "oms") != 0)
		return 0;
	strcpy(hex, FSV_PREFIX);
	vr_hex(e->subject, VR_DIGEST_SIZE, hex + strlen(FSV_PREFIX));
	if (!cJSON_AddStringToObject(o, "key_hint", e->key_hint) ||
	    !cJSON_AddStringToObject(o, "subject", hex))
		return -ENOMEM;
	return 0;
}

int vr_seal_to_json(const struct vr_seal *s, char **out)
{
	char hex[2 * VR_DIGEST_SIZE + sizeof(FSV_PREFIX)];
	cJSON *root, *dev;
	char *text;
	int ret = -ENOMEM;

	if (check_fields(s))
		return -EINVAL;
	root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	/* integers as raw text: cJSON's number printer rounds to 15 digits */
	char size[24];

	snprintf(size, sizeof(size), "%llu", (unsigned long long)s->size);
	if (!cJSON_AddNumberToObject(root, "version", s->version) ||
	    !cJSON_AddStringToObject(root, "path", s->path) ||
	    !cJSON_AddRawToObject(root, "size", size))
		goto free_root;
	vr_hex(s->sha256, VR_DIGEST_SIZE, hex);
	if (s->no_sha256 ? !cJSON_AddNullToObject(root, "sha256")
			 : !cJSON_AddStringToObject(root, "sha256", hex))
		goto free_root;
	strcpy(hex, FSV_PREFIX);
	vr_hex(s->fsverity, VR_DIGEST_SIZE, hex + strlen(FSV_PREFIX));
	if (!cJSON_AddStringToObject(root, "fsverity", hex))
		goto free_root;
	vr_hex(s->blake3, VR_DIGEST_SIZE, hex);
	if (s->has_blake3 && !cJSON_AddStringToObject(root, "blake3", hex))
		goto free_root;
	dev = cJSON_AddObjectToObject(root, "device");
	if (!dev || !cJSON_AddStringToObject(dev, "backend", s->device.backend) ||
	    !cJSON_AddNumberToObject(dev, "index", s->device.index) ||
	    !cJSON_AddStringToObject(dev, "name", s->device.name) ||
	    !cJSON_AddStringToObject(dev, "uuid", s->device.uuid) ||
	    !cJSON_AddStringToObject(root, "sealed_at", s->sealed_at) ||
	    (s->version >= 2 && add_expected(root, &s->expected)) ||
	    !cJSON_AddStringToObject(root, "key_id", s->key_id) ||
	    !cJSON_AddStringToObject(root, "alg", s->alg))
		goto free_root;
	vr_hex(s->signature, sizeof(s->signature), hex);
	if (!cJSON_AddStringToObject(root, "signature", hex))
		goto free_root;
	text = cJSON_Print(root);
	if (!text)
		goto free_root;
	size_t n = strlen(text);
	char *withnl = malloc(n + 2);

	if (withnl) {
		memcpy(withnl, text, n);
		withnl[n] = '\n';
		withnl[n + 1] = '\0';
		*out = withnl;
		ret = 0;
	}
	cJSON_free(text);
free_root:
	cJSON_Delete(root);
	return ret;
}

/* Checks that OBJ has exactly the COUNT names in NAMES, each once. */
static bool exact_keys(const cJSON *obj, const char *const *names, size_t count)
{
	unsigned seen = 0;
	size_t n = 0;
	const cJSON *it;

	cJSON_ArrayForEach(it, obj)
	{
		size_t i;

		for (i = 0; i < count; i++)
			if (it->string && strcmp(it->string, names[i]) == 0)
				break;
		if (i == count || (seen & (1u << i)))
			return false;
		seen |= 1u << i;
		n++;
	}
	return n == count;
}

static bool get_string(const cJSON *obj, const char *name, char *dst, size_t cap)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap)
		return false;
	strcpy(dst, it->valuestring);
	return true;
}

static bool get_uint(const cJSON *obj, const char *name, uint64_t max, uint64_t *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (!cJSON_IsNumber(it))
		return false;
	double d = it->valuedouble;

	if (!(d >= 0) || d > (double)max || d != (double)(uint64_t)d)
		return false;
	*v = (uint64_t)d;
	return true;
}

static bool get_hex(const cJSON *obj, const char *name, const char *prefix, uint8_t *dst,
		    size_t len)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
	size_t plen = strlen(prefix);

	if (!cJSON_IsString(it) || strncmp(it->valuestring, prefix, plen) != 0)
		return false;
	return vr_unhex(it->valuestring + plen, dst, len) == 0;
}

/* Reads "expected" (absent in version 1, null, or its object) into E; NULL or why not. */
static const char *parse_expected(const cJSON *it, struct vr_seal_expected *e)
{
	static const char *const sums[] = {"kind", "source"};
	static const char *const oms[] = {"kind", "source", "key_hint", "subject"};

	if (!it || cJSON_IsNull(it))
		return NULL;
	if (!cJSON_IsObject(it) || !get_string(it, "kind", e->kind, sizeof(e->kind)))
		return "expected must be null or an object with a kind";
	bool is_oms = strcmp(e->kind, "oms") == 0;

	if (!exact_keys(it, is_oms ? oms : sums, is_oms ? 4 : 2))
		return "expected has exactly kind and source (and for oms key_hint and subject)";
	if (!get_string(it, "source", e->source, sizeof(e->source)))
		return "expected.source must be a string shorter than 4096 bytes";
	if (is_oms && (!get_string(it, "key_hint", e->key_hint, sizeof(e->key_hint)) ||
		       !get_hex(it, "subject", FSV_PREFIX, e->subject, VR_DIGEST_SIZE)))
		return "expected.key_hint must be 64 hex digits and subject sha256: and 64";
	return NULL;
}

/*
 * Checks the seal's outer shape: ROOT, parsed from text that ended at END,
 * with nothing but whitespace from END to STOP; a JSON object; a version this
 * reader knows (1 or 2, into *VERSION); exactly that version's fields, no
 * more, so nothing the signature does not cover rides along. Returns NULL or
 * why not.
 */
static const char *parse_shape(const cJSON *root, const char *end, const char *stop,
			       uint64_t *version)
{
	static const char *const top[] = {"version",  "path",	   "size",	"sha256",
					  "fsverity", "device",	   "sealed_at", "key_id",
					  "alg",      "signature", "expected",	"blake3"};
	uint64_t v;

	for (; end && end < stop; end++)
		if (*end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')
			return "trailing data after the seal's JSON object";
	if (!cJSON_IsObject(root))
		return "seal is not a JSON object";
	if (!get_uint(root, "version", 1000, &v) || v < 1 || v > 3)
		return "unsupported seal version (this reader knows versions 1, 2 and 3)";
	/* version 2 adds "expected", version 3 "blake3"; version 1 has the first ten alone */
	if (!exact_keys(root, top, (size_t)v + 9))
		return v == 1	? "a version-1 seal has exactly the fields version, path, size, "
				  "sha256, fsverity, device, sealed_at, key_id, alg, signature"
		       : v == 2 ? "a version-2 seal has exactly the fields version, path, size, "
				  "sha256, fsverity, device, sealed_at, expected, key_id, alg, "
				  "signature"
				: "a version-3 seal has exactly the fields of version 2 and blake3";
	*version = v;
	return NULL;
}

/*
 * Reads the fields of ROOT, whose shape parse_shape accepted as version V,
 * into S, each of its type and within its length: strings shorter than their
 * buffers, whole numbers within range, digests as lowercase hex of the right
 * length (sha256 may be null in version 2: sealed under sha256=off). Returns
 * NULL or why not, for the first field that is wrong.
 */
static const char *parse_fields(const cJSON *root, uint64_t v, struct vr_seal *s)
{
	static const char *const devkeys[] = {"backend", "index", "name", "uuid"};
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "device");
	const char *reason;

	reason = parse_expected(cJSON_GetObjectItemCaseSensitive(root, "expected"), &s->expected);
	if (reason)
		return reason;
	if (!cJSON_IsObject(dev) || !exact_keys(dev, devkeys, 4))
		return "device must be an object with exactly backend, index, name, uuid";
	s->version = (int)v;
	if (!get_string(root, "path", s->path, sizeof(s->path)))
		return "path must be a string shorter than 4096 bytes";
	if (!get_uint(root, "size", VR_SIZE_MAX_JSON, &s->size))
		return "size must be a whole number from 0 to 2^53-1";
	if (v >= 2 && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "sha256")))
		s->no_sha256 = true; /* sealed under sha256=off */
	else if (!get_hex(root, "sha256", "", s->sha256, VR_DIGEST_SIZE))
		return "sha256 must be 64 lowercase hex digits (or null from version 2)";
	if (!get_hex(root, "fsverity", FSV_PREFIX, s->fsverity, VR_DIGEST_SIZE))
		return "fsverity must be sha256: and 64 lowercase hex digits";
	s->has_blake3 = v == 3;
	if (v == 3 && !get_hex(root, "blake3", "", s->blake3, VR_DIGEST_SIZE))
		return "blake3 must be 64 lowercase hex digits";
	if (!get_string(dev, "backend", s->device.backend, sizeof(s->device.backend)) ||
	    !get_uint(dev, "index", 65535, &v) ||
	    !get_string(dev, "name", s->device.name, sizeof(s->device.name)) ||
	    !get_string(dev, "uuid", s->device.uuid, sizeof(s->device.uuid)))
		return "device fields have wrong types or lengths";
	s->device.index = (int)v;
	if (!get_string(root, "sealed_at", s->sealed_at, sizeof(s->sealed_at)) ||
	    !get_string(root, "key_id", s->key_id, sizeof(s->key_id)) ||
	    !get_string(root, "alg", s->alg, sizeof(s->alg)))
		return "sealed_at, key_id and alg must be short strings";
	if (!get_hex(root, "signature", "", s->signature, sizeof(s->signature)))
		return "signature must be 64 lowercase hex digits";
	return NULL;
}

int vr_seal_parse(const char *text, size_t len, struct vr_seal *out, const char **why)
{
	const char *reason = NULL;
	const char *end = NULL;
	struct vr_seal *s;
	cJSON *root;
	uint64_t v = 0;
	int ret = -EINVAL;

	if (len > VR_SEAL_JSON_MAX) {
		if (why)
			*why = "seal is larger than 64 KiB";
		return -EINVAL;
	}
	if (memchr(text, '\0', len)) {
		if (why)
			*why = "seal contains a NUL byte";
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	root = vr_json_parse(text, len, &end, &ret);
	if (!root) {
		reason = ret == -ENOMEM	    ? "out of memory"
			 : ret == -ENOTUNIQ ? "seal: " VR_JSON_REPEATED_WHY
					    : "seal is not valid JSON";
		ret = ret == -ENOMEM ? ret : -EINVAL;
		goto free_seal;
	}
	ret = -EINVAL;
	reason = parse_shape(root, end, text + len, &v);
	if (!reason)
		reason = parse_fields(root, v, s);
	if (!reason)
		reason = check_fields(s);
	if (!reason) {
		memcpy(out, s, sizeof(*s));
		ret = 0;
	}
	cJSON_Delete(root);
free_seal:
	free(s);
	if (ret && why)
		*why = reason;
	return ret;
}
