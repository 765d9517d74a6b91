/* vram-seal.c - offline tool: digests of files, checks of seals, expected-digest manifests. */
#include "audit.h"
#include "digest.h"
#include "key.h"
#include "log.h"
#include "manifest.h"
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/memops.h>

static const char usage_main[] =
    "usage: vram-seal {digest|verify|manifest|verify-model|audit-verify|--help|--version} ...\n";
static const char usage_digest[] = "usage: vram-seal digest [-j THREADS] FILE...\n";
static const char usage_verify[] = "usage: vram-seal verify --secret SECRETFILE SEAL [DATAFILE]\n";
static const char usage_manifest[] = "usage: vram-seal manifest DIR\n";
static const char usage_model[] = "usage: vram-seal verify-model --trust KEY DIR\n";
static const char usage_audit[] =
    "usage: vram-seal audit-verify --key AUDIT_KEY [--expect-seq N] LOG...\n";

static void help_main(void)
{
	printf("%s\n"
	       "  digest FILE...     print the fs-verity file digest of each FILE, as\n"
	       "                     'fsverity digest' prints it: sha256:<hex> FILE\n"
	       "  verify --secret SECRETFILE SEAL [DATAFILE]\n"
	       "                     check SEAL's signature with the master secret and,\n"
	       "                     given DATAFILE, its size, sha256 and fs-verity digest\n"
	       "  manifest DIR       print the SHA256SUMS of every file below DIR\n"
	       "  verify-model --trust KEY DIR\n"
	       "                     check DIR's model.sig (OpenSSF model signing) with\n"
	       "                     KEY, then every file against it, as the daemon does\n"
	       "  audit-verify --key AUDIT_KEY [--expect-seq N] LOG...\n"
	       "                     check the audit log's hash chain, naming the first\n"
	       "                     bad record\n"
	       "Run 'vram-seal COMMAND --help' for a command's options.\n",
	       usage_main);
}

/* Maps FD (SIZE bytes, may be 0) read-only; returns 0 or -errno. */
static int map_file(int fd, size_t size, const void **out)
{
	void *p;

	if (size == 0) {
		*out = "";
		return 0;
	}
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* advice only: a refusal costs speed, not correctness */
	(void)madvise(p, size, MADV_SEQUENTIAL | MADV_WILLNEED);
	*out = p;
	return 0;
}

/* Computes both digests of the file at PATH; returns 0 or -errno, having said why. */
static int digest_file(const char *path, unsigned threads, uint64_t *size, uint8_t sha[32],
		       uint8_t fsv[32])
{
	struct stat st;
	const void *data = NULL;
	int fd, ret;

	/* O_NONBLOCK: a FIFO is refused below instead of waiting for a writer */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "vram-seal: cannot open %s: %s\n", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		fprintf(stderr, "vram-seal: %s: %s\n", path, strerror(-ret));
		goto close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		fprintf(stderr, "vram-seal: %s: not a regular file\n", path);
		goto close_fd;
	}
	ret = map_file(fd, (size_t)st.st_size, &data);
	if (ret) {
		fprintf(stderr, "vram-seal: cannot map %s: %s\n", path, strerror(-ret));
		goto close_fd;
	}
	struct vr_span span = {data, (size_t)st.st_size};

	if (sha)
		ret = vr_digest_both_spans(&span, 1, threads, sha, fsv);
	else
		ret = vr_fsv_digest_spans(&span, 1, threads, fsv);
	if (ret)
		fprintf(stderr, "vram-seal: digest of %s failed: %s\n", path, strerror(-ret));
	*size = (uint64_t)st.st_size;
	if (st.st_size > 0)
		munmap((void *)data, (size_t)st.st_size);
close_fd:
	close(fd);
	return ret;
}

