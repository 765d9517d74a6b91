/* vram-load.c - imports files and directories into a vram-residency mount through its socket. */
#include "cli_path.h"
#include "vram_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int verbose;
static unsigned jobs;	/* 0: one per CPU */
static unsigned direct; /* --direct: VR_CLIENT_DIRECT */

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: vram-load [-j N] [--direct] [--verbose] SRC... DEST\n"
	       "Loads each SRC (a file, or a directory with everything below it) into DEST on a\n"
	       "vram-residency mount and seals it exactly as cp would; the daemon reads the\n"
	       "source itself, in large pieces, several files at once, largest first. A tree\n"
	       "that does not fit in the mount's free device memory is refused before anything\n"
	       "is loaded; a failure partway removes what the load made. With one SRC, DEST may\n"
	       "name the new file; otherwise DEST is a directory on the mount.\n"
	       "  -j, --jobs N    load up to N files at once (1 to 16; default: one per two CPUs)\n"
	       "  -d, --direct    read sources past the page cache (O_DIRECT) where their\n"
	       "                  filesystem allows: for a model on disk, not already cached\n"
	       "  -v, --verbose   name each file loaded, with its size\n"
	       "  --version       print the version and exit\n"
	       "Progress (files, bytes, GB/s) is shown on standard error when it is a terminal.\n");
}

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

struct shown {
	bool tty;	    /* progress on standard error */
	struct timespec t0; /* the load's start */
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Set by the first SIGINT, SIGTERM or SIGHUP: the load stops after the files in flight and
 * removes what it made; a second one ends the process at once. */
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	static const char msg[] =
	    "\nvram-load: stopping after the files in flight, then removing what "
	    "was loaded (again to quit at once)\n";

	if (stopping) { /* the second, of any of the three: its default action, now */
		signal(sig, SIG_DFL);
		raise(sig); /* pending until this handler returns: blocked while it runs */
		return;
	}
	stopping = 1;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		stopping = 1; /* nothing to do: the message is a courtesy */
}

/* TEXT on F with control characters as \xNN (a file's name may hold any byte). */
static void put_safe(FILE *f, const char *text)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			fprintf(f, "\\x%02x", *c);
		else
			fputc(*c, f);
}

/* After each file sealed: its line (--verbose), and the progress line at a terminal. */
static int progress(const struct vr_client_progress *p, void *arg)
{
	struct shown *s = arg;

	if (verbose) {
		if (s->tty)
			fputs("\r\033[K", stderr);
		put_safe(stdout, p->src);
		fputs(" -> ", stdout);
		put_safe(stdout, p->dest);
		printf(" (%llu bytes, sealed)\n", (unsigned long long)p->size);
		fflush(stdout);
	}
	if (s->tty) {
		double secs = since(&s->t0);

		fprintf(stderr, "\r\033[Kvram-load: %llu/%llu files, %.2f/%.2f GB, %.2f GB/s",
			(unsigned long long)p->files_done, (unsigned long long)p->files,
			(double)p->bytes_done / 1e9, (double)p->bytes / 1e9,
			secs > 0 ? (double)p->bytes_done / 1e9 / secs : 0.0);
		if (p->files_done == p->files)
			fputc('\n', stderr);
		fflush(stderr);
	}
	return stopping;
}

/* Loads the N sources SRC into TARGET, all or nothing together; the exit status. */
static int load(const char *const *src, const char *const *target, size_t n)
{
	struct shown s = {.tty = isatty(STDERR_FILENO) == 1};
	struct sigaction sa = {.sa_handler = on_signal};
	char err[PATH_MAX * 2 + 512];
	int ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &s.t0);
	ret = vr_client_load_all(src, target, n, jobs | direct, progress, &s, err, sizeof(err));
	if (ret) {
		if (s.tty)
			fputs("\r\033[K", stderr);
		fputs("vram-load: ", stderr);
		put_safe(stderr, err[0] ? err : strerror(-ret));
		fputc('\n', stderr);
		return stopping ? 130 : 1;
	}
	return 0;
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
	static const struct option longs[] = {
	    {"verbose", no_argument, NULL, 'v'},    {"direct", no_argument, NULL, 'd'},
	    {"jobs", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},    {NULL, 0, NULL, 0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "vdj:hV", longs, NULL)) != -1) {
		if (opt == 'v') {
			verbose = 1;
		} else if (opt == 'd') {
			direct = VR_CLIENT_DIRECT;
		} else if (opt == 'j') {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (*end || end == optarg || n == 0 || n > 16 || optarg[0] == '-') {
				fprintf(stderr,
					"vram-load: -j %s: give a number of files from 1 to 16\n",
					optarg);
				return 2;
			}
			jobs = (unsigned)n;
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
	struct stat st;
	int failed = 0, ret;
	const char *dest;
	bool into;

	ret = parse_args(argc, argv);
	if (ret >= 0)
		return ret;
	char dest_abs[PATH_MAX];

	for (int i = optind; i < argc; i++)
		if (!argv[i][0]) {
			fprintf(stderr, "vram-load: an empty %s: give a path\n",
				i == argc - 1 ? "destination" : "source");
			return 2;
		}
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
	size_t n = (size_t)(argc - 1 - optind);
	const char **src = calloc(n, sizeof(*src));
	char **target = calloc(n, sizeof(*target));

	for (size_t i = 0; src && target && i < n; i++) {
		char name[NAME_MAX + 1];

		src[i] = argv[optind + (int)i];
		target[i] = malloc(PATH_MAX);
		if (!target[i])
			break;
		base_name(src[i], name, sizeof(name));
		if (into)
			join(target[i], PATH_MAX, dest, name);
		else
			snprintf(target[i], PATH_MAX, "%s", dest);
		if (strlen(target[i]) >= PATH_MAX - 1) {
			fprintf(stderr, "vram-load: %s: path too long\n", target[i]);
			failed = 1;
		}
	}
	if (!src || !target || (n && !target[n - 1])) {
		fprintf(stderr, "vram-load: out of memory\n");
		failed = 1;
	}
	/* every source, all or nothing together */
	if (!failed)
		failed = load(src, (const char *const *)target, n);
	for (size_t i = 0; target && i < n; i++)
		free(target[i]);
	free(target);
	free(src);
	return failed;
}
