/* test_faults.c - device faults injected through the mock into every residency operation. */
#include "backends.h"
#include "blake3.h"
#include "check.h"
#include "digest.h"
#include "residency.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Table-driven: each row makes the Nth mock call of one kind (alloc, write,
 * read, digest) fail with one errno, then runs the same script of operations
 * (load, reopen and read, verify, rename, truncate, unlink). Whatever fails,
 * every result must be 0 or a negative errno from the expected set, a seal
 * may only ever describe the bytes that were written, the counters must
 * match the tree, and removing everything must give all device memory back.
 */

static struct vr_caller me = {.uid = 0, .gid = 0, .pid = 1, .tgid = 1};
static struct vr_keyring *keys;
static uint8_t data[3 << 20];

/* A result an application may see: 0 or one of these, never a positive or odd value. */
static int sane(int ret)
{
	static const int ok[] = {0,	 -ENOSPC, -EIO,	   -ENOMEM,   -ENOENT,
				 -EPERM, -ESTALE, -EEXIST, -ENOTEMPTY};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ret == ok[i])
			return 1;
	fprintf(stderr, "unexpected result %d\n", ret);
	return 0;
}

#define DO(expr)                                                                                   \
	do {                                                                                       \
		int do_ret_ = (expr);                                                              \
		CHECK(sane(do_ret_));                                                              \
		last = do_ret_;                                                                    \
	} while (0)

static int load(struct vr_residency *r, const char *path, size_t len)
{
	struct vr_handle *h;
	int last, ret = vr_res_create(r, path, 0644, &me, &h);

	CHECK(sane(ret));
	if (ret)
		return ret;
	for (size_t off = 0; off < len && ret == 0; off += 100000) {
		size_t n = len - off < 100000 ? len - off : 100000;

		ret = vr_res_write(r, h, data + off, n, off, &me);
		CHECK(sane(ret));
	}
	DO(vr_res_flush(r, h, &me));
	vr_res_release(r, h);
	return ret ? ret : last;
}

static int read_all(struct vr_residency *r, const char *path, size_t *total)
{
	static char buf[1 << 20];
	struct vr_handle *h;
	size_t got;
	int ret = vr_res_open(r, path, O_RDONLY, &me, &h);

	*total = 0;
	CHECK(sane(ret));
	if (ret)
		return ret;
	do {
		ret = vr_res_read(r, h, buf, sizeof(buf), *total, &got);
		CHECK(sane(ret));
		*total += got;
	} while (ret == 0 && got > 0);
	vr_res_release(r, h);
	return ret;
}

/* A seal that exists must verify and describe exactly the first LEN bytes of data. */
static void seal_is_true(struct vr_residency *r, const char *file, size_t len)
{
	char path[256], text[8192];
	struct vr_handle *h;
	struct vr_seal seal;
	struct vr_fsv_stream *st = malloc(sizeof(*st));
	uint8_t fsv[32], sha[32];
	size_t got = 0;

	snprintf(path, sizeof(path), "%s.seal", file);
	if (!st || vr_res_open(r, path, O_RDONLY, &me, &h) != 0) {
		free(st);
		return; /* no seal: nothing it could claim */
	}
	CHECK_EQ(vr_res_read(r, h, text, sizeof(text), 0, &got), 0);
	vr_res_release(r, h);
	CHECK_EQ(vr_seal_parse(text, got, &seal, NULL), 0);
	CHECK_EQ(vr_seal_verify(&seal, keys), 0);
	CHECK_EQ(seal.size, len);
	vr_fsv_init(st);
	vr_fsv_update(st, data, len);
	vr_fsv_final(st, fsv);
	vr_sha256(data, len, sha);
	CHECK_MEM(seal.fsverity, fsv, 32);
	CHECK_MEM(seal.sha256, sha, 32);
	free(st);
}

