/* main.c - the daemon's life cycle: options, the fork, the start (startup.c), the threads
 * beside the loop (SIGHUP, readiness, metrics), the loop, and the teardown. */
#include "channel.h"
#include "daemon.h"

#include <fuse_lowlevel.h>

#include "audit.h"
#include "log.h"
#include "safe.h"
#include "manifest.h"
#include "residency.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * SIGHUP: re-reads trust= (keys added or revoked by the operator). Keys that
 * cannot be read leave the current ones in force, said and audited. Files
 * sealed before keep their seals; signatures arriving from now on are checked
 * against the new keys.
 */
static void reload_trust(struct daemon *d)
{
	char why[VR_WHY_MAX], detail[VR_WHY_MAX + 64];
	struct vr_trust *fresh = NULL, **more;

	if (!d->opts.trust)
		return;
	if (vr_trust_path_safe(d->opts.trust) == -EACCES)
		snprintf(why, sizeof(why), "%s", "others could add a key there");
	else if (vr_trust_load(d->opts.trust, &fresh, why) == 0)
		why[0] = '\0';
	if (why[0]) {
		vr_log(LOG_ERR, "SIGHUP: trust=%s: %s; the keys in force stay", d->opts.trust, why);
		snprintf(detail, sizeof(detail), "trust=%s not re-read: %s", d->opts.trust, why);
		daemon_audit(d, "trust_reloaded", "failed", detail);
		return;
	}
	/* an array of pointers: its element is rightly a pointer's size */
	// NOLINTNEXTLINE(bugprone-sizeof-expression)
	more = realloc(d->retired, sizeof(*more) * (d->nretired + 1));
	if (!more) {
		vr_trust_free(fresh);
		return;
	}
	d->retired = more;
	d->retired[d->nretired++] = d->trust;
	d->trust = fresh;
	vr_res_set_trust(d->res, fresh);
	snprintf(detail, sizeof(detail),
		 "trust=%s: %zu key(s) and %zu root certificate(s) trusted to sign models",
		 d->opts.trust, vr_trust_count(fresh), vr_trust_roots(fresh));
	vr_log(LOG_INFO, "SIGHUP: %s", detail);
	daemon_audit(d, "trust_reloaded", "ok", detail);
}

/* Waits for SIGHUP and reopens the audit log each time; ends when cancelled. */
static void *hup_thread(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		/* not cancelled half-way (open, fsync and close are cancellation points):
		 * the audit log's lock must not be left held for the shutdown's last record */
		int old;

		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
		if (vr_audit_reopen(d->audit) == 0) {
			vr_log(LOG_INFO, "SIGHUP: audit log %s reopened", d->opts.audit);
			daemon_audit(d, "audit_reopened", "ok", "SIGHUP");
		}
		reload_trust(d);
		pthread_setcancelstate(old, NULL);
	}
	return NULL;
}

/*
 * systemd's readiness protocol (sd_notify(3), without libsystemd): one
 * datagram of "KEY=VALUE" lines to the socket $NOTIFY_SOCKET names (a path,
 * or "@" for the abstract namespace). Nothing when it is unset.
 */
static void notify(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (len = strlen(path)) >= sizeof(a.sun_path))
		return;
	memcpy(a.sun_path, path, len);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL, (struct sockaddr *)&a,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		vr_log(LOG_WARNING, "cannot notify the service manager: %s", strerror(errno));
	close(fd);
}

/* Says READY=1 once the mount answers: a stat of its root returns only when the loop has
 * served it. */
static void *ready_thread(void *arg)
{
	struct daemon *d = arg;
	struct stat st;
	char text[512];

	if (stat(d->mountpoint, &st) != 0) {
		vr_log(LOG_ERR, "the mount does not answer: %s; not ready", strerror(errno));
		return NULL;
	}
	snprintf(text, sizeof(text), "READY=1\nSTATUS=serving %s\nMAINPID=%d", d->mountpoint,
		 (int)getpid());
	notify(text);
	return NULL;
}

/* metrics_file: the writer's state (the stop flag under LOCK). */
struct metrics_writer {
	struct daemon *d;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	pthread_t thread;
};

/*
 * Writes the metrics to PATH whole or not at all: a new file beside it,
 * then a rename over it, so node_exporter never reads half a file. Returns 0
 * or -errno.
 */
