/* test_key.c - HMAC (RFC 4231), HKDF (RFC 5869) vectors and the secret file's rules. */
#include "check.h"
#include "digest.h"
#include "key.h"
#include "safe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void unhex_any(const char *hex, uint8_t *out, size_t *len)
{
	*len = strlen(hex) / 2;
	for (size_t i = 0; i < *len; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

static void test_rfc4231(void)
{
	/* RFC 4231 test cases 1, 2, 6 (HMAC-SHA-256) */
	static const struct {
		const char *key, *data, *mac;
	} v[] = {
	    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
	     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	    {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	    {"" /* 131 bytes of 0xaa, filled below */,
	     "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048"
	     "617368204b6579204669727374",
	     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t key[200], data[200], mac[32];
		size_t want_klen = i == 2 ? 131 : 0;
		size_t klen, dlen;
		char hex[65];

		unhex_any(v[i].key, key, &klen);
		if (want_klen) {
			memset(key, 0xaa, want_klen);
			klen = want_klen;
		}
		unhex_any(v[i].data, data, &dlen);
		vr_hmac_sha256(key, klen, data, dlen, mac);
		vr_hex(mac, 32, hex);
		CHECK_STR(hex, v[i].mac);
	}
}

static void test_rfc5869(void)
{
	/* RFC 5869 test cases 1 and 3 (SHA-256) */
	uint8_t ikm[22], salt[13], info[10], okm[42];
	size_t n;
	char hex[85];

	memset(ikm, 0x0b, sizeof(ikm));
	unhex_any("000102030405060708090a0b0c", salt, &n);
	unhex_any("f0f1f2f3f4f5f6f7f8f9", info, &n);
	CHECK_EQ(vr_hkdf_sha256(salt, 13, ikm, 22, info, 10, okm, 42), 0);
	vr_hex(okm, 42, hex);
	CHECK_STR(hex, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		       "34007208d5b887185865");
	CHECK_EQ(vr_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, okm, 42), 0);
	vr_hex(okm, 42, hex);
	CHECK_STR(hex, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		       "9d201395faa4b61a96c8");
	CHECK_EQ(vr_hkdf_sha256(NULL, 0, ikm, 22, NULL, 0, okm, 255 * 32 + 1), -EINVAL);
}

static char dir[] = "/tmp/vr-key-XXXXXX";

static const char *secret_file(const char *name, size_t len, mode_t mode)
{
	static char path[256];
	uint8_t buf[5000];
	int fd;

	memset(buf, 0x5a, sizeof(buf));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		perror("secret_file");
	close(fd);
	chmod(path, mode);
	return path;
}

static void test_secret_file_rules(void)
{
	struct vr_keyring *k = NULL;
	char id1[17], id2[17], id3[17];

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(vr_keyring_load(secret_file("ok", 32, 0600), &k), 0);
	CHECK_EQ(vr_keyring_key_id(k, "GPU-a", id1), 0);
	CHECK_EQ(vr_keyring_key_id(k, "GPU-b", id2), 0);
	CHECK(strcmp(id1, id2) != 0); /* per-device keys */
	vr_keyring_free(k);
	CHECK_EQ(vr_keyring_load(secret_file("ok400", 64, 0400), &k), 0);
	CHECK_EQ(vr_keyring_key_id(k, "GPU-a", id3), 0);
	CHECK(strcmp(id1, id3) != 0); /* another secret, another key */
	vr_keyring_free(k);
	k = NULL;
	CHECK_EQ(vr_keyring_load(secret_file("group", 32, 0640), &k), -EACCES);
	CHECK_EQ(vr_keyring_load(secret_file("other", 32, 0604), &k), -EACCES);
	CHECK_EQ(vr_keyring_load(secret_file("short", 31, 0600), &k), -EINVAL);
	CHECK_EQ(vr_keyring_load(secret_file("long", 4097, 0600), &k), -EINVAL);
	CHECK_EQ(vr_keyring_load("/nonexistent/secret", &k), -ENOENT);
	CHECK_EQ(vr_keyring_load(dir, &k), -EINVAL);
	if (geteuid() == 0) {
		const char *p = secret_file("owner", 32, 0600);

		CHECK_EQ(chown(p, 12345, 12345), 0);
		CHECK_EQ(vr_keyring_load(p, &k), -EACCES);
	}
	CHECK(k == NULL); /* untouched on failure */
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ(system(cmd), 0);
}

/* A FIFO (or any non-regular file) given as the secret is refused at once, not waited on. */
static void test_secret_not_regular(void)
{
	char tmp[] = "/tmp/vr-key-XXXXXX", fifo[64];
	struct vr_keyring *k = NULL;

	CHECK(mkdtemp(tmp) != NULL);
	snprintf(fifo, sizeof(fifo), "%s/secret", tmp);
	CHECK_EQ(mkfifo(fifo, 0600), 0);
	alarm(10); /* a hang fails the test instead of stalling the suite */
	CHECK_EQ(vr_keyring_load(fifo, &k), -EINVAL);
	CHECK_EQ(vr_keyring_load(tmp, &k), -EINVAL);
	CHECK_EQ(vr_keyring_load("/dev/zero", &k), -EINVAL);
	alarm(0);
	unlink(fifo);
	rmdir(tmp);
}

static void test_generate(void)
{
	struct vr_keyring *a, *b;
	char ia[17], ib[17];

	CHECK_EQ(vr_keyring_generate(&a), 0);
	CHECK_EQ(vr_keyring_generate(&b), 0);
	vr_keyring_key_id(a, "x", ia);
	vr_keyring_key_id(b, "x", ib);
	CHECK(strcmp(ia, ib) != 0);
	vr_keyring_free(a);
	vr_keyring_free(b);
	CHECK_EQ(vr_keyring_from_bytes("short", 5, &a), -EINVAL);
}

/* two key files that hold one secret are one key (audit_key= and secret=) */
static void test_equal(void)
{
	uint8_t a[32] = {1}, b[32] = {1}, c[33] = {1};
	struct vr_keyring *ka = NULL, *kb = NULL, *kc = NULL;

	b[31] = 2;
	CHECK_EQ(vr_keyring_from_bytes(a, sizeof(a), &ka), 0);
	CHECK_EQ(vr_keyring_from_bytes(a, sizeof(a), &kb), 0);
	CHECK_EQ(vr_keyring_from_bytes(c, sizeof(c), &kc), 0);
	if (ka && kb && kc) {
		CHECK(vr_keyring_equal(ka, kb));
		CHECK(!vr_keyring_equal(ka, kc)); /* a prefix is another secret */
		vr_keyring_free(kb);
		kb = NULL;
		CHECK_EQ(vr_keyring_from_bytes(b, sizeof(b), &kb), 0);
		CHECK(kb && !vr_keyring_equal(ka, kb));
	}
	vr_keyring_free(ka);
	vr_keyring_free(kb);
	vr_keyring_free(kc);
}

/* folders others could replace a key in, or add a trusted key to */
static void test_folders(void)
{
	char top[] = "/tmp/vr-safe-XXXXXX", sub[64], file[80];

	if (!mkdtemp(top))
		return;
	snprintf(sub, sizeof(sub), "%s/d", top);
	snprintf(file, sizeof(file), "%s/k.pem", sub);
	CHECK_EQ(mkdir(sub, 0700), 0);
	CHECK_EQ(vr_folder_safe("secret file", file), 0);
	CHECK_EQ(chmod(sub, 0777), 0);
	CHECK_EQ(vr_folder_safe("secret file", file), -EACCES);
	CHECK_EQ(chmod(sub, 01777), 0); /* sticky: others cannot rename the file away */
	CHECK_EQ(vr_folder_safe("secret file", file), 0);
	CHECK_EQ(vr_dir_private("trust store", sub), -EACCES); /* but they can add a key */
	CHECK_EQ(chmod(sub, 0755), 0);
	CHECK_EQ(vr_dir_private("trust store", sub), 0);
	CHECK_EQ(vr_trust_path_safe(sub), 0);
	int fd = open(file, O_CREAT | O_WRONLY, 0644);

	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK_EQ(vr_trust_path_safe(file), 0);
	CHECK_EQ(chmod(file, 0666), 0);
	CHECK_EQ(vr_trust_path_safe(file), -EACCES);
	CHECK_EQ(vr_trust_path_safe(sub), 0); /* the folder's own rule: its files are read */
	CHECK_EQ(chmod(top, 0777), 0);
	CHECK_EQ(chmod(file, 0644), 0);
	CHECK_EQ(vr_trust_path_safe(file), 0);	    /* its folder is sub, still private */
	CHECK_EQ(vr_trust_path_safe(sub), -EACCES); /* sub's folder is open */
	/* what cannot be looked at is refused with its errno; a bare name's folder is "." */
	CHECK_EQ(vr_folder_safe("secret file", "/nonexistent-vr/k"), -ENOENT);
	CHECK_EQ(vr_dir_private("trust store", "/nonexistent-vr"), -ENOENT);
	CHECK_EQ(vr_trust_path_safe("/nonexistent-vr/k.pem"), -ENOENT);
	CHECK_EQ(vr_folder_safe("secret file", "/k"), 0); /* "/": root's, 0755 */
	CHECK_EQ(chmod(top, 0700), 0);
	CHECK_EQ(chdir(sub), 0);
	CHECK_EQ(vr_folder_safe("secret file", "k.pem"), 0);
	CHECK_EQ(chdir("/"), 0);
	/* owned by another user than this one and root: refused, folder or file */
	if (geteuid() == 0) {
		CHECK_EQ(chown(sub, 65534, 65534), 0);
		CHECK_EQ(vr_folder_safe("secret file", file), -EACCES);
		CHECK_EQ(vr_dir_private("trust store", sub), -EACCES);
		CHECK_EQ(chown(sub, 0, 0), 0);
		CHECK_EQ(chown(file, 65534, 65534), 0);
		CHECK_EQ(vr_trust_path_safe(file), -EACCES);
		CHECK_EQ(chown(file, 0, 0), 0);
		CHECK_EQ(vr_trust_path_safe(file), 0);
	}
	unlink(file);
	rmdir(sub);
	rmdir(top);
}

int main(void)
{
	test_equal();
	test_folders();
	test_rfc4231();
	test_rfc5869();
	test_secret_file_rules();
	test_generate();
	test_secret_not_regular();
	return check_summary();
}
