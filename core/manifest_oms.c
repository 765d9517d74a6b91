/* manifest.c - expected digests: SHA256SUMS files and OpenSSF model signatures (OMS). */
#include "manifest.h"
#include "json.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gmp.h>
#include <nettle/base64.h>
#include <nettle/dsa.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/memops.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha2.h>

#define OMS_MEDIA_TYPE	   "application/vnd.dev.sigstore.bundle.v0.3+json"
#define OMS_MEDIA_TYPE_ALT "application/vnd.dev.sigstore.bundle+json;version=0.3"
#define INTOTO_TYPE	   "application/vnd.in-toto+json"
#define STATEMENT_TYPE	   "https://in-toto.io/Statement/v1"
#define OMS_PREDICATE	   "https://model_signing/signature/v1.0"
#define PEM_BEGIN	   "-----BEGIN PUBLIC KEY-----"
#define PEM_END		   "-----END PUBLIC KEY-----"

static int fail(char why[VR_WHY_MAX], int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the reason into WHY and returns ERR. */
static int fail(char why[VR_WHY_MAX], int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, VR_WHY_MAX, fmt, ap);
	va_end(ap);
	return err;
}

/* ---- names ---- */

/*
 * Normalizes relative path P in place (drops leading "./", a trailing '/')
 * and checks it: non-empty, no leading '/', no empty, "." or ".." component,
 * components of at most 255 bytes. Returns NULL or why it is bad.
 */
static const char *normalize_rel(char *p)
{
	size_t len;

	while (p[0] == '.' && p[1] == '/') {
		size_t n = 2;

		while (p[n] == '/')
			n++;
		memmove(p, p + n, strlen(p + n) + 1);
	}
	len = strlen(p);
	if (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	if (len == 0)
		return "an empty name";
	if (len > VR_MANIFEST_NAME_MAX)
		return "a name longer than 4095 bytes";
	if (p[0] == '/')
		return "an absolute path";
	for (const char *c = p;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);

		if (n == 0)
			return "an empty path component";
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return "a '.' or '..' component";
		if (n > 255)
			return "a component longer than 255 bytes";
		if (!slash)
			return NULL;
		c = slash + 1;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct vr_manifest_entry *)a)->name,
		      ((const struct vr_manifest_entry *)b)->name);
}

void vr_manifest_free(struct vr_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->count; i++)
		free(m->entries[i].name);
	free(m->entries);
	for (size_t i = 0; i < m->nignore; i++)
		free(m->ignore[i]);
	free(m->ignore);
	free(m);
}

const struct vr_manifest_entry *vr_manifest_find(const struct vr_manifest *m, const char *rel)
{
	struct vr_manifest_entry key = {.name = (char *)rel};

	if (!m->count)
		return NULL;
	return bsearch(&key, m->entries, m->count, sizeof(key), by_name);
}

bool vr_manifest_ignored(const struct vr_manifest *m, const char *rel)
{
	for (size_t i = 0; i < m->nignore; i++) {
		size_t n = strlen(m->ignore[i]);

		if (strncmp(rel, m->ignore[i], n) == 0 && (rel[n] == '\0' || rel[n] == '/'))
			return true;
	}
	return false;
}

enum vr_manifest_kind vr_manifest_kind_of(const char *name)
{
	if (strcmp(name, VR_SUMS_NAME) == 0)
		return VR_MANIFEST_SUMS;
	if (strcmp(name, VR_OMS_NAME) == 0)
		return VR_MANIFEST_OMS;
	return 0;
}

const char *vr_manifest_kind_name(enum vr_manifest_kind kind)
{
	return kind == VR_MANIFEST_OMS ? "OMS" : "SHA256SUMS";
}

/* Appends an entry (NAME is taken over); returns 0 or -ENOMEM/-E2BIG. */
static int add_entry(struct vr_manifest *m, size_t *cap, char *name, const uint8_t *sha)
{
	if (m->count == VR_MANIFEST_MAX_ENTRIES) {
		free(name);
		return -E2BIG;
	}
	if (m->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct vr_manifest_entry *ne = realloc(m->entries, ncap * sizeof(*ne));

		if (!ne) {
			free(name);
			return -ENOMEM;
		}
		m->entries = ne;
		*cap = ncap;
	}
	m->entries[m->count].name = name;
	memcpy(m->entries[m->count].sha256, sha, VR_DIGEST_SIZE);
	m->count++;
	return 0;
}