static int write_metrics(struct vr_residency *r, const char *path)
{
	char tmp[4200];
	char *text = NULL;
	size_t len = 0;
	int ret = vr_res_metrics(r, &text, &len), fd = -1;

	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
		ret = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) != 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) != 0)
		ret = -errno;
	if (ret && fd >= 0)
		unlink(tmp);
	free(text);
	return ret;
}

static void *metrics_thread(void *arg)
{
	struct metrics_writer *w = arg;
	int last = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		pthread_mutex_unlock(&w->lock);
		int ret = write_metrics(w->d->res, w->d->opts.metrics_file);

		/* said once when it starts failing, and once when it works again */
		if (ret && ret != last)
			vr_log(LOG_ERR, "metrics_file=%s: cannot write it: %s",
			       w->d->opts.metrics_file, strerror(-ret));
		else if (!ret && last)
			vr_log(LOG_INFO, "metrics_file=%s: written again", w->d->opts.metrics_file);
		last = ret;
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += w->d->opts.metrics_interval;
		pthread_mutex_lock(&w->lock);
		while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Lets the parent of a daemonized child exit with the start's status. */
static void report(int fd, char status)
{
	if (fd >= 0) {
		if (write(fd, &status, 1) != 1)
			vr_log(LOG_WARNING, "cannot report start-up status to the parent");
		close(fd);
	}
}

/*
 * Forks the daemon off its caller. Returns true in the child, which goes on, *STATUS_FD the
 * pipe it reports its start on; false in the parent, which waited for that report, or on a
 * failure, *CODE the command's exit status.
 */
static bool fork_daemon(int *status_fd, int *code)
{
	int pipefd[2] = {-1, -1};

	/* Fork before opening the device: a CUDA context does not survive fork. */
	if (pipe(pipefd) != 0) {
		perror("vram-residency: pipe");
		*code = 1;
		return false;
	}
	pid_t pid = fork();

	if (pid < 0) {
		perror("vram-residency: fork");
		*code = 1;
		return false;
	}
	if (pid > 0) {
		unsigned char st = 1;

		close(pipefd[1]);
		if (read(pipefd[0], &st, 1) != 1)
			st = 1;
		*code = st;
		return false;
	}
	close(pipefd[0]);
	*status_fd = pipefd[1];
	if (setsid() < 0)
		vr_log(LOG_WARNING, "setsid: %s", strerror(errno));
	return true;
}

/*
 * The daemonized child, started: says where its messages go from now (log=, else syslog),
 * while the caller's terminal is still there, reports success on STATUS_FD and leaves it.
 */
static void detach(int status_fd, const char *log)
{
	int null = open("/dev/null", O_RDWR);

	if (chdir("/") != 0)
		vr_log(LOG_WARNING, "chdir /: %s", strerror(errno));
	if (log)
		vr_log(LOG_INFO, "detached (pid %d); messages go to %s", (int)getpid(), log);
	else if (access("/dev/log", F_OK) == 0)
		vr_log(LOG_INFO, "detached (pid %d); messages go to syslog", (int)getpid());
	else
		vr_log(LOG_WARNING,
		       "detached (pid %d); no syslog listens here (/dev/log): messages are "
		       "lost; give -o log=PATH",
		       (int)getpid());
	if (!log)
		vr_log_use_syslog(true);
	report(status_fd, 0);
	/* detached: stdio goes to /dev/null, messages to syslog or log= */
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		vr_log(LOG_WARNING, "cannot detach stdio: %s", strerror(errno));
	if (null > 2)
		close(null);
}

/* The threads beside the loop, each with whether it started. */
struct helpers {
	pthread_t hup;
	bool hup_started;
	pthread_t ready;
	bool ready_started;
	struct metrics_writer mw;
	bool mw_started;
};

/* Starts the threads beside the loop; one that cannot start is said, and left out. */
static void start_helpers(struct daemon *d, struct helpers *h, bool hup_blocked,
			  const char *mountpoint)
{
	/*
	 * SIGHUP reopens the audit log (logrotate's convention) and touches
	 * nothing resident: it is blocked in every thread (the loop's threads
	 * inherit this mask) and taken by one that waits for it.
	 */
	if (hup_blocked && pthread_create(&h->hup, NULL, hup_thread, d) == 0)
		h->hup_started = true;
	else
		vr_log(LOG_WARNING, "SIGHUP cannot be taken: it will unmount, as libfuse does");
	h->mw.d = d;
	if (d->opts.metrics_file) {
		pthread_mutex_init(&h->mw.lock, NULL);
		pthread_cond_init(&h->mw.wake, NULL);
		h->mw_started = pthread_create(&h->mw.thread, NULL, metrics_thread, &h->mw) == 0;
		if (!h->mw_started)
			vr_log(LOG_ERR, "metrics_file=%s: no thread to write it",
			       d->opts.metrics_file);
	}

	d->mountpoint = mountpoint;
	if (getenv("NOTIFY_SOCKET")) {
		h->ready_started = pthread_create(&h->ready, NULL, ready_thread, d) == 0;
		if (!h->ready_started)
			vr_log(LOG_WARNING, "no thread to tell systemd the mount is ready: %s",
			       "its start will time out");
	}
}

/* Ends and joins the threads beside the loop (after the unmount). */
static void stop_helpers(struct daemon *d, struct helpers *h)
{
	if (h->mw_started) {
		pthread_mutex_lock(&h->mw.lock);
		h->mw.stop = true;
		pthread_cond_signal(&h->mw.wake);
		pthread_mutex_unlock(&h->mw.lock);
		pthread_join(h->mw.thread, NULL);
	}
	if (d->opts.metrics_file) {
		pthread_mutex_destroy(&h->mw.lock);
		pthread_cond_destroy(&h->mw.wake);
	}
	if (h->ready_started)
		pthread_join(h->ready,
			     NULL); /* its stat was answered (or failed) before the loop ended */
	if (h->hup_started) {
		pthread_cancel(h->hup); /* sigwait is a cancellation point */
		pthread_join(h->hup, NULL);
	}
}

/*
 * Runs the loop until it ends: its return. Multi-threaded, with at most max_threads workers
 * (libfuse 3.12 and later: older ones start a thread whenever none is idle), more than the
 * checks of users other than root may hold, so some always serve everyone else.
 */
static int serve(struct daemon *d, const struct fuse_cmdline_opts *cl)
{
	if (cl->singlethread)
		return fuse_loop(d->fuse);
#ifdef VR_FUSE_LOOP_CONFIG
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int ret;

	if (!cfg) {
		vr_log(LOG_ERR, "cannot configure the loop: out of memory");
		return -1;
	}
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned)cl->clone_fd);
	if (cl->max_idle_threads != UINT_MAX) /* libfuse's "not given" */
		fuse_loop_cfg_set_idle_threads(cfg, cl->max_idle_threads);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)d->opts.max_threads);
	vr_log(LOG_INFO,
	       "serving with %d threads at most, %d of them for checks of users other "
	       "than root",
	       d->opts.max_threads, VR_RES_CHECKS_OTHERS);
	ret = fuse_loop_mt(d->fuse, cfg);
	fuse_loop_cfg_destroy(cfg);
	return ret;
