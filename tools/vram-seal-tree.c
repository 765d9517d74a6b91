/* vram-seal-tree.c - vram-seal's commands on a directory, manifest and verify-model: every
 * file below it, hashed on all cores. */
#include "blake3.h"
#include "digest.h"
#include "manifest.h"
#include "vram-seal.h"

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

static const char usage_manifest[] = "usage: vram-seal manifest [--blake3] DIR\n";
static const char usage_model[] = "usage: vram-seal verify-model --trust KEY DIR\n";

struct tree_file {
	char *rel;	 /* relative to the directory, '/'-separated */
	uint8_t sha[32]; /* its SHA-256, or (manifest --blake3) its BLAKE3 */
	int err;
	bool link; /* a symbolic link (verify-model), hashed through what it leads to */
};

static struct {
	struct tree_file *v;
	size_t n, cap;
	size_t root_len;
	int err;
	bool links; /* list symbolic links too (verify-model: a signature may list them) */
} walk;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	bool link = type == FTW_SL && walk.links;

	(void)ftw;
	if (!link && (type != FTW_F || !S_ISREG(st->st_mode)))
		return 0; /* directories, FIFOs, devices; links only where asked (never followed
			   * into directories) */
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
	walk.v[walk.n] = (struct tree_file){.rel = strdup(path + walk.root_len + 1), .link = link};
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
	bool blake3; /* BLAKE3 instead of SHA-256 */
	atomic_size_t next;
};

