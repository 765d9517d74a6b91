/* vram-map.c - maps sealed files through the daemon's socket and prints the mapped bytes' digest.
 */
#include "digest.h"
#include "cli_path.h"
#include "vram_client.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: vram-map [--verify] [--hold SECONDS] [--recheck] [--time] FILE...\n"
	    "Maps each sealed FILE of a vram-residency mount read-only (no copy), computes\n"
	    "the fs-verity digest of the mapped bytes here and prints it as `fsverity digest`\n"
	    "does (sha256:HEX FILE).\n"
	    "  --verify        the daemon re-checks the digest on the device before the hand-off\n"
	    "  --hold SECONDS  keep the mapping (and its lease) this long after printing\n"
	    "  --recheck       after the hold, digest the mapping again and ask the daemon to\n"
	    "                  verify it on the device (exit 1 if either differs)\n"
	    "  --time          print how long the map took (to standard error): the first map\n"
	    "                  in the process, with loading the GPU driver, and a second one\n"
	    "  --version       print the version and exit\n");
}

/* Prints the fs-verity digest of M's bytes under NAME (read in place for host memory, copied
 * out in pieces from GPU memory); returns 0 or -errno. */
static int print_digest(struct vr_client *c, const struct vr_mapping *m, const char *name,
			uint8_t out[32])
{
	struct vr_span span = {.data = m->size ? m->ptr : "", .len = m->size};
	char hex[65];
	int ret;

	if (m->kind == VR_CLIENT_HOST) {
		ret = vr_fsv_digest_spans(&span, 1, 0, out);
	} else {
		static struct vr_fsv_stream st;
		size_t piece = (size_t)64 << 20;
		uint8_t *buf = malloc(piece);

		if (!buf)
			return -ENOMEM;
		vr_fsv_init(&st);
		ret = 0;
		for (uint64_t off = 0; off < m->size && ret == 0; off += piece) {
			size_t n = m->size - off < piece ? (size_t)(m->size - off) : piece;

			ret = vr_client_read(c, m, off, buf, n);
			if (ret == 0)
				ret = vr_fsv_update(&st, buf, n);
		}
		if (ret == 0)
			ret = vr_fsv_final(&st, out);
		free(buf);
	}
	if (ret)
		return ret;
	vr_hex(out, 32, hex);
	printf("sha256:%s %s\n", hex, name);
	fflush(stdout);
	return 0;
}

static int timed;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int map_one(const char *file, unsigned flags, double hold, int recheck)
{
	struct vr_client *c = NULL;
	struct vr_mapping *m = NULL;
	uint8_t first[32], again[32];
	char abs[PATH_MAX * 2];
	int ret;

	vr_cli_absolute(file, abs, sizeof(abs));
	ret = vr_client_connect(abs, &c);

	if (ret) {
		fprintf(stderr, "vram-map: %s: cannot reach the daemon: %s\n", file,
			strerror(-ret));
		return 1;
	}
	double t0 = now();

	ret = vr_client_map(c, abs, flags, &m);
	/* the first map of a fresh process also loads the driver and creates its context: timed
	 * apart, then the map itself again */
	if (timed && ret == 0) {
		double cold = now() - t0;

		ret = vr_client_unmap(c, m);
		t0 = now();
		if (ret == 0)
			ret = vr_client_map(c, abs, flags, &m);
		if (ret == 0)
			fprintf(stderr,
				"%s: %llu bytes mapped in %.3f ms%s; the first map in this process "
				"took %.3f ms (with loading the GPU driver and its context)\n",
				file, (unsigned long long)m->size, (now() - t0) * 1e3,
				flags & VR_CLIENT_VERIFY ? " (checked on the device first)" : "",
				cold * 1e3);
	}
	if (ret) {
		fprintf(stderr, "vram-map: %s: %s\n", file, vr_client_error(c));
		vr_client_close(c);
		return 1;
	}
	ret = print_digest(c, m, file, first);
	if (ret)
		fprintf(stderr, "vram-map: %s: digest: %s\n", file,
			ret == -EIO ? vr_client_error(c) : strerror(-ret));
	if (ret == 0 && hold > 0)
		usleep((useconds_t)(hold * 1e6));
	if (ret == 0 && recheck) {
		if (print_digest(c, m, file, again) != 0 || memcmp(first, again, 32) != 0) {
			fprintf(stderr, "vram-map: %s: the mapped bytes changed\n", file);
			ret = -EIO;
		}
		int v = vr_client_verify(c, m);

		if (v) {
			fprintf(stderr, "vram-map: %s: verify FAILED: %s\n", file,
				vr_client_error(c));
			ret = v;
		} else {
			printf("verify OK %s\n", file);
		}
	}
	vr_client_unmap(c, m);
	vr_client_close(c);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"verify", no_argument, NULL, 'v'},
					      {"hold", required_argument, NULL, 'H'},
					      {"recheck", no_argument, NULL, 'r'},
					      {"time", no_argument, NULL, 't'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	unsigned flags = 0;
	double hold = 0;
	int recheck = 0, opt, failed = 0;

	while ((opt = getopt_long(argc, argv, "vH:rthV", longs, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'v':
			flags |= VR_CLIENT_VERIFY;
			break;
		case 'H':
			hold = strtod(optarg, &end);
			if (*end || hold < 0) {
				fprintf(stderr, "vram-map: --hold %s: give seconds\n", optarg);
				return 2;
			}
			break;
		case 'r':
			recheck = 1;
			break;
		case 't':
			timed = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vram-map %s\n", VR_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++)
		failed |= map_one(argv[i], flags, hold, recheck);
	return failed;
}