static int cmd_digest(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"threads", required_argument, NULL, 'j'},
					     {NULL, 0, NULL, 0}};
	unsigned threads = 0;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "+hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("%s  -j, --threads N  hash on N threads (default: all CPUs)\n"
			       "Prints sha256:<hex> FILE per file, as 'fsverity digest' does.\n",
			       usage_digest);
			return 0;
		case 'j': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 1 || v > 256) {
				fprintf(stderr, "vram-seal: bad thread count '%s'\n%s", optarg,
					usage_digest);
				return 2;
			}
			threads = (unsigned)v;
			break;
		}
		default:
			fputs(usage_digest, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage_digest, stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		uint8_t fsv[32];
		char hex[65];
		uint64_t size;

		if (digest_file(argv[i], threads, &size, NULL, fsv) != 0) {
			status = 1;
			continue;
		}
		vr_hex(fsv, 32, hex);
		printf("sha256:%s %s\n", hex, argv[i]);
	}
	return status;
}

/* Reads a whole small file into a malloc'd buffer; returns 0 or -errno. */
static int slurp(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	fclose(f);
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "vram-seal: FAILED: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"secret", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	const char *secret = NULL, *why = NULL;
	struct vr_keyring *keys = NULL;
	struct vr_seal *seal;
	char *text = NULL;
	size_t len = 0;
	int c, ret, status = 1;

	while ((c = getopt_long(argc, argv, "+hs:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf(
			    "%s  --secret FILE  the daemon's master secret (mode 0600)\n"
			    "Exits 0 only when the signature holds and, with DATAFILE, its size,\n"
			    "sha256 and fs-verity digest equal the seal's; else prints one "
			    "reason.\n",
			    usage_verify);
			return 0;
		case 's':
			secret = optarg;
			break;
		default:
			fputs(usage_verify, stderr);
			return 2;
		}
	}
	if (!secret || argc - optind < 1 || argc - optind > 2) {
		fputs(usage_verify, stderr);
		return 2;
	}
	const char *seal_path = argv[optind], *data_path = argv[optind + 1];

	ret = slurp(seal_path, VR_SEAL_JSON_MAX, &text, &len);
	if (ret)
		return fail("cannot read seal %s: %s", seal_path,
			    ret == -EFBIG ? "larger than 64 KiB" : strerror(-ret));
	seal = malloc(sizeof(*seal));
	if (!seal) {
		free(text);
		return fail("%s%s", "out of memory", "");
	}
	ret = vr_seal_parse(text, len, seal, &why);
	free(text);
	if (ret) {
		status = fail("malformed seal %s: %s", seal_path, why ? why : strerror(-ret));
		goto free_seal;
	}
	if (vr_keyring_load(secret, &keys) != 0) {
		status = fail("cannot use secret file %s%s", secret, " (see the message above)");
		goto free_seal;
	}
	ret = vr_seal_verify(seal, keys);
	if (ret) {
		status = fail("%s: %s", seal_path,
			      ret == -EBADMSG ? "signature does not match (forged or altered seal, "
						"or another secret or device)"
					      : "seal cannot be checked");
		goto free_keys;
	}
	if (data_path) {
		uint8_t sha[32], fsv[32];
		uint64_t size = 0;

		if (digest_file(data_path, 0, &size, sha, fsv) != 0) {
			status = fail("cannot digest %s%s", data_path, "");
			goto free_keys;
		}
		if (size != seal->size) {
			status = fail("%s: size differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		if (!seal->no_sha256 && !memeql_sec(sha, seal->sha256, 32)) {
			status = fail("%s: sha256 differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		if (!memeql_sec(fsv, seal->fsverity, 32)) {
			status =
			    fail("%s: fs-verity digest differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		printf("OK: %s: signature valid; %s matches size, %sfs-verity digest\n", seal_path,
		       data_path,
		       seal->no_sha256 ? "(no sha256: sealed with sha256=off) " : "sha256 and ");
	} else {
		printf("OK: %s: signature valid for %s\n", seal_path, seal->path);
	}
	status = 0;
free_keys:
	vr_keyring_free(keys);
free_seal:
	free(seal);
	return status;
}

/* ---- manifest and verify-model: every file below a directory, hashed on all cores ---- */

struct tree_file {
	char *rel; /* relative to the directory, '/'-separated */
	uint8_t sha[32];
	int err;
};

static struct {
	struct tree_file *v;
	size_t n, cap;
	size_t root_len;
	int err;
} walk;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0; /* directories, FIFOs, devices; links are not followed (nor listed) */
	if (walk.n == walk.cap) {
		size_t ncap = walk.cap ? 2 * walk.cap : 64;
		struct tree_file *nv = realloc(walk.v, ncap * sizeof(*nv));

		if (!nv) {
			walk.err = -ENOMEM;
			return 1;
		}
		walk.v = nv;
		walk.cap = ncap;
	}
	walk.v[walk.n] = (struct tree_file){.rel = strdup(path + walk.root_len + 1)};
	if (!walk.v[walk.n].rel) {
		walk.err = -ENOMEM;
		return 1;
	}
	walk.n++;
	return 0;
}

static int by_rel(const void *a, const void *b)
{
	return strcmp(((const struct tree_file *)a)->rel, ((const struct tree_file *)b)->rel);
}

/* Lists the regular files below DIR into walk, sorted; returns 0 or -errno, having said why. */
static int list_files(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vram-seal: %s: %s\n", dir,
			errno && !S_ISDIR(st.st_mode) ? "not a directory" : strerror(errno));
		return -ENOTDIR;
	}
	walk.root_len = strlen(dir);
	while (walk.root_len > 1 && dir[walk.root_len - 1] == '/')
		walk.root_len--;
	if (nftw(dir, walk_one, 64, FTW_PHYS) != 0 || walk.err) {
		fprintf(stderr, "vram-seal: cannot list %s: %s\n", dir,
			strerror(walk.err ? -walk.err : errno));
		return walk.err ? walk.err : -errno;
	}
	if (walk.n > 1)
		qsort(walk.v, walk.n, sizeof(*walk.v), by_rel);
	return 0;
}