static uint64_t status_field(struct vr_residency *r, const char *key)
{
	char *text, want[64], *p;
	size_t len;
	uint64_t v = UINT64_MAX;

	if (vr_res_status(r, &text, &len) != 0)
		return v;
	snprintf(want, sizeof(want), "\"%s\":", key);
	p = strstr(text, want);
	if (p)
		v = strtoull(p + strlen(want), NULL, 10);
	free(text);
	return v;
}

static int count_seals(void *ctx, const char *name, const struct vr_attr *a)
{
	int *n = ctx;

	(void)name;
	*n += a->kind == VR_KIND_SEAL;
	return 0;
}

static void run(const char *spec)
{
	struct vr_backend_opt o[] = {{"capacity", "32M"}, {"fault", spec}};
	struct vr_backend_params p = {.opts = o, .nopts = 2};
	struct vr_backend b;
	struct vr_residency *r;
	struct vr_statfs sf;
	struct vr_handle *h;
	size_t got;
	int last = 0, failed_before = check_failed;

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {
	    .backend = &b, .keys = keys, .verify_on_open = true, .list_generated = true};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	DO(vr_res_mkdir(r, "/d", 0755, &me));
	DO(load(r, "/d/a", sizeof(data)));
	DO(load(r, "/b", 5000));
	DO(load(r, "/empty", 0));
	DO(read_all(r, "/d/a", &got));
	if (last == 0)
		CHECK_EQ(got, sizeof(data));
	DO(read_all(r, "/verify", &got));
	DO(vr_res_rename(r, "/b", "/d/b", 0, &me));
	/* a file being loaded, truncated and regrown, then sealed */
	if (vr_res_create(r, "/t", 0644, &me, &h) == 0) {
		DO(vr_res_write(r, h, data, 70000, 0, &me));
		DO(vr_res_ftruncate(r, h, 1000, &me));
		DO(vr_res_write(r, h, data + 1000, 2000, 1000, &me));
		DO(vr_res_flush(r, h, &me));
		vr_res_release(r, h);
	}
	seal_is_true(r, "/d/a", sizeof(data));
	seal_is_true(r, "/d/b", 5000);
	seal_is_true(r, "/empty", 0);
	seal_is_true(r, "/t", 3000);

	/* the counters agree with the tree */
	int seals = 0;
	const char *dirs[] = {"/", "/d"};

	for (int i = 0; i < 2; i++) {
		if (vr_res_opendir(r, dirs[i], &h) == 0) {
			vr_res_readdir(r, h, count_seals, &seals);
			vr_res_release(r, h);
		}
	}
	CHECK_EQ(status_field(r, "sealed"), (uint64_t)seals);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(status_field(r, "files"), sf.files);

	/* everything removed: all device memory comes back */
	const char *files[] = {"/d/a", "/d/b", "/b", "/empty", "/t"};

	for (int i = 0; i < 5; i++)
		DO(vr_res_unlink(r, files[i], &me));
	DO(vr_res_rmdir(r, "/d", &me));
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.files, 0);
	CHECK_EQ(sf.free_bytes, 32 << 20);
	CHECK_EQ(status_field(r, "sealed"), 0);
	CHECK_EQ(status_field(r, "quarantined"), 0);
	vr_res_free(r);
	vr_backend_close(&b);
	if (check_failed > failed_before)
		fprintf(stderr, "  (the failures above: fault %s)\n", spec);
}

/*
 * A second open for writing while a failed load is still held open gets the
 * load's own error as a negative errno. It once came back positive, which
 * libfuse logged as "bad error value" and applications saw as ERANGE.
 */