/* Sorts the entries; returns the index of a name listed twice, or -1. */
static long sort_entries(struct vr_manifest *m)
{
	if (m->count > 1)
		qsort(m->entries, m->count, sizeof(*m->entries), by_name);
	for (size_t i = 1; i < m->count; i++)
		if (strcmp(m->entries[i - 1].name, m->entries[i].name) == 0)
			return (long)i;
	return -1;
}

/* ---- SHA256SUMS ---- */

/* Reads 64 hex digits of either case (sha256sum -c takes both); returns 0 or -EINVAL. */
static int read_hex64(const char *p, size_t avail, uint8_t out[VR_DIGEST_SIZE])
{
	char low[2 * VR_DIGEST_SIZE + 1];

	if (avail < 2 * VR_DIGEST_SIZE)
		return -EINVAL;
	for (int i = 0; i < 2 * VR_DIGEST_SIZE; i++)
		low[i] = (char)tolower((unsigned char)p[i]);
	low[2 * VR_DIGEST_SIZE] = '\0';
	return vr_unhex(low, out, VR_DIGEST_SIZE);
}

/* Undoes sha256sum's escaping of a name (\\ and \n); returns 0 or -EINVAL. */
static int unescape(char *s)
{
	char *w = s;

	for (const char *p = s; *p; p++) {
		if (*p != '\\') {
			*w++ = *p;
			continue;
		}
		p++;
		if (*p == '\\')
			*w++ = '\\';
		else if (*p == 'n')
			*w++ = '\n';
		else if (*p == 'r')
			*w++ = '\r';
		else
			return -EINVAL;
	}
	*w = '\0';
	return 0;
}

/* Parses one non-blank, non-comment line LINE (LEN bytes, no newline) into M. */
static int sums_line(struct vr_manifest *m, size_t *cap, const char *line, size_t len,
		     unsigned lineno, char why[VR_WHY_MAX])
{
	uint8_t sha[VR_DIGEST_SIZE];
	bool escaped = line[0] == '\\';
	const char *p = line + escaped;
	size_t left = len - escaped;
	const char *bad;
	char *name;
	int ret;

	if (len > 7 && memcmp(line, "SHA256 (", 8) == 0)
		return fail(why, -EINVAL,
			    "line %u: BSD-style lines (sha256sum --tag) are not supported; "
			    "use sha256sum's default format",
			    lineno);
	if (read_hex64(p, left, sha) || left < 2 * VR_DIGEST_SIZE + 3 ||
	    p[2 * VR_DIGEST_SIZE] != ' ' ||
	    (p[2 * VR_DIGEST_SIZE + 1] != ' ' && p[2 * VR_DIGEST_SIZE + 1] != '*'))
		return fail(why, -EINVAL,
			    "line %u: not \"<64 hex digits>  <name>\" as sha256sum writes", lineno);
	p += 2 * VR_DIGEST_SIZE + 2;
	left -= 2 * VR_DIGEST_SIZE + 2;
	if (memchr(p, '\0', left))
		return fail(why, -EINVAL, "line %u: a NUL byte in the name", lineno);
	name = strndup(p, left);
	if (!name)
		return fail(why, -ENOMEM, "out of memory");
	if (escaped && unescape(name)) {
		free(name);
		return fail(why, -EINVAL, "line %u: a bad escape in the name", lineno);
	}
	bad = normalize_rel(name);
	if (bad) {
		free(name);
		return fail(why, -EINVAL, "line %u: the name is %s", lineno, bad);
	}
	ret = add_entry(m, cap, name, sha);
	if (ret == -E2BIG)
		return fail(why, ret, "line %u: more than %u files listed", lineno,
			    VR_MANIFEST_MAX_ENTRIES);
	return ret;
}

