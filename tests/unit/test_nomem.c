/*
 * test_nomem.c - every host allocation, and every system call the mock makes for device
 * memory, failing one at a time.
 *
 * The program is linked with --wrap for malloc, calloc, realloc, strdup, strndup and
 * asprintf, and gives cJSON the same allocator, so the Nth allocation the core, the mock or
 * cJSON makes can be refused; and with --wrap for memfd_create, ftruncate, mmap, mremap,
 * madvise and posix_fallocate, so the Nth of the calls that take device memory on the mock
 * can fail as they do when the host runs out. Each scenario runs again with N = 1, 2, 3, ...
 * until a run makes no Nth call. Whatever fails, every result must be 0 or a negative errno
 * an application can be given, the tree must hold only whole, truly sealed files, the audit
 * log must be whole JSON lines on an unbroken chain, and removing everything must give all
 * device memory back. Leaks are found by the same program under ASan (CI's second pass).
 */
#include "audit.h"
#include "backends.h"
#include "check.h"
#include "digest.h"
#include "key.h"
#include "log.h"
#include "manifest.h"
#include "residency.h"
#include "tree_io.h"
#include "seal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VR_TEST_DATA
#define VR_TEST_DATA "tests/data"
#endif

/* ---- the failing allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **out, const char *fmt, ...);

static atomic_long countdown; /* > 0: armed; the allocation that takes it to 0 fails */
static atomic_long injected;  /* failures made */
static atomic_long sys_countdown, sys_injected; /* the same, for the mock's system calls */
static bool sys_mode; /* arm() arms the system calls, not the allocations */

static bool refuse_from(atomic_long *left, atomic_long *made)
{
	long c = atomic_load(left);

	while (c > 0)
		if (atomic_compare_exchange_weak(left, &c, c - 1)) {
			if (c == 1) {
				atomic_fetch_add(made, 1);
				return true;
			}
			return false;
		}
	return false;
}

static bool refuse(void)
{
	if (!refuse_from(&countdown, &injected))
		return false;
	errno = ENOMEM;
	return true;
}

/* Refuses the Nth system call with ERR (errno). */
static bool sys_refuse(int err)
{
	if (!refuse_from(&sys_countdown, &sys_injected))
		return false;
	errno = err;
	return true;
}