#else
	return fuse_loop_mt(d->fuse, cl->clone_fd);
#endif
}

/* Forks off (unless -f), starts, serves until the loop ends, and tears down; the exit status. */
static int run(struct daemon *d, struct fuse_args *args, struct fuse_cmdline_opts *cl)
{
	int status_fd = -1, ret;

	if (!cl->foreground && !fork_daemon(&status_fd, &ret))
		return ret;
	/* SIGHUP blocked before any thread starts (the socket's too): only hup_thread takes it */
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	bool hup_blocked = pthread_sigmask(SIG_BLOCK, &set, NULL) == 0;

	if (daemon_start(d, args, cl->mountpoint) != 0 ||
	    fuse_set_signal_handlers(fuse_get_session(d->fuse)) != 0) {
		daemon_stop(d);
		report(status_fd, 1);
		return 1;
	}
	if (status_fd >= 0)
		detach(status_fd, d->opts.log);
	struct helpers h = {0};

	start_helpers(d, &h, hup_blocked, cl->mountpoint);
	ret = serve(d, cl);
	d->stop_signal = ret > 0 ? ret : 0;
	notify("STOPPING=1");
	/*
	 * Unmounted before any thread is joined: one may still wait on the mount (the readiness
	 * stat, when the loop ended before serving it, as when it could not start its threads),
	 * and the unmount answers it with an error. Joined first, it waited forever.
	 */
	fuse_unmount(d->fuse);
	d->unmounted = true;
	stop_helpers(d, &h);
	fuse_remove_signal_handlers(fuse_get_session(d->fuse));
	daemon_stop(d);
	vr_channel_clear();
	/* a positive value is the signal that ended the loop (SIGTERM, SIGINT): a clean stop */
	return ret < 0 ? 1 : 0;
}