static void free_files(void)
{
	for (size_t i = 0; i < walk.n; i++)
		free(walk.v[i].rel);
	free(walk.v);
	memset(&walk, 0, sizeof(walk));
}

struct hash_pool {
	const char *dir;
	atomic_size_t next;
};

/* Hashes the files of the pool, one file per turn, until none is left. */
static void *hash_worker(void *arg)
{
	struct hash_pool *p = arg;
	char path[PATH_MAX];

	for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < walk.n;) {
		struct tree_file *f = &walk.v[i];
		const void *data = NULL;
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", p->dir, f->rel);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) != 0) {
			f->err = -errno;
		} else if ((f->err = map_file(fd, (size_t)st.st_size, &data)) == 0) {
			vr_sha256(data, (size_t)st.st_size, f->sha);
			if (st.st_size > 0)
				munmap((void *)data, (size_t)st.st_size);
		}
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* SHA-256 of every listed file, the files spread over every CPU. */
static void hash_files(const char *dir)
{
	unsigned n = vr_cpu_count();
	pthread_t t[256];
	struct hash_pool pool = {.dir = dir};
	unsigned started = 0;

	if (n > 256)
		n = 256;
	if (n > walk.n)
		n = (unsigned)walk.n;
	for (; started < n; started++)
		if (pthread_create(&t[started], NULL, hash_worker, &pool) != 0)
			break;
	if (started == 0)
		hash_worker(&pool);
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

/* Prints NAME as sha256sum does: a leading '\' when it holds '\' or a newline, escaped. */
static void print_sum(const uint8_t sha[32], const char *name)
{
	char hex[65];
	bool esc = strpbrk(name, "\\\n") != NULL;

	vr_hex(sha, 32, hex);
	printf("%s%s  ", esc ? "\\" : "", hex);
	for (const char *c = name; *c; c++) {
		if (esc && *c == '\\')
			fputs("\\\\", stdout);
		else if (esc && *c == '\n')
			fputs("\\n", stdout);
		else
			putchar(*c);
	}
	putchar('\n');
}

static int cmd_manifest(int argc, char **argv)
{
	int status = 0;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("%sPrints the SHA-256 of every regular file below DIR (but a SHA256SUMS),\n"
		       "names relative to DIR, sorted, as sha256sum writes them, hashing on all\n"
		       "CPUs. vram-seal manifest DIR > DIR/SHA256SUMS makes the file the daemon\n"
		       "checks that directory against.\n",
		       usage_manifest);
		return 0;
	}
	if (argc != 2) {
		fputs(usage_manifest, stderr);
		return 2;
	}
	if (list_files(argv[1]) != 0) {
		free_files();
		return 1;
	}
	hash_files(argv[1]);
	for (size_t i = 0; i < walk.n; i++) {
		const struct tree_file *f = &walk.v[i];

		if (strcmp(f->rel, VR_SUMS_NAME) == 0)
			continue;
		if (f->err) {
			fprintf(stderr, "vram-seal: cannot read %s/%s: %s\n", argv[1], f->rel,
				strerror(-f->err));
			status = 1;
			continue;
		}
		print_sum(f->sha, f->rel);
	}
	free_files();
	return status;
}