int __real_memfd_create(const char *name, unsigned flags);
int __real_ftruncate(int fd, off_t len);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mremap(void *old, size_t olen, size_t nlen, int flags, ...);
int __real_madvise(void *addr, size_t len, int advice);
int __real_posix_fallocate(int fd, off_t off, off_t len);
int __real_mlock(const void *addr, size_t len);
ssize_t __real_read(int fd, void *buf, size_t len);
int __real_fstat(int fd, struct stat *st);
int __wrap_memfd_create(const char *name, unsigned flags);
int __wrap_ftruncate(int fd, off_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mremap(void *old, size_t olen, size_t nlen, int flags, ...);
int __wrap_madvise(void *addr, size_t len, int advice);
int __wrap_posix_fallocate(int fd, off_t off, off_t len);
int __wrap_mlock(const void *addr, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);
int __wrap_fstat(int fd, struct stat *st);

int __wrap_memfd_create(const char *name, unsigned flags)
{
	return sys_refuse(EMFILE) ? -1 : __real_memfd_create(name, flags);
}

int __wrap_ftruncate(int fd, off_t len)
{
	return sys_refuse(ENOSPC) ? -1 : __real_ftruncate(fd, len);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return sys_refuse(ENOMEM) ? MAP_FAILED : __real_mmap(addr, len, prot, flags, fd, off);
}

void *__wrap_mremap(void *old, size_t olen, size_t nlen, int flags, ...)
{
	void *to = NULL;

	if (flags & MREMAP_FIXED) {
		va_list ap;

		va_start(ap, flags);
		to = va_arg(ap, void *);
		va_end(ap);
	}
	return sys_refuse(ENOMEM) ? MAP_FAILED : __real_mremap(old, olen, nlen, flags, to);
}

int __wrap_madvise(void *addr, size_t len, int advice)
{
	return sys_refuse(ENOMEM) ? -1 : __real_madvise(addr, len, advice);
}

int __wrap_posix_fallocate(int fd, off_t off, off_t len)
{
	return sys_refuse(ENOSPC) ? ENOSPC : __real_posix_fallocate(fd, off, len);
}

/* the key file's: a lock refused (RLIMIT_MEMLOCK), a read or a stat that fails */
int __wrap_mlock(const void *addr, size_t len)
{
	return sys_refuse(ENOMEM) ? -1 : __real_mlock(addr, len);
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	return sys_refuse(EIO) ? -1 : __real_read(fd, buf, len);
}

int __wrap_fstat(int fd, struct stat *st)
{
	return sys_refuse(EIO) ? -1 : __real_fstat(fd, st);
}

void *__wrap_malloc(size_t n)
{
	return refuse() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return refuse() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return refuse() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return refuse() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return refuse() ? NULL : __real_strndup(s, n);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (refuse()) {
		*out = NULL;
		return -1;
	}
	va_start(ap, fmt);
	ret = vasprintf(out, fmt, ap);
	va_end(ap);
	return ret;
}

static void arm(long nth)
{
	atomic_store(&injected, 0);
	atomic_store(&sys_injected, 0);
	atomic_store(sys_mode ? &sys_countdown : &countdown, nth);
}

/* Disarms; whether the run made its Nth call (so N + 1 is worth a run). */
static bool disarm(void)
{
	atomic_store(&countdown, 0);
	atomic_store(&sys_countdown, 0);
	return atomic_load(&injected) + atomic_load(&sys_injected) > 0;
}

/* ---- what a run may return ---- */

static long nth_now; /* the run's N, named when a check fails */

static int sane_at(int ret, int line)
{
	/* -EIO: a check could not complete (a seal that cannot be made is not "ok");
	 * -ENOSPC: the device had no room for a load */
	if (ret == 0 || ret == -ENOMEM || ret == -EIO || ret == -ENOENT ||
	    (sys_mode && ret == -ENOSPC))
		return 1;
	fprintf(stderr, "call %ld refused: unexpected result %d at line %d\n", nth_now, ret, line);
	return 0;
}

#define sane(ret) sane_at(ret, __LINE__)
#define DO(expr)                                                                                   \
	do {                                                                                       \
		int do_ret_ = (expr);                                                              \
		CHECK(sane(do_ret_));                                                              \
	} while (0)

static struct vr_caller me = {.uid = 0, .gid = 0, .pid = 1, .tgid = 1};
static struct vr_keyring *keys;
static struct vr_trust *trust;
static uint8_t data[300000];
static char tmpdir[] = "/tmp/vr-nomem-XXXXXX";
static char logpath[300], statepath[310];
static uint8_t k0[32];

static int load(struct vr_residency *r, const char *path, const void *bytes, size_t len)
{
	struct vr_handle *h;
	int ret = vr_res_create(r, path, 0644, &me, &h);

	if (ret)
		return ret;
	for (size_t off = 0; off < len && ret == 0; off += 65536)
		ret = vr_res_write(r, h, (const uint8_t *)bytes + off,
				   len - off < 65536 ? len - off : 65536, off, &me);
	int fl = vr_res_flush(r, h, &me);

	vr_res_release(r, h);
	return ret ? ret : fl;
}

static int slurp(struct vr_residency *r, const char *path, char *buf, size_t cap, size_t *len)
{
	return tree_slurp(r, &me, path, buf, cap, len);
}

static int count(void *ctx, const char *name, const struct vr_attr *a)
{
	(void)name;
	(void)a;
	++*(int *)ctx;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = __real_malloc(1 << 20);

	*len = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
	if (f)
		fclose(f);
	return buf;
}

/* what the tree is given: a checked model (OMS), a SHA256SUMS, plain files */
static const char *const oms_files[] = {"model.sig", "signme-1", "signme-2", "ignore-me"};
static char *oms_data[4];
static size_t oms_len[4];
/* OMS 1.1: the certificate-signed vector, and a shards statement in certificate mode with a
 * file it lists */
static char *cert_sig, *shards_sig, *shards_file;
static size_t cert_len, shards_len, shards_file_len;
#define ABC_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
static const char sums[] = ABC_SHA "  a\n" ABC_SHA "  gone\n";

/* The expected content of PATH, if it is one of the script's files. */
static bool expected(const char *path, const void **bytes, size_t *len)
{
	static const struct {
		const char *path;
		size_t len;
	} plain[] = {
	    {"/d/a", sizeof(data)}, {"/d/b", 5000}, {"/b", 5000}, {"/empty", 0}, {"/t", 3000}};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (strcmp(path, plain[i].path) == 0) {
			*bytes = data;
			*len = plain[i].len;
			return true;
		}
	if (strcmp(path, "/s/a") == 0) {
		*bytes = "abc";
		*len = 3;
		return true;
	}
	if (strcmp(path, "/s/SHA256SUMS") == 0) {
		*bytes = sums;
		*len = strlen(sums);
		return true;
	}
	for (int i = 0; i < 4; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/m/%s", oms_files[i]);
		if (strcmp(path, p) == 0) {
			*bytes = oms_data[i];
			*len = oms_len[i];
			return true;
		}
	}
	return false;
}

/* Whether verify of the source's directory says it was refused for want of memory. */
static bool source_refused_oom(struct vr_residency *r, const char *path)
{
	static char text[8192], want[300];
	char dir[64];
	size_t got;
	const char *slash = strrchr(path, '/');

	if (!strstr(path, "model.sig") && !strstr(path, "SHA256SUMS"))
		return false;
	snprintf(dir, sizeof(dir), "%.*s/verify", (int)(slash - path), path);
	slurp(r, dir, text, sizeof(text) - 1, &got);
	text[got] = '\0';
	snprintf(want, sizeof(want), "FAILED %s out of memory\n", path + 1);
	return strstr(text, want) != NULL;
}

/* A file that is there holds exactly its bytes, and its seal (if any) is true to them. */
static void whole_or_absent(struct vr_residency *r, const char *path)
{
	static char buf[sizeof(data) + 1], text[8192];
	const void *want;
	size_t want_len, got;
	struct vr_attr a;
	struct vr_seal seal;
	char sp[80];
	uint8_t sha[32];

	if (vr_res_getattr(r, path, &a) != 0)
		return;
	if (!expected(path, &want, &want_len)) {
		CHECK(0);
		return;
	}
	int ret = slurp(r, path, buf, sizeof(buf), &got);

	if (ret == -EIO && source_refused_oom(r, path))
		return; /* fail closed, and says why: a copy again applies it */
	if (ret) {
		fprintf(stderr, "call %ld refused: %s reads %d\n", nth_now, path, ret);
		slurp(r, "/verify", buf, sizeof(buf) - 1, &got);
		buf[got] = 0;
		fprintf(stderr, "%s\n", buf);
	}
	CHECK_EQ(ret, 0);
	CHECK_EQ(got, want_len);
	CHECK(got == want_len && memcmp(buf, want, got) == 0);
	snprintf(sp, sizeof(sp), "%s.seal", path);
	if (slurp(r, sp, text, sizeof(text), &got) == 0) {
		CHECK_EQ(vr_seal_parse(text, got, &seal, NULL), 0);
		CHECK_EQ(vr_seal_verify(&seal, keys), 0);
		CHECK_EQ(seal.size, want_len);
		vr_sha256(want, want_len, sha);
		if (!seal.no_sha256)
			CHECK_MEM(seal.sha256, sha, 32);
	}
}

/* Every line of the audit log is whole and on the chain from K(0). */
static void log_is_whole(void)
{
	FILE *f = fopen(logpath, "r");
	static char line[4096];
	struct vr_audit_chain c;
	char why[160];
	int n = 0;

	CHECK(f != NULL);
	if (!f)
		return;
	vr_audit_chain_init(&c, k0);
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);

		CHECK(len > 0 && line[len - 1] == '\n');
		if (vr_audit_chain_next(&c, line, len, why, sizeof(why)) != 0) {
			fprintf(stderr, "call %ld refused: audit record %d: %s\n", nth_now, n, why);
			CHECK(0);
			break;
		}
		n++;
	}
	fclose(f);
}