static void failed_load_held_open(void)
{
	struct vr_backend_opt o[] = {{"capacity", "8M"}, {"fault", "write:1:enospc"}};
	struct vr_backend_params p = {.opts = o, .nopts = 2};
	struct vr_backend b;
	struct vr_residency *r;
	struct vr_handle *h1, *h2 = NULL;
	struct vr_attr a;

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(vr_res_create(r, "/f", 0644, &me, &h1), 0);
	CHECK_EQ(vr_res_write(r, h1, data, 4096, 0, &me), -ENOSPC);
	CHECK_EQ(vr_res_open(r, "/f", O_WRONLY, &me, &h2), -ENOSPC);
	CHECK_EQ(vr_res_open(r, "/f", O_WRONLY | O_TRUNC, &me, &h2), -ENOSPC);
	CHECK_EQ(vr_res_flush(r, h1, &me), -ENOSPC);
	vr_res_release(r, h1);
	CHECK_EQ(vr_res_getattr(r, "/f", &a), -ENOENT);
	vr_res_free(r);
	vr_backend_close(&b);
}

/*
 * A check that cannot run is not a mismatch: a device digest that fails
 * during verify fails the report but quarantines nothing, and the next check
 * passes. (It used to quarantine a file whose bytes were never compared.)
 */
static void check_error_is_not_mismatch(void)
{
	struct vr_backend_opt o[] = {{"capacity", "8M"}, {"fault", "digest:2:eio"}};
	struct vr_backend_params p = {.opts = o, .nopts = 2};
	struct vr_backend b;
	struct vr_residency *r;
	struct vr_handle *h;
	char text[4096];
	size_t got = 0, n;
	int ret;

	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys, .verify_on_open = true};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/a", 5000), 0);			   /* digest call 1: the seal */
	CHECK_EQ(vr_res_open(r, "/verify", O_RDONLY, &me, &h), 0); /* call 2 fails */
	do {
		ret = vr_res_read(r, h, text + got, sizeof(text) - 1 - got, got, &n);
		got += n;
	} while (ret == 0 && n > 0);
	text[got] = '\0';
	vr_res_release(r, h);
	CHECK_EQ(ret, -EIO);
	CHECK(strstr(text, "FAILED a could not be checked") != NULL);
	CHECK_EQ(status_field(r, "quarantined"), 0);
	CHECK_EQ(read_all(r, "/a", &got), 0); /* call 3, at the open: passes */
	CHECK_EQ(got, 5000);
	vr_res_free(r);
	vr_backend_close(&b);
}

/*
 * The core's generic paths for a backend the host cannot read in place (the CUDA backend's):
 * the mock with its optional operations taken away stands in. The SHA-256 is read back in
 * pieces (checked against a host hash of the bytes), the bytes held default to the size,
 * and the socket's map is refused (EOPNOTSUPP), audited, the file left as it was.
 */
static void backend_without_views(void)
{
	struct vr_backend_ops ops = vr_mock_ops;
	struct vr_backend_opt o[] = {{"capacity", "16M"}};
	struct vr_backend_params p = {.opts = o, .nopts = 1};
	struct vr_backend b;
	struct vr_residency *r;
	struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;
	struct vr_statfs sf;
	size_t got;
	const size_t len = sizeof(data) - 12345; /* not a whole number of pieces */

	ops.host_memory = false;
	ops.held = NULL;
	ops.export = NULL;
	CHECK_EQ(vr_backend_open(&ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys, .verify_on_open = true};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/a", len), 0);
	seal_is_true(r, "/a", len); /* its sha256 equals a host hash of the bytes */
	CHECK_EQ(read_all(r, "/a", &got), 0);
	CHECK_EQ(got, len);
	CHECK_EQ(vr_res_lease(r, "/a", &root, false, &l, &exp), -EOPNOTSUPP);
	CHECK_EQ(read_all(r, "/a", &got), 0);
	CHECK_EQ(vr_res_unlink(r, "/a", &me), 0);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.free_bytes, 16 << 20);
	vr_res_free(r);
	vr_backend_close(&b);
}