int vr_sums_parse(const char *text, size_t len, struct vr_manifest **out, char why[VR_WHY_MAX])
{
	struct vr_manifest *m;
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	if (len > VR_MANIFEST_MAX_BYTES)
		return fail(why, -EFBIG, "larger than %u MiB", VR_MANIFEST_MAX_BYTES >> 20);
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(why, -ENOMEM, "out of memory");
	m->kind = VR_MANIFEST_SUMS;
	for (size_t pos = 0; pos < len && ret == 0;) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		if (n && line[n - 1] == '\r')
			n--;
		if (n > VR_SUMS_LINE_MAX)
			ret = fail(why, -EINVAL, "line %u: longer than %u bytes", lineno,
				   VR_SUMS_LINE_MAX);
		else if (n && line[0] != '#')
			ret = sums_line(m, &cap, line, n, lineno, why);
	}
	long dup = ret ? -1 : sort_entries(m);

	if (dup >= 0)
		ret = fail(why, -EINVAL, "\"%.200s\" is listed twice", m->entries[dup].name);
	if (ret == -ENOMEM)
		fail(why, ret, "out of memory");
	if (ret) {
		vr_manifest_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

/* ---- base64 and DER ---- */

/* Decodes base64 TEXT (whitespace skipped) into a malloc'd *OUT; 0, -ENOMEM or -EINVAL. */
static int b64_decode(const char *text, size_t len, uint8_t **out, size_t *outlen)
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

struct der {
	const uint8_t *p;
	size_t len;
};

/* Takes one element of type TAG from D (minimal lengths only); its content into *OUT. */
static bool der_take(struct der *d, uint8_t tag, struct der *out)
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

static bool der_eq(const struct der *d, const uint8_t *bytes, size_t len)
{
	return d->len == len && memcmp(d->p, bytes, len) == 0;
}

/* ---- trusted keys ---- */

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
};

static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_P521[] = {0x2b, 0x81, 0x04, 0x00, 0x23};

/* The hex SHA-256 of DER written as canonical PEM (64-column base64, as openssl writes). */
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

/* Parses an ECDSA SubjectPublicKeyInfo into K (K->der is left to the caller). */
static int parse_spki(const uint8_t *der, size_t len, struct trust_key *k, char why[VR_WHY_MAX])
{
	struct der all = {der, len}, spki, alg, oid, curve, bits;
	mpz_t x, y;
	int ok;

	if (!der_take(&all, 0x30, &spki) || all.len || !der_take(&spki, 0x30, &alg) ||
	    !der_take(&spki, 0x03, &bits) || spki.len || !der_take(&alg, 0x06, &oid))
		return fail(why, -EINVAL, "not a SubjectPublicKeyInfo");
	if (!der_eq(&oid, OID_EC_PUBLIC_KEY, sizeof(OID_EC_PUBLIC_KEY)))
		return fail(why, -EINVAL, "not an elliptic-curve (ECDSA) public key");
	if (!der_take(&alg, 0x06, &curve) || alg.len)
		return fail(why, -EINVAL, "an EC key without a named curve");
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
		return fail(why, -EINVAL, "an unsupported curve (P-256, P-384 and P-521 are)");
	}
	if (bits.len != 2 + 2 * k->coord || bits.p[0] != 0 || bits.p[1] != 0x04)
		return fail(why, -EINVAL, "not an uncompressed point of the curve's size");
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
		return fail(why, -EINVAL, "the point is not on the curve");
	}
	return 0;
}

static void key_clear(struct trust_key *k)
{
	ecc_point_clear(&k->pub);
	free(k->der);
}

/* Adds every PUBLIC KEY block of TEXT to T. SRC names it in reasons. Returns 0 or -errno. */
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
		int ret;

		if (!b)
			break;
		b += strlen(PEM_BEGIN);
		e = memmem(b, (size_t)(end - b), PEM_END, strlen(PEM_END));
		if (!e)
			return fail(why, -EINVAL, "%s: a PUBLIC KEY block without its END line",
				    src);
		if (t->count == VR_TRUST_MAX_KEYS)
			return fail(why, -E2BIG, "more than %d trusted keys", VR_TRUST_MAX_KEYS);
		ret = b64_decode(b, (size_t)(e - b), &k.der, &k.derlen);
		if (ret)
			return ret == -ENOMEM
				   ? fail(why, ret, "%s: out of memory", src)
				   : fail(why, ret, "%s: a PUBLIC KEY block is not base64", src);
		/* the analyser loses k.der when nettle initialises k.pub: it is freed below */
		// NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
		ret = parse_spki(k.der, k.derlen, &k, inner);
		if (ret) {
			free(k.der);
			return fail(why, ret, "%s: key %zu: %s", src, found + 1, inner);
		}
		ret = canonical_hint(k.der, k.derlen, k.hint);
		if (ret) {
			key_clear(&k);
			return fail(why, ret, "%s: out of memory", src);
		}
		t->keys[t->count++] = k;
		found++;
		p = e + strlen(PEM_END);
	}
	if (!found)
		return fail(why, -EINVAL, "%s: no \"" PEM_BEGIN "\" block", src);
	return 0;
}

