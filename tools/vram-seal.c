/* vram-seal.c - offline tool: digests of files, checks of seals and of the audit log's chain;
 * expected-digest manifests are vram-seal-tree.c's. */
#include "audit.h"
#include "blake3.h"
#include "digest.h"
#include "key.h"
#include "log.h"
#include "seal.h"
#include "vram-seal.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/memops.h>

static const char usage_main[] =
    "usage: vram-seal {digest|verify|manifest|verify-model|audit-verify|--help|--version} ...\n";
static const char usage_digest[] = "usage: vram-seal digest [--blake3] [-j THREADS] FILE...\n";
static const char usage_verify[] = "usage: vram-seal verify --secret SECRETFILE SEAL [DATAFILE]\n";
static const char usage_audit[] =
    "usage: vram-seal audit-verify --key AUDIT_KEY [--expect-seq N] [--from-middle] LOG...\n";

static void help_main(void)
{
	printf("%s\n"
	       "  digest FILE...     print the fs-verity file digest of each FILE, as\n"
	       "                     'fsverity digest' prints it: sha256:<hex> FILE\n"
	       "  digest --blake3 FILE...\n"
	       "                     print the BLAKE3 of each FILE, as b3sum prints it\n"
	       "  verify --secret SECRETFILE SEAL [DATAFILE]\n"
	       "                     check SEAL's signature with the master secret and,\n"
	       "                     given DATAFILE, its size, sha256 and fs-verity digest\n"
	       "  manifest DIR       print the SHA256SUMS of every file below DIR\n"
	       "  verify-model --trust KEY DIR\n"
	       "                     check DIR's model.sig (OpenSSF model signing) with\n"
	       "                     KEY, then every file against it, as the daemon does\n"
	       "  audit-verify --key AUDIT_KEY [--expect-seq N] [--from-middle] LOG...\n"
	       "                     check the audit log's hash chain, naming the first\n"
	       "                     bad record\n"
	       "Run 'vram-seal COMMAND --help' for a command's options.\n",
	       usage_main);
}

int map_file(int fd, size_t size, const void **out)
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

/*
 * The BLAKE3 of LEN bytes at DATA into OUT: on one thread (THREADS 1) with the
 * streaming hasher, fed a piece at a time as a reader of the file would; else
 * over subtrees on THREADS threads (0: every CPU).
 */
static void blake3_map(const uint8_t *data, size_t len, unsigned threads, uint8_t out[32])
{
	struct vr_blake3 h;

	if (threads != 1) {
		vr_blake3_parallel(data, len, threads, out);
		return;
	}
	vr_blake3_init(&h);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < (1u << 20) ? len - off : (1u << 20);

		vr_blake3_update(&h, data + off, n);
		off += n;
	}
	vr_blake3_final(&h, out, VR_BLAKE3_LEN);
}

/*
 * Computes the fs-verity digest of the file at PATH into FSV, with its
 * SHA-256 into SHA unless NULL; or (B3) its BLAKE3 into FSV. Returns 0 or
 * -errno, having said why.
 */
static int digest_file(const char *path, unsigned threads, bool b3, uint64_t *size, uint8_t sha[32],
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

	if (b3)
		blake3_map(data, (size_t)st.st_size, threads, fsv);
	else if (sha)
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
					     {"blake3", no_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	unsigned threads = 0;
	bool b3 = false;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "+hj:", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("%s  -j, --threads N  hash on N threads (default: all CPUs)\n"
			       "  --blake3         the BLAKE3 instead (one thread: streamed)\n"
			       "Prints sha256:<hex> FILE per file, as 'fsverity digest' does;\n"
			       "with --blake3, <hex>  FILE, as b3sum does.\n",
			       usage_digest);
			return 0;
		case 'b':
			b3 = true;
			break;
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

		if (digest_file(argv[i], threads, b3, &size, NULL, fsv) != 0) {
			status = 1;
			continue;
		}
		vr_hex(fsv, 32, hex);
		if (b3)
			printf("%s  %s\n", hex, argv[i]);
		else
			printf("sha256:%s %s\n", hex, argv[i]);
	}
	return status;
}

int slurp(const char *path, size_t max, char **out, size_t *len)
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

/* Reads and parses the seal at PATH into a new *OUT; returns 0, or 1 having said why. */
static int read_seal(const char *path, struct vr_seal **out)
{
	const char *why = NULL;
	struct vr_seal *seal;
	char *text = NULL;
	size_t len = 0;
	int ret;

	ret = slurp(path, VR_SEAL_JSON_MAX, &text, &len);
	if (ret)
		return fail("cannot read seal %s: %s", path,
			    ret == -EFBIG ? "larger than 64 KiB" : strerror(-ret));
	seal = malloc(sizeof(*seal));
	if (!seal) {
		free(text);
		return fail("%s%s", "out of memory", "");
	}
	ret = vr_seal_parse(text, len, seal, &why);
	free(text);
	if (ret) {
		ret = fail("malformed seal %s: %s", path, why ? why : strerror(-ret));
		free(seal);
		return ret;
	}
	*out = seal;
	return 0;
}

/* Checks DATA_PATH's size, sha256, fs-verity digest and (version 3) BLAKE3 against SEAL's;
 * prints OK or why not. Returns 0 or 1. */