/* Loads text S into PATH; returns the close's result. */
static int load_text(struct vr_residency *r, const char *path, const char *s)
{
	struct vr_handle *h;
	int last, ret = vr_res_create(r, path, 0644, &me, &h);

	CHECK(sane(ret));
	if (ret)
		return ret;
	ret = vr_res_write(r, h, s, strlen(s), 0, &me);
	CHECK(sane(ret));
	DO(vr_res_flush(r, h, &me));
	vr_res_release(r, h);
	return ret ? ret : last;
}

/* The verify report of the root into TEXT; returns the read's result. */
static int verify_text(struct vr_residency *r, char *text, size_t cap)
{
	struct vr_handle *h;
	size_t got = 0, n;
	int ret = vr_res_open(r, "/verify", O_RDONLY, &me, &h);

	text[0] = '\0';
	if (ret)
		return ret;
	do {
		ret = vr_res_read(r, h, text + got, cap - 1 - got, got, &n);
		got += n;
	} while (ret == 0 && n > 0);
	text[got] = '\0';
	vr_res_release(r, h);
	return ret;
}

/*
 * A checksums.blake3 over a backend the host cannot read in place: the BLAKE3
 * is read back, at the source's arrival and at verify. A read that fails
 * anywhere (the seal's SHA-256, the source itself, the BLAKE3) is an I/O
 * error, never a mismatch: nothing is quarantined for it, and once the reads
 * work the file checks, unless its load or its source failed outright.
 */
static void blake3_read_faults(void)
{
	const size_t len = (2 << 20) + 777;
	char hex[2 * 32 + 1], list[128], spec[32], text[4096];
	uint8_t b3[32];

	vr_blake3_parallel(data, len, 2, b3);
	vr_hex(b3, 32, hex);
	snprintf(list, sizeof(list), "%s  a\n", hex);
	/* read 1: the source; 2 to 4: the BLAKE3 at its arrival, or (the last case: the file
	 * renamed under the source) the first verify's, which takes the BLAKE3 the seal lacks;
	 * then each verify's */
	for (int nth = 1; nth <= 13; nth++) {
		struct vr_backend_ops ops = vr_mock_ops;
		struct vr_backend_opt o[] = {{"capacity", "16M"}, {"fault", spec}};
		struct vr_backend_params p = {.opts = o, .nopts = 2};
		struct vr_backend b;
		struct vr_residency *r;

		snprintf(spec, sizeof(spec), "read:%d:eio", nth < 13 ? nth : 2);
		ops.host_memory = false; /* the SHA-256 hashed as written: reads are the BLAKE3's */
		CHECK_EQ(vr_backend_open(&ops, &p, &b), 0);
		struct vr_res_config cfg = {.backend = &b, .keys = keys, .verify_on_open = true};

		CHECK_EQ(vr_res_new(&cfg, &r), 0);
		int la = load(r, nth < 13 ? "/a" : "/elsewhere", len);
		int ls = load_text(r, "/checksums.blake3", list);

		if (nth == 13)
			CHECK_EQ(vr_res_rename(r, "/elsewhere", "/a", 0, &me), 0);
		int v1 = verify_text(r, text, sizeof(text)), v2 = v1;

		/* each verify reads the file back (3 reads): the fault is spent by the fifth */
		for (int i = 0; i < 4; i++) {
			CHECK(sane(v2));
			v2 = verify_text(r, text, sizeof(text));
		}
		CHECK_EQ(status_field(r, "quarantined"), 0);
		if (la == 0 && ls == 0 && !strstr(text, "cannot be read from the device")) {
			CHECK_EQ(v2, 0);
			CHECK(strstr(text, "OK a sha256:") != NULL);
		}
		vr_res_free(r);
		vr_backend_close(&b);
	}
}

/* Opens the mock with one option; returns vr_backend_open's result (closing what opened). */
static int open_with(const char *key, const char *value)
{
	struct vr_backend_opt o[] = {{"capacity", "8M"}, {key, value}};
	struct vr_backend_params p = {.opts = o, .nopts = 2};
	struct vr_backend b;
	int ret = vr_backend_open(&vr_mock_ops, &p, &b);

	if (ret == 0)
		vr_backend_close(&b);
	return ret;
}

