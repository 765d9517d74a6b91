/* test_expect.c - expected digests in the tree, over the mock: sealing against SHA256SUMS and
 * model.sig, sources arriving late, renames, MISSING/UNEXPECTED, expect=require. */
#include "backends.h"
#include "check.h"
#include "manifest.h"
#include "res_private.h"
#include "residency.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef VR_TEST_DATA
#define VR_TEST_DATA "tests/data"
#endif

/* FIPS 180-2's first example: SHA-256("abc") */
#define ABC_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* b3sum's BLAKE3 of "abc" */
#define ABC_B3 "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"

static struct vr_caller me = {.uid = 0, .gid = 0, .pid = 1, .tgid = 1};
static struct vr_keyring *keys;
static bool sha256_off; /* the trees made from now on run with -o sha256=off */

/* Loads LEN bytes into PATH as cp would; returns the close's result. */
static int load(struct vr_residency *r, const char *path, const void *data, size_t len)
{
	struct vr_handle *h;
	int ret = vr_res_create(r, path, 0644, &me, &h);

	if (ret)
		return ret;
	if (len)
		ret = vr_res_write(r, h, data, len, 0, &me);
	int fl = vr_res_flush(r, h, &me);

	vr_res_release(r, h);
	return ret ? ret : fl;
}

static int load_str(struct vr_residency *r, const char *path, const char *s)
{
	return load(r, path, s, strlen(s));
}

/* Reads a whole file or generated text, NUL-terminated; returns 0 or the first error. */
static int slurp(struct vr_residency *r, const char *path, char *buf, size_t cap)
{
	struct vr_handle *h;
	size_t got, len = 0;
	int ret = vr_res_open(r, path, O_RDONLY, &me, &h);

	buf[0] = '\0';
	if (ret)
		return ret;
	do {
		ret = vr_res_read(r, h, buf + len, cap - 1 - len, len, &got);
		len += got;
	} while (ret == 0 && got > 0 && len < cap - 1);
	buf[len] = '\0';
	vr_res_release(r, h);
	return ret;
}

/* The seal of PATH, parsed; returns 0 or an error. */
static int seal_of(struct vr_residency *r, const char *path, struct vr_seal *s)
{
	char name[512], text[8192];
	int ret;

	snprintf(name, sizeof(name), "%s.seal", path);
	ret = slurp(r, name, text, sizeof(text));
	return ret ? ret : vr_seal_parse(text, strlen(text), s, NULL);
}

/* Whether the verify report of DIR has LINE; *FAILS receives whether the report failed. */
static bool report_has(struct vr_residency *r, const char *dir, const char *line, bool *fails)
{
	static char text[65536];
	char path[256];
	int ret;

	snprintf(path, sizeof(path), "%s/verify", dir);
	ret = slurp(r, path, text, sizeof(text));
	if (fails)
		*fails = ret == -EIO;
	return strstr(text, line) != NULL;
}

static uint64_t status_number(struct vr_residency *r, const char *key)
{
	char *text, pat[64];
	size_t len;
	uint64_t v = (uint64_t)-1;

	if (vr_res_status(r, &text, &len) != 0)
		return v;
	snprintf(pat, sizeof(pat), "\"%s\":\t", key);
	char *at = strstr(text, pat);

	if (at)
		v = strtoull(at + strlen(pat), NULL, 10);
	free(text);
	return v;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 16);

	*len = f && buf ? fread(buf, 1, 1 << 16, f) : 0;
	if (f)
		fclose(f);
	return buf;
}