/* ---- the scenarios ---- */

/* vram=: the mock keeps its chunks as files in this folder ("": memfds) */
static char chunk_dir[300];

/* The descriptors this process holds now. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* The mock opened with reserve=1 (its whole capacity taken at once, as pooled chunks): a
 * failure anywhere leaves no descriptor or memory behind. */
static bool reserve_run(long nth)
{
	struct vr_backend_opt o[] = {{"capacity", "8M"}, {"reserve", "1"}};
	struct vr_backend_params p = {.opts = o, .nopts = 2};
	struct vr_backend b;
	int fds = open_fds();
	bool hit;

	arm(nth);
	int ret = vr_backend_open(&vr_mock_ops, &p, &b);

	hit = disarm();
	CHECK(sane(ret));
	if (ret == 0)
		vr_backend_close(&b);
	CHECK_EQ(open_fds(), fds);
	return hit;
}

/* The tree: loads (plain, SHA256SUMS, a signed model), reads, verify, status, metrics, a
 * rename, a symlink, a truncated load, an exported lease; then checked and emptied. */
static bool tree_run(long nth)
{
	struct vr_backend_opt o[] = {{"capacity", "16M"}, {"vram", chunk_dir}};
	struct vr_backend_params p = {.opts = o, .nopts = chunk_dir[0] ? 2 : 1};
	struct vr_backend b;
	struct vr_residency *r = NULL;
	struct vr_audit *audit = NULL;
	struct vr_handle *h;
	struct vr_statfs sf;
	static char buf[sizeof(data) + 1];
	size_t got;
	char *text;
	bool hit;

	unlink(logpath);
	unlink(statepath); /* a new chain each run, from seq 0 */
	CHECK_EQ(vr_audit_open(logpath, &audit), 0);
	CHECK_EQ(vr_audit_chain_start(audit, k0), 0);
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b,
				    .keys = keys,
				    .audit = audit,
				    .verify_on_open = true,
				    .list_generated = true,
				    .trust = trust,
				    .socket_path = "/run/vram.sock"};

	arm(nth);
	int ret = vr_res_new(&cfg, &r);

	CHECK(sane(ret));
	if (ret) {
		hit = disarm();
		goto out;
	}
	DO(vr_res_mkdir(r, "/d", 0755, &me));
	DO(load(r, "/d/a", data, sizeof(data)));
	DO(load(r, "/b", data, 5000));
	DO(load(r, "/empty", data, 0));
	DO(vr_res_mkdir(r, "/s", 0755, &me));
	DO(load(r, "/s/SHA256SUMS", sums, strlen(sums)));
	DO(load(r, "/s/a", "abc", 3));
	DO(vr_res_mkdir(r, "/m", 0755, &me));
	for (int i = 0; i < 4; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/m/%s", oms_files[i]);
		DO(load(r, path, oms_data[i], oms_len[i]));
	}
	DO(slurp(r, "/d/a", buf, sizeof(buf), &got));
	DO(slurp(r, "/verify", buf, sizeof(buf), &got));
	DO(slurp(r, "/s/verify", buf, sizeof(buf), &got));
	DO(slurp(r, "/m/verify", buf, sizeof(buf), &got));
	DO(slurp(r, "/status", buf, sizeof(buf), &got));
	DO(slurp(r, "/d/a.seal", buf, sizeof(buf), &got));
	DO(vr_res_rename(r, "/b", "/d/b", 0, &me));
	DO(vr_res_symlink(r, "d/a", "/l", &me));
	if (vr_res_create(r, "/t", 0644, &me, &h) == 0) {
		DO(vr_res_write(r, h, data, 70000, 0, &me));
		DO(vr_res_ftruncate(r, h, 1000, &me));
		DO(vr_res_write(r, h, data + 1000, 2000, 1000, &me));
		DO(vr_res_flush(r, h, &me));
		vr_res_release(r, h);
	}
	int entries = 0;

	if (vr_res_opendir(r, "/d", &h) == 0) {
		DO(vr_res_readdir(r, h, count, &entries));
		vr_res_release(r, h);
	}
	struct vr_peer peer = {.uid = 0, .gid = 0, .pid = 1};
	struct vr_dev_export exp = {0};
	struct vr_lease *l;

	if (vr_res_lease(r, "/d/a", &peer, true, &l, &exp) == 0) {
		char why[128];

		DO(vr_res_lease_verify(r, l, why, sizeof(why)));
		vr_dev_export_clear(&exp);
		vr_res_lease_end(r, l);
	}
	if (vr_res_status(r, &text, &got) == 0)
		free(text);
	if (vr_res_metrics(r, &text, &got) == 0)
		free(text);
	hit = disarm();

	/* what is there is whole and true; then everything goes, and all memory comes back */
	static const char *const files[] = {"/d/a", "/d/b", "/b",	    "/empty",
					    "/t",   "/s/a", "/s/SHA256SUMS"};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		whole_or_absent(r, files[i]);
	for (int i = 0; i < 4; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/m/%s", oms_files[i]);
		whole_or_absent(r, path);
		vr_res_unlink(r, path, &me);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		vr_res_unlink(r, files[i], &me);
	vr_res_unlink(r, "/l", &me);
	vr_res_rmdir(r, "/d", &me);
	vr_res_rmdir(r, "/s", &me);
	vr_res_rmdir(r, "/m", &me);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.files, 0);
	CHECK_EQ(sf.free_bytes, 16 << 20);