/*
 * mount(8)'s calling convention (mount.fuse3, fstab: "vram-residency#gpu0 /run/vram fuse3
 * OPTIONS"): the program gets the source before the mount point. Takes a source out of ARGS
 * when two non-option arguments are given; "gpuN" selects device N. Returns 0, or -1 having
 * said why.
 */
static int take_source(struct fuse_args *args, struct vr_options *o)
{
	int pos[2], n = 0, dev;
	char tail;

	for (int i = 1; i < args->argc && n < 3; i++) {
		if (strcmp(args->argv[i], "-o") == 0) {
			i++; /* its value */
			continue;
		}
		if (args->argv[i][0] == '-')
			continue;
		if (n < 2)
			pos[n] = i;
		n++;
	}
	if (n != 2)
		return 0; /* the usual MOUNTPOINT alone (or a usage error for libfuse to name) */
	const char *src = args->argv[pos[0]];

	if (sscanf(src, "gpu%d%c", &dev, &tail) == 1 && dev >= 0) {
		if (o->device != 0 && o->device != dev) {
			fprintf(stderr, "vram-residency: source %s and device=%d disagree\n", src,
				o->device);
			return -1;
		}
		o->device = dev;
	}
	vr_log(LOG_INFO, "source %s (mount(8)'s convention)", src);
	/* out of the arguments libfuse parses next */
	if (args->allocated)
		free(args->argv[pos[0]]);
	memmove(&args->argv[pos[0]], &args->argv[pos[0] + 1],
		sizeof(char *) * (size_t)(args->argc - pos[0]));
	args->argc--;
	return 0;
}

/*
 * Each resident file holds a descriptor of its memory (a memfd chunk, or the
 * VMM handles' backing on CUDA): the soft limit (often 1024) is raised to the
 * hard one, so a tree of many files does not run out at a thousand.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		vr_log(LOG_WARNING, "cannot raise the descriptor limit: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cl = {0};
	struct daemon d = {0};
	int ret = 2; /* a usage error, until the command line is taken */
	int st;

	/* a write past a file-size limit (RLIMIT_FSIZE: the audit log, a chunk) is an EFBIG the
	 * caller handles, never a signal that kills the daemon with everything resident */
	signal(SIGXFSZ, SIG_IGN);
	st = vr_options_parse(&args, &d.opts);
	if (st != 0) {
		ret = -st;
		goto free_args;
	}
	if (take_source(&args, &d.opts) != 0)
		goto free_args;
	if (fuse_parse_cmdline(&args, &cl) != 0)
		goto free_args;
	if (cl.show_help || d.opts.show_help) {
		vr_options_help(argv[0]);
		ret = 0;
		goto free_cl;
	}
	if (cl.show_version || d.opts.show_version) {
		vr_options_version();
		ret = 0;
		goto free_cl;
	}
	if (!cl.mountpoint) {
		fprintf(stderr,
			"usage: %s [-f] [-d] [-s] [-o OPTION[,OPTION...]] MOUNTPOINT "
			"(--help for more)\n",
			argv[0]);
		goto free_cl;
	}
	st = vr_options_check_fuse(&args);
	if (st != 0) {
		ret = -st;
		goto free_cl;
	}
	ret = 1;
	st = d.opts.log ? vr_log_open_file(d.opts.log) : 0;
	if (st != 0) {
		fprintf(stderr, "vram-residency: log=%s: %s; nothing mounted\n", d.opts.log,
			strerror(-st));
		goto free_cl;
	}
	if (cl.debug)
		vr_log_set_level(LOG_DEBUG);
	raise_nofile();
	ret = run(&d, &args, &cl);
free_cl:
	free(cl.mountpoint);
free_args:
	vr_options_free(&d.opts);
	fuse_opt_free_args(&args);
	return ret;
}