static int check_data(const char *seal_path, const char *data_path, const struct vr_seal *seal)
{
	uint8_t sha[32], fsv[32], b3[32];
	uint64_t size = 0;

	if (digest_file(data_path, 0, false, &size, sha, fsv) != 0 ||
	    (seal->has_blake3 && digest_file(data_path, 0, true, &size, NULL, b3) != 0))
		return fail("cannot digest %s%s", data_path, "");
	if (size != seal->size)
		return fail("%s: size differs from the seal's%s", data_path, "");
	if (!seal->no_sha256 && !memeql_sec(sha, seal->sha256, 32))
		return fail("%s: sha256 differs from the seal's%s", data_path, "");
	if (!memeql_sec(fsv, seal->fsverity, 32))
		return fail("%s: fs-verity digest differs from the seal's%s", data_path, "");
	if (seal->has_blake3 && !memeql_sec(b3, seal->blake3, 32))
		return fail("%s: blake3 differs from the seal's%s", data_path, "");
	printf("OK: %s: signature valid; %s matches size, %sfs-verity digest%s\n", seal_path,
	       data_path, seal->no_sha256 ? "(no sha256: sealed with sha256=off) " : "sha256 and ",
	       seal->has_blake3 ? " and blake3" : "");
	return 0;
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"secret", required_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	const char *secret = NULL;
	struct vr_keyring *keys = NULL;
	struct vr_seal *seal = NULL;
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

	if (read_seal(seal_path, &seal) != 0)
		return 1;
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
	} else if (data_path) {
		status = check_data(seal_path, data_path, seal);
	} else {
		printf("OK: %s: signature valid for %s\n", seal_path, seal->path);
		status = 0;
	}
	vr_keyring_free(keys);
free_seal:
	free(seal);
	return status;
}

/* Feeds every record of the N LOGS, in order, to the chain CH; returns 0, or 1 having named
 * the first bad record. */
static int chain_logs(struct vr_audit_chain *ch, char **logs, int n)
{
	char *buf = NULL, why[160];
	size_t cap = 0;
	int status = 0;

	for (int i = 0; i < n && status == 0; i++) {
		FILE *f = fopen(logs[i], "r");
		unsigned long long line = 0;
		ssize_t len;

		if (!f) {
			status = fail("cannot read %s: %s", logs[i], strerror(errno));
			break;
		}
		while ((len = getline(&buf, &cap, f)) > 0) {
			line++;
			if (vr_audit_chain_next(ch, buf, (size_t)len, why, sizeof(why)) != 0) {
				fprintf(stderr, "vram-seal: FAILED: %s, line %llu: %s\n", logs[i],
					line, why);
				status = 1;
				break;
			}
		}
		fclose(f);
	}
	free(buf);
	return status;
}

/* The chain CH held to its end: fails when it ends before record EXPECT (HAVE_EXPECT), or
 * begins after record 0 unless FROM_MIDDLE; else prints what it covers. Returns 0 or 1. */
static int chain_end(const struct vr_audit_chain *ch, bool have_expect, uint64_t expect,
		     bool from_middle)
{
	if (ch->started_at && !from_middle) {
		fprintf(stderr,
			"vram-seal: FAILED: the chain begins at record %llu, not 0: the records "
			"before it were cut off, or are in an earlier file (give it first); "
			"--from-middle checks a rotated file alone from there\n",
			(unsigned long long)ch->started_at);
		return 1;
	}
	if (have_expect && ch->seq <= expect) {
		fprintf(stderr,
			"vram-seal: FAILED: the chain ends at record %llu, before record %llu: "
			"records were cut off the end\n",
			ch->seq ? (unsigned long long)ch->seq - 1 : 0ULL,
			(unsigned long long)expect);
		return 1;
	}
	printf("OK: %llu chained records, seq %llu to %llu, every MAC verifies%s\n",
	       (unsigned long long)(ch->seq - ch->started_at), (unsigned long long)ch->started_at,
	       ch->seq ? (unsigned long long)ch->seq - 1 : 0ULL,
	       ch->started_at ? " (the first begins mid-chain: records before it are in an "
				"earlier file; give it first to check the link)"
			      : "");
	return 0;
}

static int cmd_audit_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, NULL, 'h'},
					     {"key", required_argument, NULL, 'k'},
					     {"expect-seq", required_argument, NULL, 'e'},
					     {"from-middle", no_argument, NULL, 'm'},
					     {NULL, 0, NULL, 0}};
	const char *key = NULL;
	uint64_t expect = 0;
	bool have_expect = false, from_middle = false;
	struct vr_audit_chain ch;
	struct vr_keyring *k;
	uint8_t k0[VR_AUDIT_MAC_SIZE];
	int c, status;

	while ((c = getopt_long(argc, argv, "+hk:e:m", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf(
			    "%s  --key FILE       the daemon's audit_key= file\n"
			    "  --expect-seq N   fail unless the chain reaches record N (a tail\n"
			    "                   cut off is otherwise invisible)\n"
			    "  --from-middle    accept a first record that is not record 0 (a\n"
			    "                   rotated file checked alone); else that fails\n"
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
		case 'm':
			from_middle = true;
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
	status = chain_logs(&ch, argv + optind, argc - optind);
	if (status == 0)
		status = chain_end(&ch, have_expect, expect, from_middle);
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