/* Reads DIR/model.sig and checks it with the keys in TRUST_PATH; prints why not. */
static int load_signature(const char *dir, const char *trust_path, struct vr_manifest **m)
{
	char path[PATH_MAX], why[VR_WHY_MAX];
	struct vr_trust *trust = NULL;
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (vr_trust_load(trust_path, &trust, why) != 0) {
		fprintf(stderr, "vram-seal: --trust %s\n", why);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, VR_OMS_NAME);
	ret = slurp(path, VR_MANIFEST_MAX_BYTES, &text, &len);
	if (ret) {
		printf("FAILED %s %s\n", VR_OMS_NAME,
		       ret == -EFBIG ? "larger than 16 MiB" : strerror(-ret));
	} else {
		ret = vr_oms_verify(text, len, trust, m, why);
		if (ret)
			printf("FAILED %s %s\n", VR_OMS_NAME, why);
		free(text);
	}
	vr_trust_free(trust);
	return ret ? 1 : 0;
}

static int cmd_verify_model(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"trust", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	const char *trust = NULL;
	struct vr_manifest *m = NULL;
	unsigned failed = 0;
	int c, ret;

	while ((c = getopt_long(argc, argv, "+ht:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("%s  --trust KEY  public key (PEM) or directory of *.pem files\n"
			       "Checks DIR/model.sig with the same code as the daemon, then every\n"
			       "file below DIR against it. Prints OK, FAILED, MISSING and\n"
			       "UNEXPECTED lines as the daemon's verify does; exits 0 only when\n"
			       "every listed file is present with its signed digest and no\n"
			       "unsigned file is there.\n",
			       usage_model);
			return 0;
		case 't':
			trust = optarg;
			break;
		default:
			fputs(usage_model, stderr);
			return 2;
		}
	}
	if (!trust || argc - optind != 1) {
		fputs(usage_model, stderr);
		return 2;
	}
	const char *dir = argv[optind];

	ret = load_signature(dir, trust, &m);
	if (ret)
		return ret;
	if (list_files(dir) != 0) {
		vr_manifest_free(m);
		free_files();
		return 1;
	}
	hash_files(dir);
	/* present files, then the listed ones that are not there, in path order */
	size_t next = 0;

	for (size_t i = 0; i <= walk.n; i++) {
		const char *rel = i < walk.n ? walk.v[i].rel : NULL;

		/* listed entries sorting before this file are missing */
		for (; next < m->count && (!rel || strcmp(m->entries[next].name, rel) < 0);
		     next++) {
			printf("MISSING %s listed in %s\n", m->entries[next].name, VR_OMS_NAME);
			failed++;
		}
		if (!rel)
			break;
		const struct tree_file *f = &walk.v[i];
		const struct vr_manifest_entry *e = vr_manifest_find(m, rel);
		char hex[65];

		if (e && next < m->count && strcmp(m->entries[next].name, rel) == 0)
			next++;
		vr_hex(f->sha, 32, hex);
		if (f->err) {
			printf("FAILED %s cannot be read: %s\n", rel, strerror(-f->err));
			failed++;
		} else if (e && !memeql_sec(e->sha256, f->sha, 32)) {
			printf("FAILED %s sha256 differs from %s\n", rel, VR_OMS_NAME);
			failed++;
		} else if (e) {
			printf("OK %s sha256:%s\n", rel, hex);
		} else if (strcmp(rel, VR_OMS_NAME) == 0) {
			printf("OK %s signature verified, key %s\n", rel, m->key_hint);
		} else if (vr_manifest_ignored(m, rel) || vr_manifest_kind_of(rel)) {
			printf("OK %s not part of the model (ignored)\n", rel);
		} else {
			printf("UNEXPECTED %s not listed in %s\n", rel, VR_OMS_NAME);
			failed++;
		}
	}
	vr_manifest_free(m);
	free_files();
	return failed ? 1 : 0;
}

