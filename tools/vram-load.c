/* vram-load.c - imports files and directories into a vram-residency mount through its socket. */
#include "cli_path.h"
#include "vram_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int verbose;
static mode_t mask;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vram-load [--verbose] SRC... DEST\n"
		"Loads each SRC (a file, or a directory with everything below it) into DEST on a\n"
		"vram-residency mount and seals it exactly as cp would; the daemon reads the\n"
		"source itself, in large pieces. With one SRC, DEST may name the new file;\n"
		"otherwise DEST is a directory on the mount.\n"
		"  -v, --verbose   name each file loaded, with its size\n"
		"  --version       print the version and exit\n");
}

static int load_path(struct vr_client *c, const char *src, const char *dest);

/* DIR/NAME into OUT (CAP bytes), DIR's trailing slashes dropped (the root kept): a source or
 * destination typed as "llama/" gives "llama/x", not "llama//x". True when it fits. */
static bool join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (len == 1 && dir[0] == '/')
		len = 0;
	int n = snprintf(out, cap, "%.*s/%s", (int)len, dir, name);

	return n >= 0 && (size_t)n < cap;
}

static int load_file(struct vr_client *c, const char *src, const char *dest, mode_t mode)
{
	uint64_t got = 0;
	int fd = open(src, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		fprintf(stderr, "vram-load: %s: %s\n", src, strerror(errno));
		return 1;
	}
	ret = vr_client_import(c, fd, dest, mode & ~mask & 07777, &got);
	close(fd);
	if (ret) {
		fprintf(stderr, "vram-load: %s -> %s: %s\n", src, dest, vr_client_error(c));
		return 1;
	}
	if (verbose)
		printf("%s -> %s (%llu bytes, sealed)\n", src, dest, (unsigned long long)got);
	return 0;
}

static int load_dir(struct vr_client *c, const char *src, const char *dest, mode_t mode)
{
	DIR *d;
	struct dirent *e;
	int failed = 0;

	if (mkdir(dest, mode & ~mask & 07777) != 0 && errno != EEXIST) {
		fprintf(stderr, "vram-load: %s: %s\n", dest, strerror(errno));
		return 1;
	}
	d = opendir(src);
	if (!d) {
		fprintf(stderr, "vram-load: %s: %s\n", src, strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		char s[PATH_MAX], t[PATH_MAX];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (!join(s, sizeof(s), src, e->d_name) || !join(t, sizeof(t), dest, e->d_name)) {
			fprintf(stderr, "vram-load: %s/%s: path too long\n", src, e->d_name);
			failed = 1;
			continue;
		}
		failed |= load_path(c, s, t);
	}
	closedir(d);
	return failed;
}

static int load_path(struct vr_client *c, const char *src, const char *dest)
{
	struct stat st;

	if (stat(src, &st) != 0) {
		fprintf(stderr, "vram-load: %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode))
		return load_dir(c, src, dest, st.st_mode);
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vram-load: %s: not a regular file or directory: skipped\n", src);
		return 1;
	}
	return load_file(c, src, dest, st.st_mode);
}

/* SRC's last component, without trailing slashes, into OUT. */
static void base_name(const char *src, char *out, size_t cap)
{
	size_t len = strlen(src);

	while (len > 1 && src[len - 1] == '/')
		len--;
	const char *start = src + len;

	while (start > src && start[-1] != '/')
		start--;
	snprintf(out, cap, "%.*s", (int)(src + len - start), start);
}

/* Takes the options; returns -1 to go on, or the exit status (help, version, usage). */
static int parse_args(int argc, char **argv)
{
	static const struct option longs[] = {{"verbose", no_argument, NULL, 'v'},
					      {"help", no_argument, NULL, 'h'},
					      {"version", no_argument, NULL, 'V'},
					      {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "vhV", longs, NULL)) != -1) {
		if (opt == 'v') {
			verbose = 1;
		} else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'V') {
			printf("vram-load %s\n", VR_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct vr_client *c;
	struct stat st;
	int failed = 0, ret;
	const char *dest;
	bool into;

	ret = parse_args(argc, argv);
	if (ret >= 0)
		return ret;
	mask = umask(0);
	umask(mask);
	char dest_abs[PATH_MAX];

	vr_cli_absolute(argv[argc - 1], dest_abs, sizeof(dest_abs));
	if (strlen(dest_abs) >= PATH_MAX - 1) {
		fprintf(stderr, "vram-load: %s: path too long\n", argv[argc - 1]);
		return 1;
	}
	dest = dest_abs;
	into = stat(dest, &st) == 0 && S_ISDIR(st.st_mode);
	if (argc - optind > 2 && !into) {
		fprintf(stderr, "vram-load: %s: not a directory\n", dest);
		return 1;
	}
	/* the daemon of the mount DEST is on (or will be created in) */
	char where[PATH_MAX];

	snprintf(where, sizeof(where), "%s", dest);
	if (!into) {
		char *slash = strrchr(where, '/');

		if (!slash)
			strcpy(where, ".");
		else if (slash == where)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	ret = vr_client_connect(where, &c);
	if (ret) {
		fprintf(stderr, "vram-load: %s: not a vram-residency mount with a socket: %s\n",
			dest, strerror(-ret));
		return 1;
	}
	for (int i = optind; i < argc - 1; i++) {
		char target[PATH_MAX + NAME_MAX + 2], name[NAME_MAX + 1];

		base_name(argv[i], name, sizeof(name));
		if (into)
			join(target, sizeof(target), dest, name);
		else
			snprintf(target, sizeof(target), "%s", dest);
		if (strlen(target) >= PATH_MAX) {
			fprintf(stderr, "vram-load: %s: path too long\n", target);
			failed = 1;
			continue;
		}
		failed |= load_path(c, argv[i], target);
	}
	vr_client_close(c);
	return failed;
}
