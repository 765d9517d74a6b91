/* vram-evict.c - evicts sealed files of a vram-residency mount to host memory, or restores them
 * to the device, through the daemon's socket. */
#include "cli_path.h"
#include "vram_client.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: vram-evict [--restore] PATH...\n"
	       "Evicts each sealed file PATH of a vram-residency mount (every sealed file below\n"
	       "PATH, for a folder) to host memory: its device memory is freed for other\n"
	       "programs, its seal kept. Files open or mapped stay where they are. An open or a\n"
	       "map of an evicted file brings it back, checked on the device against its seal.\n"
	       "  --restore   bring the files back to the device now (checked there first)\n"
	       "  --version   print the version and exit\n"
	       "Evicting is for a file's owner and root; restoring, for anyone who may read it.\n");
}

/* Moves PATH; returns 0, or 1 after saying why on standard error. */
static int move_one(const char *path, int restore)
{
	const char *verb = restore ? "restored" : "evicted";
	struct vr_client *c = NULL;
	char abs[PATH_MAX * 2];
	unsigned moved = 0;
	int ret;

	vr_cli_absolute(path, abs, sizeof(abs));
	ret = vr_client_connect(abs, &c);
	if (ret) {
		fprintf(stderr, "vram-evict: %s: cannot reach the daemon: %s\n", path,
			strerror(-ret));
		return 1;
	}
	ret = vr_client_evict(c, abs, restore, &moved);
	if (ret) {
		fprintf(stderr, "vram-evict: %s: %s (%s)\n", path, vr_client_error(c),
			strerror(-ret));
	} else {
		const char *left = vr_client_error(c);

		printf("%s: %u file%s %s%s%s\n", path, moved, moved == 1 ? "" : "s", verb,
		       *left ? "; " : "", left);
	}
	vr_client_close(c);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {{"restore", no_argument, NULL, 'r'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	int restore = 0, opt, failed = 0;

	while ((opt = getopt_long(argc, argv, "rhV", longs, NULL)) != -1) {
		switch (opt) {
		case 'r':
			restore = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vram-evict %s\n", VR_VERSION);
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
		failed |= move_one(argv[i], restore);
	return failed;
}