out:
	vr_res_free(r);
	vr_backend_close(&b);
	vr_audit_close(audit);
	log_is_whole();
	return hit;
}

/* A seal: signed, printed, parsed back and verified. */
static bool seal_run(long nth)
{
	struct vr_seal s = {0}, back;
	char *json = NULL;
	bool hit;

	s.version = 2;
	s.size = 12345;
	snprintf(s.path, sizeof(s.path), "m/w.bin");
	snprintf(s.device.uuid, sizeof(s.device.uuid), "GPU-00000000-0000-0000-0000-000000000000");
	snprintf(s.device.name, sizeof(s.device.name), "mock");
	snprintf(s.device.backend, sizeof(s.device.backend), "mock");
	vr_seal_now(s.sealed_at);
	arm(nth);
	int ret = vr_seal_sign(&s, keys);

	if (ret == 0)
		ret = vr_seal_to_json(&s, &json);
	if (ret == 0)
		ret = vr_seal_parse(json, strlen(json), &back, NULL);
	if (ret == 0)
		ret = vr_seal_verify(&back, keys);
	hit = disarm();
	if (!sane(ret))
		fprintf(stderr, "  (seal)\n");
	CHECK(sane(ret));
	if (!hit)
		CHECK_EQ(ret, 0);
	free(json);
	return hit;
}