/* A file this large is hashed over BLAKE3's subtrees on every CPU, not on its pool thread. */
#define B3_SPREAD ((size_t)16 << 20)

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
		/* a link is read through: what it leads to must be a regular file */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (f->link ? 0 : O_NOFOLLOW));
		if (fd < 0 || fstat(fd, &st) != 0) {
			f->err = -errno;
		} else if (!S_ISREG(st.st_mode)) {
			/* a link to a directory, a FIFO, a device */
			f->err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		} else if ((f->err = map_file(fd, (size_t)st.st_size, &data)) == 0) {
			if (!p->blake3)
				vr_sha256(data, (size_t)st.st_size, f->sha);
			else
				vr_blake3_parallel(data, (size_t)st.st_size,
						   (size_t)st.st_size >= B3_SPREAD ? 0 : 1, f->sha);
			if (st.st_size > 0)
				munmap((void *)data, (size_t)st.st_size);
		}
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* SHA-256 (or BLAKE3) of every listed file, the files spread over every CPU. */
static void hash_files(const char *dir, bool blake3)
{
	unsigned n = vr_cpu_count();
	pthread_t t[256];
	struct hash_pool pool = {.dir = dir, .blake3 = blake3};
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

int cmd_manifest(int argc, char **argv)
{
	bool b3 = argc == 3 && strcmp(argv[1], "--blake3") == 0;
	const char *dir = argv[argc - 1];
	int status = 0;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("%sPrints the SHA-256 of every regular file below DIR (but a SHA256SUMS),\n"
		       "names relative to DIR, sorted, as sha256sum writes them, hashing on all\n"
		       "CPUs. vram-seal manifest DIR > DIR/SHA256SUMS makes the file the daemon\n"
		       "checks that directory against.\n"
		       "  --blake3  the BLAKE3 instead, as b3sum writes it (but a\n"
		       "            checksums.blake3): vram-seal manifest --blake3 DIR >\n"
		       "            DIR/checksums.blake3; b3sum --check accepts it\n",
		       usage_manifest);
		return 0;
	}
	if (argc != 2 + b3 || dir[0] == '-') {
		fputs(usage_manifest, stderr);
		return 2;
	}
	if (list_files(dir) != 0) {
		free_files();
		return 1;
	}
	hash_files(dir, b3);
	for (size_t i = 0; i < walk.n; i++) {
		const struct tree_file *f = &walk.v[i];

		if (strcmp(f->rel, b3 ? VR_B3SUMS_NAME : VR_SUMS_NAME) == 0)
			continue;
		if (f->err) {
			fprintf(stderr, "vram-seal: cannot read %s/%s: %s\n", dir, f->rel,
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

static const char *model_dir; /* verify-model's DIR */

static int read_fd(void *ctx, uint64_t off, void *buf, size_t len)
{
	ssize_t n = pread(*(int *)ctx, buf, len, (off_t)off);

	return n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
}

/* Whether REL is an empty regular file (not a link), which a "shards" statement lists with no
 * shard, as model_signing cuts none from it. */
static bool is_empty(const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", model_dir, rel);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
}

/*
 * Checks file REL against E when M lists what its SHA-256 cannot answer
 * (shards, BLAKE2b, BLAKE3): the file is read again and hashed as M says.
 * Prints a FAILED line and returns 1, or returns 0 having printed nothing.
 */
static unsigned check_bytes(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			    const char *rel, bool follow)
{
	char path[PATH_MAX], why[VR_WHY_MAX];
	int fd, ret;
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", model_dir, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0 || fstat(fd, &st) != 0)
		ret = errno ? -errno : -EIO;
	else
		ret = vr_manifest_check_read(m, e, read_fd, &fd, (uint64_t)st.st_size, why);
	if (fd >= 0)
		close(fd);
	if (ret == -EBADMSG)
		printf("FAILED %s %s from %s\n", rel, why, VR_OMS_NAME);
	else if (ret)
		printf("FAILED %s cannot be read: %s\n", rel, strerror(-ret));
	return ret != 0;
}

/* Prints the line for the present file F, its entry in M being E (or NULL); returns 1 when
 * it fails, else 0. */
static unsigned check_file(const struct vr_manifest *m, const struct vr_manifest_entry *e,
			   const struct tree_file *f)
{
	const char *rel = f->rel;
	bool bytes = !vr_manifest_seal_comparable(m) || m->hash != VR_HASH_SHA256;
	char hex[65];

	vr_hex(f->sha, 32, hex);
	if (f->link && !e)
		return 0; /* a link nothing lists: not part of the model, as before links counted */
	if (f->link && !m->allow_symlinks) {
		/* the daemon's words */
		printf("FAILED %s is a symbolic link (the signature does not allow links: "
		       "allow_symlinks is false)\n",
		       rel);
		return 1;
	}
	if (f->link && f->err) {
		/* the daemon's words, but "in the mount": this tree is not one */
		if (f->err == -EISDIR)
			printf("FAILED %s is a symbolic link to a directory, not a file\n", rel);
		else if (f->err == -EINVAL)
			printf("FAILED %s is a symbolic link to something other than a file\n",
			       rel);
		else
			printf("FAILED %s is a symbolic link that leads to nothing (%s)\n", rel,
			       strerror(-f->err));
		return 1;
	}
	if (f->err) {
		printf("FAILED %s cannot be read: %s\n", rel, strerror(-f->err));
		return 1;
	} else if (e && bytes) {
		if (check_bytes(m, e, rel, f->link))
			return 1;
		printf("OK %s %s%s (sha256:%s)\n", rel, vr_hash_name(m->hash),
		       m->shard_size ? " shards" : "", hex);
	} else if (!e && m->shard_size && strcmp(rel, VR_OMS_NAME) != 0 &&
		   !vr_manifest_ignored(m, rel) && is_empty(rel)) {
		printf("OK %s empty: a shards signature lists no shard for it\n", rel);
	} else if (e && !memeql_sec(e->digest, f->sha, 32)) {
		printf("FAILED %s sha256 differs from %s\n", rel, VR_OMS_NAME);
		return 1;
	} else if (e) {
		printf("OK %s sha256:%s\n", rel, hex);
	} else if (strcmp(rel, VR_OMS_NAME) == 0) {
		printf("OK %s signature verified, key %s\n", rel, m->key_hint);
	} else if (vr_manifest_ignored(m, rel)) {
		printf("OK %s not part of the model (ignored)\n", rel);
	} else {
		/* a SHA256SUMS the signature does not list too, as the daemon says */
		printf("UNEXPECTED %s not listed in %s\n", rel, VR_OMS_NAME);
		return 1;
	}
	return 0;
}

/* Checks the listed files against M: present files, then the listed ones that are not there,
 * in path order, a line each; returns how many fail. */
static unsigned compare_files(const struct vr_manifest *m)
{
	unsigned failed = 0;
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
		const struct vr_manifest_entry *e = vr_manifest_find(m, rel);

		if (e && next < m->count && strcmp(m->entries[next].name, rel) == 0)
			next++;
		failed += check_file(m, e, &walk.v[i]);
	}
	return failed;
}

int cmd_verify_model(int argc, char **argv)
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
			printf("%s  --trust KEY  public keys and root certificates (PEM), or a\n"
			       "               directory of *.pem files, as the daemon's trust=\n"
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

	model_dir = dir;
	walk.links = true;
	ret = load_signature(dir, trust, &m);
	if (ret)
		return ret;
	if (list_files(dir) != 0) {
		vr_manifest_free(m);
		free_files();
		return 1;
	}
	hash_files(dir, false);
	failed = compare_files(m);
	vr_manifest_free(m);
	free_files();
	return failed ? 1 : 0;
}