int vr_trust_from_pem(const char *text, size_t len, struct vr_trust **out, char why[VR_WHY_MAX])
{
	struct vr_trust *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return fail(why, -ENOMEM, "out of memory");
	ret = add_pem(t, text, len, "trusted key", why);
	if (ret) {
		vr_trust_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* Reads regular file PATH (at most 1 MiB) and adds its keys. */
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
		return fail(why, -errno, "%s: %s", shown, strerror(errno));
	if (fstat(fd, &st) != 0) {
		ret = fail(why, -errno, "%s: %s", shown, strerror(errno));
		close(fd);
		return ret;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		close(fd);
		return fail(why, -EINVAL, "%s: not a regular file of at most 1 MiB", shown);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return fail(why, -ENOMEM, "out of memory");
	}
	got = read(fd, buf, (size_t)st.st_size);
	ret = got < 0 ? fail(why, -errno, "%s: %s", shown, strerror(errno)) : 0;
	close(fd);
	if (ret == 0)
		ret = add_pem(t, buf, (size_t)got, shown, why);
	free(buf);
	return ret;
}

int vr_trust_load(const char *path, struct vr_trust **out, char why[VR_WHY_MAX])
{
	struct vr_trust *t = calloc(1, sizeof(*t));
	struct stat st;
	int ret = 0;

	if (!t)
		return fail(why, -ENOMEM, "out of memory");
	if (stat(path, &st)) {
		ret = fail(why, -errno, "%s: %s", path, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;

		if (!d)
			ret = fail(why, -errno, "%s: %s", path, strerror(errno));
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
		if (ret == 0 && t->count == 0)
			ret = fail(why, -EINVAL, "%s: no *.pem file with a public key", path);
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

size_t vr_trust_count(const struct vr_trust *t)
{
	return t ? t->count : 0;
}

const char *vr_trust_hint(const struct vr_trust *t, size_t i)
{
	return t->keys[i].hint;
}

void vr_trust_free(struct vr_trust *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		key_clear(&t->keys[i]);
	free(t);
}

/* ---- OMS ---- */

/* Parses a DER ECDSA-Sig-Value into SIG (initialised by the caller). */
static bool parse_sig(const uint8_t *der, size_t len, struct dsa_signature *sig)
{
	struct der all = {der, len}, seq, ints[2];

	if (!der_take(&all, 0x30, &seq) || all.len || !der_take(&seq, 0x02, &ints[0]) ||
	    !der_take(&seq, 0x02, &ints[1]) || seq.len)
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

/* Hashes DSSE's pre-authentication encoding of (TYPE, PAYLOAD) with the hash K's curve uses;
 * returns the digest's length. */
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

static const char *str_of(const cJSON *obj, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Picks the trusted key the bundle names (a hint or the key itself); NULL with WHY set. */
static const struct trust_key *pick_key(const cJSON *pk, const struct vr_trust *trust, int *err,
					char why[VR_WHY_MAX])
{
	const char *hint = str_of(pk, "hint");
	const char *raw = str_of(pk, "rawBytes");
	const struct trust_key *by_hint = NULL, *by_raw = NULL;

	*err = -EKEYREJECTED;
	if (!hint && !raw) {
		*err = fail(why, -EINVAL, "verificationMaterial.publicKey has no hint or rawBytes");
		return NULL;
	}
	if (!trust || trust->count == 0) {
		fail(why, 0, "signature not trusted: no trusted keys are configured (-o trust=)");
		return NULL;
	}
	if (hint) {
		for (size_t i = 0; i < trust->count && !by_hint; i++)
			if (strcmp(hint, trust->keys[i].hint) == 0)
				by_hint = &trust->keys[i];
		if (!by_hint) {
			fail(why, 0, "signature not trusted: no trusted key has hint %.64s", hint);
			return NULL;
		}
	}
	if (raw) {
		size_t pemlen, derlen;
		uint8_t *pem, *der = NULL;
		bool oom = b64_decode(raw, strlen(raw), &pem, &pemlen) == -ENOMEM;
		const char *b = pem ? memmem(pem, pemlen, PEM_BEGIN, strlen(PEM_BEGIN)) : NULL;
		/* the END line is looked for after the whole BEGIN line: the two may share dashes
		 * ("-----BEGIN PUBLIC KEY-----END PUBLIC KEY-----"; found by fuzz_oms) */
		const char *body = b ? b + strlen(PEM_BEGIN) : NULL;
		const char *e = body ? memmem(body, pemlen - (size_t)(body - (char *)pem), PEM_END,
					      strlen(PEM_END))
				     : NULL;

		if (e)
			oom |= b64_decode(body, (size_t)(e - body), &der, &derlen) == -ENOMEM;
		free(pem);
		if (!der) {
			*err = oom ? fail(why, -ENOMEM, "out of memory")
				   : fail(why, -EINVAL,
					  "publicKey.rawBytes is not a base64 PEM public key");
			return NULL;
		}
		for (size_t i = 0; i < trust->count && !by_raw; i++)
			if (trust->keys[i].derlen == derlen &&
			    memcmp(trust->keys[i].der, der, derlen) == 0)
				by_raw = &trust->keys[i];
		free(der);
		if (!by_raw) {
			fail(why, 0,
			     "signature not trusted: the signer's key is not a trusted key");
			return NULL;
		}
		if (by_hint && by_hint != by_raw) {
			*err =
			    fail(why, -EINVAL, "publicKey's hint and rawBytes name different keys");
			return NULL;
		}
	}
	return by_hint ? by_hint : by_raw;
}

/* Checks the bundle around the envelope; returns 0 or -errno with WHY. */
static int check_bundle(const cJSON *b, const cJSON **pk, char why[VR_WHY_MAX])
{
	const char *media = str_of(b, "mediaType");
	const cJSON *vm = cJSON_GetObjectItemCaseSensitive(b, "verificationMaterial");
	const cJSON *tlog;

	if (!cJSON_IsObject(b))
		return fail(why, -EINVAL, "not a JSON object");
	if (!media)
		return fail(why, -EINVAL, "no mediaType: not a Sigstore bundle");
	if (strcmp(media, OMS_MEDIA_TYPE) != 0 && strcmp(media, OMS_MEDIA_TYPE_ALT) != 0)
		return fail(why, -EOPNOTSUPP, "bundle mediaType %.100s is not supported (v0.3 is)",
			    media);
	if (cJSON_GetObjectItemCaseSensitive(b, "messageSignature"))
		return fail(why, -EOPNOTSUPP, "a messageSignature bundle is not a model signature");
	if (!cJSON_IsObject(vm))
		return fail(why, -EINVAL, "no verificationMaterial");
	if (cJSON_GetObjectItemCaseSensitive(vm, "certificate") ||
	    cJSON_GetObjectItemCaseSensitive(vm, "x509CertificateChain"))
		return fail(why, -EOPNOTSUPP,
			    "certificate-signed (keyless, Fulcio) bundles are not supported; "
			    "sign with a key");
	tlog = cJSON_GetObjectItemCaseSensitive(vm, "tlogEntries");
	if (tlog && (!cJSON_IsArray(tlog) || cJSON_GetArraySize(tlog) != 0))
		return fail(why, -EOPNOTSUPP,
			    "transparency-log (Rekor) entries are not supported; sign with a key");
	*pk = cJSON_GetObjectItemCaseSensitive(vm, "publicKey");
	if (!cJSON_IsObject(*pk))
		return fail(why, -EINVAL, "verificationMaterial has no publicKey");
	return 0;
}

/* Checks the DSSE envelope's signature with a trusted key; the payload into *PAYLOAD. */
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
		return fail(why, -EINVAL, "no dsseEnvelope");
	if (!ptype || !p64 || !cJSON_IsArray(sigs))
		return fail(why, -EINVAL, "dsseEnvelope lacks payload, payloadType or signatures");
	if (strcmp(ptype, INTOTO_TYPE) != 0)
		return fail(why, -EINVAL, "payloadType is not " INTOTO_TYPE);
	if (cJSON_GetArraySize(sigs) != 1)
		return fail(why, -EINVAL, "the envelope must hold exactly one signature");
	s64 = str_of(cJSON_GetArrayItem(sigs, 0), "sig");
	if (!s64)
		return fail(why, -EINVAL, "the signature has no sig");
	k = pick_key(pk, trust, &ret, why);
	if (!k)
		return ret;
	ret = b64_decode(p64, strlen(p64), payload, plen);
	if (ret)
		return fail(why, ret,
			    ret == -ENOMEM ? "out of memory" : "the payload is not base64");
	ret = b64_decode(s64, strlen(s64), &der, &derlen);
	dsa_signature_init(&sig);
	if (ret == 0 && !parse_sig(der, derlen, &sig))
		ret = -EINVAL;
	free(der);
	if (ret) {
		fail(why, ret,
		     ret == -ENOMEM ? "out of memory"
				    : "the signature is not a base64 DER ECDSA signature");
	} else {
		dlen = pae_digest(k, ptype, *payload, *plen, digest);
		if (!ecdsa_verify(&k->pub, dlen, digest, &sig))
			ret = fail(why, -EBADMSG, "signature does not verify with the trusted key");
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

/* Adds the ignored paths: model_signing's defaults and the predicate's. */
static int add_ignores(struct vr_manifest *m, const cJSON *list, char why[VR_WHY_MAX])
{
	static const char *const defaults[] = {".git", ".gitattributes", ".github", ".gitignore",
					       VR_OMS_NAME};
	size_t n = sizeof(defaults) / sizeof(defaults[0]);
	size_t extra = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
	const cJSON *it;

	if (list && !cJSON_IsArray(list))
		return fail(why, -EINVAL, "serialization.ignore_paths is not an array");
	if (extra > VR_OMS_IGNORE_MAX)
		return fail(why, -E2BIG, "more than %d ignore_paths", VR_OMS_IGNORE_MAX);
	m->ignore = calloc(n + extra, sizeof(char *));
	if (!m->ignore)
		return fail(why, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m->ignore[m->nignore] = strdup(defaults[i]);
		if (!m->ignore[m->nignore])
			return fail(why, -ENOMEM, "out of memory");
		m->nignore++;
	}
	cJSON_ArrayForEach(it, list)
	{
		char *p;

		if (!cJSON_IsString(it))
			return fail(why, -EINVAL, "an ignore_paths entry is not a string");
		p = strdup(it->valuestring);
		if (!p)
			return fail(why, -ENOMEM, "out of memory");
		/* a path that is not relative to the model cannot name anything in it */
		if (normalize_rel(p)) {
			free(p);
			continue;
		}
		m->ignore[m->nignore++] = p;
	}
	return 0;
}

/* Reads the statement's resources into M and checks the subject digest. */
static int read_statement(struct vr_manifest *m, const uint8_t *payload, size_t plen,
			  char why[VR_WHY_MAX])
{
	const cJSON *pred, *ser, *res, *subj, *it;
	const char *s;
	struct sha256_ctx ctx;
	uint8_t want[VR_DIGEST_SIZE], got[VR_DIGEST_SIZE];
	size_t cap = 0;
	int ret;
	cJSON *st = vr_json_parse((const char *)payload, plen, NULL, &ret);

	if (ret == -ENOMEM) {
		fail(why, ret, "out of memory");
		goto free_st;
	}
	ret = -EINVAL;
	if (!cJSON_IsObject(st)) {
		fail(why, -EINVAL, "the payload is not a JSON object");
		goto free_st;
	}
	s = str_of(st, "_type");
	if (!s || strcmp(s, STATEMENT_TYPE) != 0) {
		fail(why, -EINVAL, "the payload is not an in-toto Statement v1");
		goto free_st;
	}
	s = str_of(st, "predicateType");
	if (!s || strcmp(s, OMS_PREDICATE) != 0) {
		fail(why, -EOPNOTSUPP, "predicateType is not " OMS_PREDICATE);
		ret = -EOPNOTSUPP;
		goto free_st;
	}
	subj = cJSON_GetObjectItemCaseSensitive(st, "subject");
	s = cJSON_GetArraySize(subj) == 1
		? str_of(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(subj, 0), "digest"),
			 "sha256")
		: NULL;
	if (!cJSON_IsArray(subj) || !s || vr_unhex(s, want, sizeof(want))) {
		fail(why, -EINVAL, "the statement needs one subject with a sha256 digest");
		goto free_st;
	}
	pred = cJSON_GetObjectItemCaseSensitive(st, "predicate");
	ser = cJSON_GetObjectItemCaseSensitive(pred, "serialization");
	res = cJSON_GetObjectItemCaseSensitive(pred, "resources");
	if (!cJSON_IsObject(ser) || !cJSON_IsArray(res)) {
		fail(why, -EINVAL, "the predicate lacks serialization or resources");
		goto free_st;
	}
	s = str_of(ser, "method");
	if (!s || strcmp(s, "files") != 0) {
		ret = fail(why, s ? -EOPNOTSUPP : -EINVAL,
			   "serialization method %.40s is not supported (files is)",
			   s ? s : "(none)");
		goto free_st;
	}
	s = str_of(ser, "hash_type");
	if (!s || strcmp(s, "sha256") != 0) {
		ret = fail(why, s ? -EOPNOTSUPP : -EINVAL,
			   "hash_type %.40s is not supported (sha256 is)", s ? s : "(none)");
		goto free_st;
	}
	ret = add_ignores(m, cJSON_GetObjectItemCaseSensitive(ser, "ignore_paths"), why);
	if (ret)
		goto free_st;
	cJSON_ArrayForEach(it, res)
	{
		const char *name = str_of(it, "name"), *alg = str_of(it, "algorithm");
		const char *dig = str_of(it, "digest"), *bad;
		uint8_t sha[VR_DIGEST_SIZE];
		char *copy;

		if (!name || !alg || !dig) {
			ret = fail(why, -EINVAL, "resource %zu lacks name, algorithm or digest",
				   m->count + 1);
			goto free_st;
		}
		if (strcmp(alg, "sha256") != 0) {
			ret = fail(why, -EOPNOTSUPP,
				   "resource %.100s: algorithm %.40s is not sha256", name, alg);
			goto free_st;
		}
		if (vr_unhex(dig, sha, sizeof(sha))) {
			ret = fail(why, -EINVAL, "resource %.100s: digest is not 64 lowercase hex",
				   name);
			goto free_st;
		}
		copy = strdup(name);
		if (!copy) {
			ret = -ENOMEM;
			goto free_st;
		}
		bad = normalize_rel(copy);
		if (bad) {
			free(copy);
			ret = fail(why, -EINVAL, "resource %.100s: the name is %s", name, bad);
			goto free_st;
		}
		ret = add_entry(m, &cap, copy, sha);
		if (ret) {
			if (ret == -E2BIG)
				fail(why, ret, "more than %u resources", VR_MANIFEST_MAX_ENTRIES);
			goto free_st;
		}
	}
	long dup = sort_entries(m);

	if (dup >= 0) {
		ret = fail(why, -EINVAL, "resource %.200s is listed twice", m->entries[dup].name);
		goto free_st;
	}
	/* the subject digest covers the resource list: none can be added, dropped or edited */
	sha256_init(&ctx);
	for (size_t i = 0; i < m->count; i++)
		sha256_update(&ctx, VR_DIGEST_SIZE, m->entries[i].sha256);
	sha256_digest(&ctx, sizeof(got), got);
	if (!memeql_sec(got, want, sizeof(got))) {
		ret = fail(why, -EBADMSG, "the subject digest does not match the resources");
		goto free_st;
	}
	memcpy(m->subject, want, sizeof(want));
	ret = 0;
free_st:
	cJSON_Delete(st);
	return ret;
}

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
		return fail(why, -EFBIG, "larger than %u MiB", VR_MANIFEST_MAX_BYTES >> 20);
	if (memchr(text, '\0', len))
		return fail(why, -EINVAL, "a NUL byte: not a JSON bundle");
	m = calloc(1, sizeof(*m));
	if (!m)
		return fail(why, -ENOMEM, "out of memory");
	m->kind = VR_MANIFEST_OMS;
	b = vr_json_parse(text, len, NULL, &ret);
	if (!b) {
		ret = fail(why, ret, ret == -ENOMEM ? "out of memory" : "not valid JSON");
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
			fail(why, ret, "out of memory");
		vr_manifest_free(m);
		return ret;
	}
	*out = m;
	return 0;
}