/*
 * The mock's own options, as a test mount gives them: every bad one refused with -EINVAL
 * (or what the folder's trouble is), none half-opened; a chunk folder left by an earlier
 * run is emptied of its stale chunk files and of nothing else.
 */
static void mock_options(void)
{
	static const char *const bad_faults[] = {
	    "frob:1", "alloc", "alloc:0", "write:1:ebadf", "read:x", "alloc:1+digest", "+"};
	char dir[] = "/tmp/vr-mockopt-XXXXXX", path[300];

	for (size_t i = 0; i < sizeof(bad_faults) / sizeof(bad_faults[0]); i++)
		CHECK_EQ(open_with("fault", bad_faults[i]), -EINVAL);
	CHECK_EQ(open_with("fault", "alloc:1:enomem+write:2:enospc+read:3+digest:4:eio"), 0);
	CHECK_EQ(open_with("capacity", "lots"), -EINVAL);
	CHECK_EQ(open_with("capacity", "0"), -EINVAL);
	CHECK_EQ(open_with("capacity", "1500K"), -EINVAL); /* not whole MiB */
	CHECK_EQ(open_with("reserve", "2"), -EINVAL);
	/* the choice among backends: an unknown one is refused; auto always opens one */
	struct vr_backend_opt cap[] = {{"capacity", "8M"}};
	struct vr_backend_params cp = {.opts = cap, .nopts = 1};
	struct vr_device_info info;
	struct vr_backend b;

	CHECK_EQ(vr_backend_select("tpu", &cp, &b), -EINVAL);
	CHECK_EQ(vr_backend_select("auto", &cp, &b), 0);
	CHECK_EQ(vr_backend_info(&b, &info), 0);
	CHECK(strcmp(info.backend, "mock") == 0 || strcmp(info.backend, "cuda") == 0);
	vr_backend_close(&b);
	CHECK_EQ(open_with("reserve", "1"), 0);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/missing/deeper", dir);
	CHECK_EQ(open_with("vram", path), -ENOENT);
	snprintf(path, sizeof(path), "%s/file", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	CHECK_EQ(open_with("vram", path), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/loose", dir);
	CHECK_EQ(mkdir(path, 0700), 0);
	chmod(path, 0777);
	CHECK_EQ(open_with("vram", path), -EPERM);
	snprintf(path, sizeof(path), "%s/chunks", dir);
	CHECK_EQ(open_with("vram", path), 0); /* made */
	char stale[400], other[400];

	snprintf(stale, sizeof(stale), "%s/chunk-7", path);
	snprintf(other, sizeof(other), "%s/notes", path);
	close(open(stale, O_CREAT | O_WRONLY, 0600));
	close(open(other, O_CREAT | O_WRONLY, 0600));
	CHECK_EQ(open_with("vram", path), 0);
	CHECK(access(stale, F_OK) != 0);
	CHECK(access(other, F_OK) == 0);
	unlink(other);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/loose", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/file", dir);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	static const char *const kinds[] = {"alloc", "write", "read", "digest"};
	static const char *const errs[] = {"eio", "enospc", "enomem"};
	uint8_t secret[32] = {7};
	char spec[64];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + i / 4096);
	CHECK_EQ(vr_keyring_from_bytes(secret, 32, &keys), 0);
	failed_load_held_open();
	check_error_is_not_mismatch();
	mock_options();
	backend_without_views();
	blake3_read_faults();
	for (int k = 0; k < 4; k++)
		for (int e = 0; e < 3; e++)
			for (int nth = 1; nth <= 40; nth = nth < 4 ? nth + 1 : nth * 3) {
				snprintf(spec, sizeof(spec), "%s:%d:%s", kinds[k], nth, errs[e]);
				run(spec);
			}
	vr_keyring_free(keys);
	return check_summary();
}
