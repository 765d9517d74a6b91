/* vram-seal.c - offline tool: fs-verity digests of files and checks of seals against them. */
#include "digest.h"
#include "key.h"
#include "log.h"
#include "seal.h"

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

static const char usage_main[] = "usage: vram-seal {digest|verify|--help|--version} ...\n";
static const char usage_digest[] = "usage: vram-seal digest [-j THREADS] FILE...\n";
static const char usage_verify[] = "usage: vram-seal verify --secret SECRETFILE SEAL [DATAFILE]\n";

static void help_main(void)
{
	printf("%s\n"
	       "  digest FILE...     print the fs-verity file digest of each FILE, as\n"
	       "                     'fsverity digest' prints it: sha256:<hex> FILE\n"
	       "  verify --secret SECRETFILE SEAL [DATAFILE]\n"
	       "                     check SEAL's signature with the master secret and,\n"
	       "                     given DATAFILE, its size, sha256 and fs-verity digest\n"
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

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		fprintf(stderr, "vram-seal: cannot open %s: %s\n", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ret = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		fprintf(stderr, "vram-seal: %s: %s\n", path,
			ret == -EINVAL ? "not a regular file" : strerror(-ret));
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
		uint64_t size;

		if (digest_file(data_path, 0, &size, sha, fsv) != 0) {
			status = fail("cannot digest %s%s", data_path, "");
			goto free_keys;
		}
		if (size != seal->size) {
			status = fail("%s: size differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		if (!memeql_sec(sha, seal->sha256, 32)) {
			status = fail("%s: sha256 differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		if (!memeql_sec(fsv, seal->fsverity, 32)) {
			status =
			    fail("%s: fs-verity digest differs from the seal's%s", data_path, "");
			goto free_keys;
		}
		printf("OK: %s: signature valid; %s matches size, sha256 and fs-verity digest\n",
		       seal_path, data_path);
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
	fprintf(stderr, "vram-seal: unknown command '%s'\n%s", argv[1], usage_main);
	return 2;
}