/* Publishers' digests and keys: SHA256SUMS, the trust file, an OMS bundle, a secret file. */
static bool manifest_run(long nth)
{
	struct vr_manifest *m = NULL;
	struct vr_trust *t = NULL;
	struct vr_keyring *k = NULL;
	char why[VR_WHY_MAX], secret[300];
	bool hit;

	snprintf(secret, sizeof(secret), "%s/secret", tmpdir);
	arm(nth);
	int r1 = vr_sums_parse(sums, strlen(sums), &m, why);

	vr_manifest_free(m);
	m = NULL;
	int r2 = vr_trust_load(VR_TEST_DATA "/oms/signing-key-pub.pem", &t, why);
	int r3 = r2 ? 0 : vr_oms_verify(oms_data[0], oms_len[0], t, &m, why);
	int r4 = vr_keyring_load(secret, &k);
	struct vr_trust *roots = NULL;
	struct vr_manifest *ms = NULL;
	int r5 = vr_trust_load(VR_TEST_DATA "/oms/certificate-ca-cert.pem", &roots, why);

	vr_manifest_free(m);
	m = NULL;
	if (r5 == 0)
		r5 = vr_oms_verify(cert_sig, cert_len, roots, &m, why);
	int r6 = r5 ? 0 : vr_oms_verify(shards_sig, shards_len, roots, &ms, why);

	if (r5 == 0 && r6 == 0) {
		const struct vr_manifest_entry *e = vr_manifest_find(ms, "weights.bin");

		r6 = e ? vr_manifest_check_bytes(ms, e, (const uint8_t *)shards_file,
						 shards_file_len, why)
		       : -ENOENT;
	}
	hit = disarm();
	vr_manifest_free(m);
	vr_manifest_free(ms);
	vr_trust_free(roots);
	vr_trust_free(t);
	vr_keyring_free(k);
	CHECK(sane(r1) && sane(r2) && sane(r4));
	/* a signature that could not be checked for want of memory is refused, not passed */
	if (!(r3 == 0 || r3 == -ENOMEM || r3 == -EBADMSG || r3 == -EPERM))
		fprintf(stderr, "call %ld refused: oms %d: %s\n", nth_now, r3, why);
	CHECK(r3 == 0 || r3 == -ENOMEM || r3 == -EBADMSG || r3 == -EPERM);
	/* the certificate mode, shards and their bytes: out of memory says so, never "bad" */
	/* (or the trust file's read failed: -EIO, when system calls fail) */
	bool ok5 = r5 == 0 || r5 == -ENOMEM || (sys_mode && r5 == -EIO);

	if (!ok5 || !(r6 == 0 || r6 == -ENOMEM))
		fprintf(stderr, "call %ld refused: certificate %d, shards %d: %s\n", nth_now, r5,
			r6, why);
	CHECK(ok5);
	CHECK(r6 == 0 || r6 == -ENOMEM);
	if (!hit)
		CHECK(r1 == 0 && r2 == 0 && r3 == 0 && r4 == 0 && r5 == 0 && r6 == 0);
	return hit;
}