static void test_sums(struct vr_residency *r)
{
	struct vr_seal s;
	char buf[64];
	bool fails;

	/* the source first: a match seals as checked, a mismatch is refused and nothing else */
	CHECK_EQ(vr_res_mkdir(r, "/s", 0755, &me), 0);
	CHECK_EQ(
	    load_str(r, "/s/SHA256SUMS", ABC_SHA "  a\n" ABC_SHA "  sub/b\n" ABC_SHA "  gone\n"),
	    0);
	CHECK_EQ(load_str(r, "/s/a", "abc"), 0);
	CHECK_EQ(seal_of(r, "/s/a", &s), 0);
	CHECK_EQ(s.version, 2);
	CHECK_STR(s.expected.kind, "sha256sums");
	CHECK_STR(s.expected.source, "s/SHA256SUMS");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(vr_res_mkdir(r, "/s/sub", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/s/sub/b", "abd"), -EIO);
	CHECK_EQ(slurp(r, "/s/sub/b", buf, sizeof(buf)), -EIO);
	CHECK_EQ(seal_of(r, "/s/sub/b", &s), -ENOENT);
	CHECK(report_has(r, "/s", "FAILED s/sub/b sha256 differs from s/SHA256SUMS\n", &fails));
	CHECK(fails);
	CHECK(report_has(r, "/s", "MISSING s/gone listed in s/SHA256SUMS\n", NULL));
	CHECK(report_has(r, "/s", "OK s/a sha256:", NULL));
	CHECK_EQ(status_number(r, "refused"), 1);
	CHECK_EQ(status_number(r, "checked"), 1);
	CHECK_EQ(status_number(r, "sources"), 1);
	/* the verify of a subdirectory sees the sources above it */
	CHECK(report_has(r, "/s/sub", "FAILED s/sub/b sha256 differs", NULL));
	CHECK(!report_has(r, "/s/sub", "MISSING s/gone", NULL));
	/* a replacement with the right bytes seals it */
	struct vr_handle *h;

	CHECK_EQ(vr_res_open(r, "/s/sub/b", O_WRONLY | O_TRUNC, &me, &h), 0);
	CHECK_EQ(vr_res_write(r, h, "abc", 3, 0, &me), 0);
	CHECK_EQ(vr_res_flush(r, h, &me), 0);
	vr_res_release(r, h);
	CHECK_EQ(slurp(r, "/s/sub/b", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "abc");
	CHECK_EQ(status_number(r, "refused"), 0);
	/* an unlisted file is informational under SHA256SUMS */
	CHECK_EQ(load_str(r, "/s/extra", "x"), 0);
	CHECK(report_has(r, "/s", "UNEXPECTED s/extra not listed in s/SHA256SUMS\n", NULL));
	CHECK_EQ(vr_res_unlink(r, "/s/gone", &me), -ENOENT);
	CHECK_EQ(load_str(r, "/s/gone", "abc"), 0);
	CHECK(report_has(r, "/s", "OK s/gone", &fails));
	CHECK(!fails);

	/* files first, the source after: a match is re-signed as checked, a mismatch quarantined */
	CHECK_EQ(vr_res_mkdir(r, "/late", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/late/a", "abc"), 0);
	CHECK_EQ(load_str(r, "/late/c", "abx"), 0);
	CHECK_EQ(seal_of(r, "/late/a", &s), 0);
	CHECK_STR(s.expected.kind, "");
	CHECK_EQ(load_str(r, "/late/SHA256SUMS", ABC_SHA "  a\n" ABC_SHA "  c\n"), 0);
	CHECK_EQ(seal_of(r, "/late/a", &s), 0);
	CHECK_STR(s.expected.source, "late/SHA256SUMS");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(slurp(r, "/late/c", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/late", "FAILED late/c sha256 differs from late/SHA256SUMS\n", NULL));

	/* renames: into a covered place with other bytes is quarantined; a moved source vouches
	 * in its new place; a source renamed away vouches for nothing */
	CHECK_EQ(load_str(r, "/tmpfile", "zzz"), 0);
	CHECK_EQ(vr_res_rename(r, "/tmpfile", "/late/a2", 0, &me), 0);
	CHECK_EQ(load_str(r, "/late/SHA256SUMS.new", ABC_SHA "  a2\n"), 0);
	CHECK_EQ(slurp(r, "/late/a2", buf, sizeof(buf)), 0); /* not a source under that name */
	CHECK_EQ(vr_res_rename(r, "/late/SHA256SUMS.new", "/late/SHA256SUMS", 0, &me), 0);
	CHECK_EQ(slurp(r, "/late/a2", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/late", "FAILED late/a2 sha256 differs from late/SHA256SUMS\n", NULL));
	CHECK_EQ(vr_res_rename(r, "/late", "/moved", 0, &me), 0);
	CHECK(report_has(r, "/moved", "MISSING moved/gone", NULL) == false);
	/* moved to where the source names other bytes: quarantined at the move, its seal still
	 * the one signed for where it was (a seal is never half re-signed) */
	CHECK_EQ(load_str(r, "/other", "zzz"), 0);
	CHECK_EQ(vr_res_rename(r, "/other", "/moved/a2", 0, &me), 0);
	CHECK_EQ(slurp(r, "/moved/a2", buf, sizeof(buf)), -EIO);
	CHECK_EQ(seal_of(r, "/moved/a2", &s), 0);
	CHECK_STR(s.path, "other");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK(report_has(r, "/moved", "FAILED moved/a2 sha256 differs from moved/SHA256SUMS\n",
			 NULL));
	CHECK_EQ(load_str(r, "/moved/a3", "abc"), 0);
	CHECK(
	    report_has(r, "/moved", "UNEXPECTED moved/a3 not listed in moved/SHA256SUMS\n", NULL));
	CHECK_EQ(vr_res_rename(r, "/moved/SHA256SUMS", "/moved/old-sums", 0, &me), 0);
	CHECK(!report_has(r, "/moved", "UNEXPECTED", NULL));
	CHECK_EQ(status_number(r, "sources"), 1);

	/* a malformed source: its line, and verify fails */
	CHECK_EQ(vr_res_mkdir(r, "/mal", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/mal/SHA256SUMS", ABC_SHA "  a\nnot a line\n"), 0);
	CHECK(report_has(r, "/mal", "FAILED mal/SHA256SUMS line 2: ", &fails));
	CHECK(fails);
	CHECK_EQ(load_str(r, "/mal/a", "abd"), 0); /* a refused source vouches for nothing */
	CHECK_EQ(status_number(r, "sources_refused"), 1);
}

static void test_oms(struct vr_residency *r)
{
	static const char *const files[] = {"model.sig", "signme-1", "signme-2", "ignore-me"};
	char path[256], buf[64];
	struct vr_seal s;
	bool fails;

	CHECK_EQ(vr_res_mkdir(r, "/m", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/bad", 0755, &me), 0);
	for (size_t i = 0; i < 4; i++) {
		size_t len;
		char *data;

		snprintf(path, sizeof(path), VR_TEST_DATA "/oms/v1.1.0-elliptic-key/%s", files[i]);
		data = read_file(path, &len);
		snprintf(path, sizeof(path), "/m/%s", files[i]);
		CHECK_EQ(load(r, path, data, len), 0);
		/* the same model, one weight changed: refused at its close */
		if (i == 1)
			data[0] ^= 1;
		snprintf(path, sizeof(path), "/bad/%s", files[i]);
		CHECK_EQ(load(r, path, data, len), i == 1 ? -EIO : 0);
		free(data);
	}
	CHECK(report_has(r, "/m", "OK m/signme-1 sha256:", &fails));
	CHECK(!fails);
	CHECK(report_has(r, "/m", "OK m/ignore-me sha256:", NULL));
	CHECK_EQ(seal_of(r, "/m/signme-2", &s), 0);
	CHECK_STR(s.expected.kind, "oms");
	CHECK_STR(s.expected.key_hint,
		  "e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e");
	CHECK(report_has(r, "/bad", "FAILED bad/signme-1 sha256 differs from bad/model.sig\n",
			 &fails));
	CHECK(fails);
	CHECK_EQ(slurp(r, "/bad/signme-1", buf, sizeof(buf)), -EIO);
	/* an unsigned file fails a signed model */
	CHECK_EQ(load_str(r, "/m/extra", "x"), 0);
	CHECK(report_has(r, "/m", "UNEXPECTED m/extra not listed in m/model.sig\n", &fails));
	CHECK(fails);
}

/*
 * A shards statement signed in certificate mode (tests/data/oms/v1.1-shards-certificate:
 * 8-byte shards over 20, 8 and 0 bytes): each shard checked from the device bytes at the
 * seal, a changed byte refused naming its shard, a late signature quarantining, an empty file
 * covered; a certificate chain to the root trust= holds.
 */
static void test_shards(struct vr_residency *r)
{
	static const char *const files[] = {"model.sig", "weights.bin", "sub/eight", "empty"};
	char path[256], buf[64];
	struct vr_seal s;
	bool fails;

	CHECK_EQ(vr_res_mkdir(r, "/sh", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/sh/sub", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/shbad", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/shbad/sub", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/late", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/late/sub", 0755, &me), 0);
	for (size_t k = 0; k < 4; k++) {
		/* the late copy: the signature last */
		size_t i = (k + 1) % 4, len;
		char *data;

		snprintf(path, sizeof(path), VR_TEST_DATA "/oms/v1.1-shards-certificate/%s",
			 files[k]);
		data = read_file(path, &len);
		snprintf(path, sizeof(path), "/sh/%s", files[k]);
		CHECK_EQ(load(r, path, data, len), 0);
		if (k == 1)
			data[17] ^= 1; /* in the last shard, 16:20 */
		snprintf(path, sizeof(path), "/shbad/%s", files[k]);
		CHECK_EQ(load(r, path, data, len), k == 1 ? -EIO : 0);
		free(data);
		snprintf(path, sizeof(path), VR_TEST_DATA "/oms/v1.1-shards-certificate/%s",
			 files[i]);
		data = read_file(path, &len);
		if (i == 2)
			data[0] ^= 1; /* in the first shard, 0:8 */
		snprintf(path, sizeof(path), "/late/%s", files[i]);
		CHECK_EQ(load(r, path, data, len), 0);
		free(data);
	}
	CHECK(report_has(r, "/sh", "OK sh/weights.bin sha256:", &fails));
	CHECK(!fails);
	CHECK(report_has(r, "/sh", "OK sh/empty sha256:", NULL));
	CHECK(report_has(r, "/sh", "OK sh/sub/eight sha256:", NULL));
	CHECK_EQ(seal_of(r, "/sh/weights.bin", &s), 0);
	CHECK_STR(s.expected.kind, "oms");
	CHECK_STR(s.expected.source, "sh/model.sig");
	CHECK(report_has(r, "/shbad",
			 "FAILED shbad/weights.bin sha256 of shard 16:20 differs from "
			 "shbad/model.sig\n",
			 &fails));
	CHECK(fails);
	CHECK_EQ(slurp(r, "/shbad/weights.bin", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/late", "FAILED late/sub/eight sha256 of shard 0:8 differs", &fails));
	CHECK(fails);
	CHECK_EQ(slurp(r, "/late/sub/eight", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/late", "OK late/weights.bin sha256:", NULL));
	/* a file longer than its shards; the empty file not empty: no shard lists it */
	size_t len;
	char *sig = read_file(VR_TEST_DATA "/oms/v1.1-shards-certificate/model.sig", &len);

	CHECK_EQ(vr_res_mkdir(r, "/odd", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/odd/sub", 0755, &me), 0);
	CHECK_EQ(load(r, "/odd/model.sig", sig, len), 0);
	free(sig);
	CHECK_EQ(load_str(r, "/odd/sub/eight", "ABCDEFGHI"), -EIO);
	CHECK(
	    report_has(r, "/odd", "FAILED odd/sub/eight 9 bytes where the shards list 8", &fails));
	CHECK(fails);
	CHECK_EQ(load_str(r, "/odd/empty", "x"), 0);
	CHECK(report_has(r, "/odd", "UNEXPECTED odd/empty not listed in odd/model.sig", NULL));
}

/* A mount without trust=: every model.sig is refused, and says why. */
static void test_untrusted(struct vr_residency *r)
{
	size_t len;
	char *data = read_file(VR_TEST_DATA "/oms/v1.1.0-elliptic-key/model.sig", &len);
	bool fails;

	CHECK_EQ(vr_res_mkdir(r, "/u", 0755, &me), 0);
	CHECK_EQ(load(r, "/u/model.sig", data, len), 0);
	CHECK_EQ(load_str(r, "/u/signme-1", "not the signed bytes"), 0);
	CHECK(report_has(r, "/u", "FAILED u/model.sig signature not trusted: no trusted keys",
			 &fails));
	CHECK(fails);
	CHECK(report_has(r, "/u", "OK u/signme-1", NULL));
	free(data);
}

/* expect=require: nothing uncovered seals; a late source seals what it names. */
static void test_require(struct vr_residency *r)
{
	char buf[64];

	CHECK_EQ(vr_res_mkdir(r, "/r", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/r/a", "abc"), -EIO);
	CHECK_EQ(load_str(r, "/r/b", "abd"), -EIO);
	CHECK(report_has(r, "/r", "FAILED r/a no expected digest covers it (expect=require)\n",
			 NULL));
	CHECK_EQ(load_str(r, "/r/SHA256SUMS", ABC_SHA "  a\n" ABC_SHA "  b\n"), 0);
	CHECK_EQ(slurp(r, "/r/a", buf, sizeof(buf)), 0);
	CHECK_STR(buf, "abc");
	CHECK_EQ(slurp(r, "/r/b", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/r", "FAILED r/b sha256 differs from r/SHA256SUMS\n", NULL));
	CHECK_EQ(status_number(r, "refused"), 1);

	/* refused for want of a source until a checksums.blake3 naming its bytes arrives */
	struct vr_seal seal;

	CHECK_EQ(vr_res_mkdir(r, "/rb", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/rb/a", "abc"), -EIO);
	CHECK_EQ(load_str(r, "/rb/z", "abz"), -EIO);
	CHECK_EQ(load_str(r, "/rb/checksums.blake3", ABC_B3 "  a\n" ABC_B3 "  z\n"), 0);
	CHECK_EQ(seal_of(r, "/rb/a", &seal), 0);
	CHECK_EQ(seal.version, 3);
	CHECK_STR(seal.expected.kind, "blake3sums");
	CHECK(report_has(r, "/rb", "FAILED rb/z blake3 differs from rb/checksums.blake3\n", NULL));
	CHECK_EQ(load_str(r, "/rb/b", "abd"), -EIO); /* not named */
}

/* sha256=off: seals carry the tree digest alone, until a source names the file. */
static void test_sha256_off(struct vr_residency *r)
{
	struct vr_seal s;
	char buf[64];

	CHECK_EQ(vr_res_mkdir(r, "/o", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/o/a", "abc"), 0);
	CHECK_EQ(load_str(r, "/o/b", "abd"), 0);
	CHECK_EQ(load_str(r, "/o/c", "abc"), 0);
	CHECK_EQ(seal_of(r, "/o/a", &s), 0);
	CHECK(s.no_sha256);
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	/* a source arriving after them: the files it names are hashed then, and checked */
	CHECK_EQ(load_str(r, "/o/SHA256SUMS", ABC_SHA "  a\n" ABC_SHA "  b\n"), 0);
	CHECK_EQ(seal_of(r, "/o/a", &s), 0);
	CHECK(!s.no_sha256);
	CHECK_STR(s.expected.kind, "sha256sums");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(slurp(r, "/o/b", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/o", "FAILED o/b sha256 differs from o/SHA256SUMS\n", NULL));
	CHECK_EQ(seal_of(r, "/o/c", &s), 0); /* not named: not hashed */
	CHECK(s.no_sha256);
	CHECK(report_has(r, "/o", "UNEXPECTED o/c not listed in o/SHA256SUMS\n", NULL));
	/* a file a source already names is hashed at its seal, and refused if it differs */
	CHECK_EQ(vr_res_mkdir(r, "/p", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/p/SHA256SUMS", ABC_SHA "  e\n" ABC_SHA "  f\n"), 0);
	CHECK_EQ(load_str(r, "/p/e", "abc"), 0);
	CHECK_EQ(seal_of(r, "/p/e", &s), 0);
	CHECK(!s.no_sha256);
	CHECK_STR(s.expected.source, "p/SHA256SUMS");
	CHECK_EQ(load_str(r, "/p/f", "abz"), -EIO);
	/* a checksums.blake3: its BLAKE3 taken, and no SHA-256 (no source states one) */
	CHECK_EQ(vr_res_mkdir(r, "/q", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/q/g", "abc"), 0);
	CHECK_EQ(load_str(r, "/q/checksums.blake3", ABC_B3 "  g\n" ABC_B3 "  h\n"), 0);
	CHECK_EQ(seal_of(r, "/q/g", &s), 0);
	CHECK(s.no_sha256 && s.has_blake3);
	CHECK_STR(s.expected.kind, "blake3sums");
	CHECK_EQ(load_str(r, "/q/h", "abc"), 0);
	CHECK_EQ(seal_of(r, "/q/h", &s), 0);
	CHECK(s.no_sha256 && s.has_blake3);
	CHECK_STR(s.expected.kind, "blake3sums");
	CHECK(report_has(r, "/q", "OK q/h ", NULL));
	/* a checksums.blake3 that arrives naming other bytes for a file sealed with its BLAKE3
	 * and no SHA-256 quarantines it at once */
	CHECK_EQ(load_str(r, "/q/b3.new", ABC_SHA "  g\n"), 0);
	uint64_t quarantined = status_number(r, "quarantined");

	CHECK_EQ(vr_res_rename(r, "/q/b3.new", "/q/checksums.blake3", 0, &me), 0);
	CHECK_EQ(status_number(r, "quarantined"), quarantined + 1); /* before any open */
	CHECK_EQ(slurp(r, "/q/g", buf, sizeof(buf)), -EIO);
	/* ... but a SHA256SUMS above that names it too gets its SHA-256 compared: one that
	 * differs refuses the file though the nearer BLAKE3 agrees */
	CHECK_EQ(vr_res_mkdir(r, "/q2", 0755, &me), 0);
	CHECK_EQ(vr_res_mkdir(r, "/q2/sub", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/q2/SHA256SUMS", ABC_SHA "  sub/j\n" ABC_B3 "  sub/k\n"), 0);
	CHECK_EQ(load_str(r, "/q2/sub/checksums.blake3", ABC_B3 "  j\n" ABC_B3 "  k\n"), 0);
	CHECK_EQ(load_str(r, "/q2/sub/j", "abc"), 0);
	CHECK_EQ(seal_of(r, "/q2/sub/j", &s), 0);
	CHECK(!s.no_sha256 && s.has_blake3);
	CHECK_EQ(load_str(r, "/q2/sub/k", "abc"), -EIO);
	CHECK(report_has(r, "/q2", "FAILED q2/sub/k sha256 differs from q2/SHA256SUMS\n", NULL));
	CHECK_EQ(load_str(r, "/q/i", "abc"), 0); /* not named: neither */
	CHECK_EQ(seal_of(r, "/q/i", &s), 0);
	CHECK(s.no_sha256 && !s.has_blake3);
	CHECK_EQ(s.version, 2);
}

/* checksums.blake3: the BLAKE3 taken when it names a file, checked, recorded (version 3). */
static void test_b3sums(struct vr_residency *r)
{
	struct vr_seal s;
	char buf[64];
	bool fails;

	/* the source first: a match seals as checked with its BLAKE3, a mismatch is refused */
	CHECK_EQ(vr_res_mkdir(r, "/b", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/b/checksums.blake3", ABC_B3 "  a\n" ABC_B3 "  d\n" ABC_B3 "  l\n"),
		 0);
	CHECK_EQ(load_str(r, "/b/a", "abc"), 0);
	CHECK_EQ(seal_of(r, "/b/a", &s), 0);
	CHECK_EQ(s.version, 3);
	CHECK(s.has_blake3);
	char hex[2 * 32 + 1];

	vr_hex(s.blake3, 32, hex);
	CHECK_STR(hex, ABC_B3);
	CHECK_STR(s.expected.kind, "blake3sums");
	CHECK_STR(s.expected.source, "b/checksums.blake3");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(load_str(r, "/b/d", "abd"), -EIO);
	CHECK(report_has(r, "/b", "FAILED b/d blake3 differs from b/checksums.blake3\n", &fails));
	CHECK(fails);
	CHECK(report_has(r, "/b", "OK b/a sha256:", NULL));
	/* a listed link is checked through its target's BLAKE3 */
	CHECK_EQ(load_str(r, "/plain", "abc"), 0);
	CHECK_EQ(vr_res_symlink(r, "../plain", "/b/l", &me), 0);
	CHECK(report_has(r, "/b", "FAILED b/l is a symbolic link to plain, sealed without a BLAKE3",
			 NULL));
	CHECK_EQ(vr_res_unlink(r, "/b/l", &me), 0);
	CHECK_EQ(vr_res_symlink(r, "a", "/b/l", &me), 0);
	CHECK(!report_has(r, "/b", "FAILED b/l", NULL));
	CHECK_EQ(load_str(r, "/b/x", "abd"), 0);
	CHECK(report_has(r, "/b", "UNEXPECTED b/x not listed in b/checksums.blake3\n", NULL));

	/* files first, the source after: hashed then, re-signed as checked or quarantined */
	CHECK_EQ(vr_res_mkdir(r, "/bl", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/bl/a", "abc"), 0);
	CHECK_EQ(load_str(r, "/bl/c", "abx"), 0);
	CHECK_EQ(seal_of(r, "/bl/a", &s), 0);
	CHECK_EQ(s.version, 2);
	CHECK(!s.has_blake3);
	CHECK_EQ(load_str(r, "/bl/checksums.blake3", ABC_B3 "  a\n" ABC_B3 "  c\n"), 0);
	CHECK_EQ(seal_of(r, "/bl/a", &s), 0);
	CHECK_EQ(s.version, 3);
	CHECK_STR(s.expected.source, "bl/checksums.blake3");
	CHECK_EQ(vr_seal_verify(&s, keys), 0);
	CHECK_EQ(slurp(r, "/bl/c", buf, sizeof(buf)), -EIO);
	CHECK(report_has(r, "/bl", "FAILED bl/c blake3 differs from bl/checksums.blake3\n", NULL));
	/* renamed into a covered place: its BLAKE3 is taken by the next verify, and checked */
	CHECK_EQ(load_str(r, "/mv", "abc"), 0);
	CHECK_EQ(load_str(r, "/mv2", "abz"), 0);
	CHECK_EQ(load_str(r, "/bl/checksums.blake3.new",
			  ABC_B3 "  a\n" ABC_B3 "  c\n" ABC_B3 "  m\n" ABC_B3 "  m2\n"),
		 0);
	CHECK_EQ(vr_res_rename(r, "/bl/checksums.blake3.new", "/bl/checksums.blake3", 0, &me), 0);
	CHECK_EQ(vr_res_rename(r, "/mv", "/bl/m", 0, &me), 0);
	CHECK_EQ(vr_res_rename(r, "/mv2", "/bl/m2", 0, &me), 0);
	CHECK(report_has(r, "/bl", "OK bl/m sha256:", NULL));
	CHECK_EQ(seal_of(r, "/bl/m", &s), 0);
	CHECK_EQ(s.version, 3);
	CHECK_STR(s.expected.kind, "blake3sums");
	CHECK(report_has(r, "/bl", "FAILED bl/m2 blake3 differs from bl/checksums.blake3\n", NULL));
	/* malformed: the line, and verify fails */
	CHECK_EQ(vr_res_mkdir(r, "/bm", 0755, &me), 0);
	CHECK_EQ(load_str(r, "/bm/checksums.blake3", ABC_B3 "  a\n\n"), 0);
	CHECK(report_has(r, "/bm", "FAILED bm/checksums.blake3 line 2: an empty line", &fails));
	CHECK(fails);
}

static struct vr_residency *tree(struct vr_backend *b, const struct vr_trust *trust, bool require)
{
	struct vr_res_config cfg = {.backend = b,
				    .keys = keys,
				    .verify_on_open = true,
				    .trust = trust,
				    .expect_require = require,
				    .sha256_off = sha256_off};
	struct vr_residency *r = NULL;

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	return r;
}

/*
 * The threads that check files renamed into a signed folder: four at once, at
 * most two one user's, so a second user's rename still gets one while the
 * first renames in a storm; each given back frees its place.
 */
static void bg_admission(void)
{
	struct res_bg_user by[RES_BG_CHECKS_MAX] = {{0, 0}};

	CHECK(res_bg_admit(by, 1000));
	CHECK(res_bg_admit(by, 1000));
	CHECK(!res_bg_admit(by, 1000)); /* user 1000 has its two */
	CHECK(res_bg_admit(by, 65534)); /* another user still gets one */
	CHECK(res_bg_admit(by, 0));
	CHECK(!res_bg_admit(by, 5)); /* four running: none for anyone */
	res_bg_leave(by, 1000);
	CHECK(res_bg_admit(by, 0));  /* root's second */
	CHECK(!res_bg_admit(by, 0)); /* and no third */
	res_bg_leave(by, 0);
	res_bg_leave(by, 0);
	CHECK(res_bg_admit(by, 1000)); /* its place again */
	CHECK(res_bg_admit(by, 7));
	CHECK(!res_bg_admit(by, 8));
	res_bg_leave(by, 12345); /* nobody's place: nothing changes */
	CHECK(!res_bg_admit(by, 8));
	unsigned total = 0;

	for (int i = 0; i < RES_BG_CHECKS_MAX; i++)
		total += by[i].n;
	CHECK_EQ(total, RES_BG_CHECKS_MAX);
}

int main(void)
{
	struct vr_backend_opt opts[] = {{"capacity", "64M"}};
	struct vr_backend_params p = {.opts = opts, .nopts = 1};
	struct vr_backend b;
	struct vr_trust *trust = NULL;
	uint8_t secret[32] = {7};
	char why[VR_WHY_MAX];

	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &keys), 0);
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	CHECK_EQ(vr_trust_load(VR_TEST_DATA "/oms/signing-key-pub.pem", &trust, why), 0);

	struct vr_residency *r = tree(&b, trust, false);

	test_sums(r);
	test_oms(r);
	test_b3sums(r);
	vr_res_free(r);
	/* the certificate vector's root beside the key */
	struct vr_trust *roots = NULL;

	CHECK_EQ(vr_trust_load(VR_TEST_DATA "/oms/certificate-ca-cert.pem", &roots, why), 0);
	r = tree(&b, roots, false);
	test_shards(r);
	vr_res_free(r);
	vr_trust_free(roots);
	r = tree(&b, NULL, false);
	test_untrusted(r);
	vr_res_free(r);
	r = tree(&b, trust, true);
	test_require(r);
	vr_res_free(r);
	sha256_off = true;
	r = tree(&b, trust, false);
	test_sha256_off(r);
	vr_res_free(r);

	vr_trust_free(trust);
	vr_backend_close(&b);
	vr_keyring_free(keys);
	bg_admission();
	return check_summary();
}