static int cmd_audit_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"key", required_argument, NULL, 'k'},
					     {"expect-seq", required_argument, NULL, 'e'},
					     {NULL, 0, NULL, 0}};
	const char *key = NULL;
	uint64_t expect = 0;
	bool have_expect = false;
	struct vr_audit_chain ch;
	struct vr_keyring *k;
	uint8_t k0[VR_AUDIT_MAC_SIZE];
	char *buf = NULL, why[160];
	size_t cap = 0;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "+hk:e:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf(
			    "%s  --key FILE       the daemon's audit_key= file\n"
			    "  --expect-seq N   fail unless the chain reaches record N (a tail\n"
			    "                   cut off is otherwise invisible)\n"
			    "Checks every record of the LOGs, in order (a rotated log first), and\n"
			    "exits 0 only when the chain holds; else names the first bad record.\n",
			    usage_audit);
			return 0;
		case 'k':
			key = optarg;
			break;
		case 'e':
			expect = strtoull(optarg, NULL, 10);
			have_expect = true;
			break;
		default:
			fputs(usage_audit, stderr);
			return 2;
		}
	}
	if (!key || optind >= argc) {
		fputs(usage_audit, stderr);
		return 2;
	}
	if (vr_keyring_load(key, &k) != 0)
		return fail("cannot use audit key file %s%s", key, " (see the message above)");
	vr_audit_key0(k, k0);
	vr_keyring_free(k);
	vr_audit_chain_init(&ch, k0);
	explicit_bzero(k0, sizeof(k0));
	for (int i = optind; i < argc && status == 0; i++) {
		FILE *f = fopen(argv[i], "r");
		unsigned long long line = 0;
		ssize_t n;

		if (!f) {
			status = fail("cannot read %s: %s", argv[i], strerror(errno));
			break;
		}
		while ((n = getline(&buf, &cap, f)) > 0) {
			line++;
			if (vr_audit_chain_next(&ch, buf, (size_t)n, why, sizeof(why)) != 0) {
				fprintf(stderr, "vram-seal: FAILED: %s, line %llu: %s\n", argv[i],
					line, why);
				status = 1;
				break;
			}
		}
		fclose(f);
	}
	free(buf);
	if (status == 0 && have_expect && ch.seq <= expect) {
		fprintf(stderr,
			"vram-seal: FAILED: the chain ends at record %llu, before record %llu: "
			"records were cut off the end\n",
			ch.seq ? (unsigned long long)ch.seq - 1 : 0ULL, (unsigned long long)expect);
		status = 1;
	}
	if (status == 0)
		printf("OK: %llu chained records, seq %llu to %llu, every MAC verifies%s\n",
		       (unsigned long long)(ch.seq - ch.started_at),
		       (unsigned long long)ch.started_at,
		       ch.seq ? (unsigned long long)ch.seq - 1 : 0ULL,
		       ch.started_at ? " (the first begins mid-chain: records before it are in an "
				       "earlier file; give it first to check the link)"
				     : "");
	explicit_bzero(&ch, sizeof(ch));
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		help_main();
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("vram-seal %s\n", VR_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "digest") == 0)
		return cmd_digest(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "manifest") == 0)
		return cmd_manifest(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify-model") == 0)
		return cmd_verify_model(argc - 1, argv + 1);
	if (strcmp(argv[1], "audit-verify") == 0)
		return cmd_audit_verify(argc - 1, argv + 1);
	fprintf(stderr, "vram-seal: unknown command '%s'\n%s", argv[1], usage_main);
	return 2;
}