static long shard, shards = 1; /* this process refuses the Nth call where N % shards == shard */

static void sweep(const char *name, bool (*run)(long))
{
	long nth = shard ? shard : shards, runs = 0;
	int before = check_failed;

	/* the first N past the calls a run makes is a run with nothing refused: the end */
	for (;; nth += shards) {
		nth_now = nth;
		runs++;
		if (!run(nth))
			break;
	}
	printf("%s: %ld runs, %s %ld to %ld refused in turn, every %ld%s\n", name, runs,
	       sys_mode ? "system call" : "allocation", shard ? shard : shards, nth - shards,
	       shards, check_failed > before ? " (FAILURES)" : "");
}

int main(int argc, char **argv)
{
	uint8_t secret[32] = {7};
	char why[VR_WHY_MAX], path[300];
	cJSON_Hooks hooks = {__wrap_malloc, free};

	/* "K/M": one of M processes that share the sweeps (CTest runs them side by side) */
	if (argc > 1 && (sscanf(argv[1], "%ld/%ld", &shard, &shards) != 2 || shards < 1 ||
			 shard < 0 || shard >= shards)) {
		fprintf(stderr, "usage: test_nomem [K/M], 0 <= K < M\n");
		return 2;
	}
	cJSON_InitHooks(&hooks);
	vr_log_set_level(LOG_ERR);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + i / 4096);
	CHECK(mkdtemp(tmpdir) != NULL);
	snprintf(logpath, sizeof(logpath), "%s/audit.log", tmpdir);
	snprintf(statepath, sizeof(statepath), "%s.chain", logpath);
	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	CHECK(fd >= 0 && write(fd, secret, sizeof(secret)) == (ssize_t)sizeof(secret));
	close(fd);
	CHECK_EQ(vr_keyring_from_bytes(secret, 32, &keys), 0);
	vr_audit_key0(keys, k0);
	CHECK_EQ(vr_trust_load(VR_TEST_DATA "/oms/signing-key-pub.pem", &trust, why), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), VR_TEST_DATA "/oms/v1.1.0-elliptic-key/%s",
			 oms_files[i]);
		oms_data[i] = read_file(path, &oms_len[i]);
		CHECK(oms_data[i] != NULL);
	}
	cert_sig = read_file(VR_TEST_DATA "/oms/v1.1.0-certificate/model.sig", &cert_len);
	shards_sig = read_file(VR_TEST_DATA "/oms/v1.1-shards-certificate/model.sig", &shards_len);
	shards_file =
	    read_file(VR_TEST_DATA "/oms/v1.1-shards-certificate/weights.bin", &shards_file_len);
	CHECK(cert_sig && shards_sig && shards_file);
	sweep("seal", seal_run);
	sweep("manifests and keys", manifest_run);
	sweep("tree", tree_run);
	sys_mode = true;
	sweep("tree, the mock's system calls failing", tree_run);
	sweep("manifests and keys, system calls failing", manifest_run);
	sweep("the mock's reserve=1, system calls failing", reserve_run);
	/* the tree again with its chunks as files in a folder (the tests' mock_vram=) */
	snprintf(chunk_dir, sizeof(chunk_dir), "%s/chunks", tmpdir);
	sweep("tree over a chunk folder, system calls failing", tree_run);
	CHECK_EQ(rmdir(chunk_dir), 0); /* every chunk file went with its file */
	for (int i = 0; i < 4; i++)
		free(oms_data[i]);
	free(cert_sig);
	free(shards_sig);
	free(shards_file);
	vr_trust_free(trust);
	vr_keyring_free(keys);
	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	unlink(path);
	unlink(logpath);
	unlink(statepath);
	rmdir(tmpdir);
	return check_summary();
}
