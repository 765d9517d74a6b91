/*
 * vram-keeper.c - a small supervisor that keeps the daemon's device memory across its restarts:
 * it runs the daemon, holds the descriptors the daemon stores (systemd's file descriptor store
 * protocol over NOTIFY_SOCKET: FDSTORE=1, FDNAME=, FDSTOREREMOVE=1), restarts the daemon when it
 * dies or is stopped by a signal, and hands them back (LISTEN_FDS, LISTEN_FDNAMES). For
 * containers and hosts without systemd; docs/operations.md, "Restarts".
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 255
#define FDS_PER_MSG  253 /* the kernel's SCM_MAX_FD */

struct stored {
	char name[NAME_MAX_LEN + 1];
	int fd;
};

static struct stored *store;
static size_t nstore, capstore, store_max = 4096;
static pid_t child;
static char sock_dir[48], sock_path[96];

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vram-keeper: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* systemd's rule for names: printable ASCII but ':', at most 255 bytes */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e || *s == ':')
			return false;
	return true;
}

static void remove_name(const char *name)
{
	size_t j = 0;

	for (size_t i = 0; i < nstore; i++) {
		if (strcmp(store[i].name, name) == 0)
			close(store[i].fd);
		else
			store[j++] = store[i];
	}
	nstore = j;
}

static void add_fd(const char *name, int fd)
{
	if (nstore == store_max) {
		say("the store is full (%zu descriptors): %s not kept", store_max, name);
		close(fd);
		return;
	}
	if (nstore == capstore) {
		size_t ncap = capstore ? capstore * 2 : 64;
		struct stored *n = realloc(store, ncap * sizeof(*n));

		if (!n) {
			say("out of memory: %s not kept", name);
			close(fd);
			return;
		}
		store = n;
		capstore = ncap;
	}
	snprintf(store[nstore].name, sizeof(store[nstore].name), "%s", name);
	store[nstore++].fd = fd;
}

/* One datagram: its lines, with the descriptors FDS (N) it carried, from PID. */
static void handle(char *text, int *fds, size_t n, pid_t pid)
{
	bool fdstore = false, remove = false;
	char name[NAME_MAX_LEN + 1] = "stored";

	if (pid != child || child <= 0) {
		/* only the daemon this keeper runs may store (systemd checks the same) */
		say("ignored a message from pid %ld, not the daemon's", (long)pid);
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return;
	}
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strcmp(l, "FDSTORE=1") == 0)
			fdstore = true;
		else if (strcmp(l, "FDSTOREREMOVE=1") == 0)
			remove = true;
		else if (strncmp(l, "FDNAME=", 7) == 0)
			snprintf(name, sizeof(name), "%s", l + 7);
	}
	if (!name_ok(name)) {
		say("ignored descriptors with an invalid name");
		fdstore = remove = false;
	}
	for (size_t i = 0; i < n; i++) {
		if (fdstore)
			add_fd(name, fds[i]);
		else
			close(fds[i]);
	}
	if (remove && !fdstore)
		remove_name(name);
}

/* Reads every datagram waiting on SOCK. */
static void drain(int sock)
{
	for (;;) {
		char text[4096];
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG) +
				 CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} u;
		struct iovec iov = {.iov_base = text, .iov_len = sizeof(text) - 1};
		struct msghdr m = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = u.buf,
				   .msg_controllen = sizeof(u.buf)};
		int fds[FDS_PER_MSG];
		size_t nfds = 0;
		pid_t pid = 0;
		ssize_t got = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (got < 0)
			return;
		text[got] = '\0';
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				memcpy(fds + nfds, CMSG_DATA(c), k * sizeof(int));
				nfds += k;
			} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cr;

				memcpy(&cr, CMSG_DATA(c), sizeof(cr));
				pid = cr.pid;
			}
		}
		if (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
			say("ignored a message cut short");
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		handle(text, fds, nfds, pid);
	}
}

/* In the child: the stored descriptors at 3, 4, ... as sd_listen_fds() expects, then exec. */
static void exec_daemon(char **argv)
{
	size_t names_len = 1;
	char num[32], *names;
	int *tmp = calloc(nstore + 1, sizeof(int));

	for (size_t i = 0; i < nstore; i++)
		names_len += strlen(store[i].name) + 1;
	names = calloc(1, names_len);
	if (!tmp || !names)
		_exit(127);
	for (size_t i = 0; i < nstore; i++) {
		tmp[i] = fcntl(store[i].fd, F_DUPFD, (int)(3 + nstore));
		if (tmp[i] < 0)
			_exit(127);
		if (i)
			strcat(names, ":");
		strcat(names, store[i].name);
	}
	for (size_t i = 0; i < nstore; i++)
		if (dup2(tmp[i], (int)(3 + i)) < 0)
			_exit(127);
	closefrom((int)(3 + nstore));
	snprintf(num, sizeof(num), "%ld", (long)getpid());
	setenv("LISTEN_PID", num, 1);
	snprintf(num, sizeof(num), "%zu", nstore);
	setenv("LISTEN_FDS", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	if (nstore == 0) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
	}
	execvp(argv[0], argv);
	fprintf(stderr, "vram-keeper: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* The names go to the daemon in one environment string, which Linux caps at 128 KiB: past
 * that no daemon could start, so what was held is let go and it starts empty. */
#define NAMES_MAX (120 << 10)

static void fit_names(void)
{
	size_t len = 0;

	for (size_t i = 0; i < nstore; i++)
		len += strlen(store[i].name) + 1;
	if (len <= NAMES_MAX)
		return;
	say("the %zu descriptors held have names too long to hand over (%zu bytes): let go, "
	    "the daemon starts empty",
	    nstore, len);
	for (size_t i = 0; i < nstore; i++)
		close(store[i].fd);
	nstore = 0;
}

static int start(char **argv)
{
	sigset_t none;

	fit_names();
	child = fork();
	if (child < 0) {
		say("cannot start the daemon: %s", strerror(errno));
		return -1;
	}
	if (child == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		exec_daemon(argv);
	}
	say("started %s (pid %ld) with %zu descriptors", argv[0], (long)child, nstore);
	return 0;
}

static int make_socket(void)
{
	const char *base = getenv("RUNTIME_DIRECTORY");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int one = 1, fd;

	snprintf(sock_dir, sizeof(sock_dir), "%s/vram-keeper.XXXXXX",
		 base && strlen(base) < 32   ? base
		 : access("/run", W_OK) == 0 ? "/run"
					     : "/tmp");
	if (!mkdtemp(sock_dir)) {
		say("cannot make a folder for the socket: %s", strerror(errno));
		return -1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/notify", sock_dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
		say("cannot make the notify socket: %s", strerror(errno));
		return -1;
	}
	return fd;
}

static void cleanup(int sock)
{
	for (size_t i = 0; i < nstore; i++)
		close(store[i].fd);
	nstore = 0;
	close(sock);
	unlink(sock_path);
	rmdir(sock_dir);
}

/*
 * The daemon may have ended: decides, as its keeper, what follows. Returns 0 (it runs: still,
 * or again) or 1 (the keeper stops, with *STATUS).
 */
static int reap(int sock, bool stopping, int max_restarts, char **argv, int *status)
{
	static time_t window;
	static int restarts;
	int ws;
	pid_t w = waitpid(child, &ws, WNOHANG);

	if (w != child)
		return 0;
	drain(sock); /* what it stored before it ended */
	child = 0;
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (WIFEXITED(ws))
		say("the daemon exited with status %d, %zu descriptors held", *status, nstore);
	else
		say("the daemon was killed by signal %d, %zu descriptors held", WTERMSIG(ws),
		    nstore);
	if (stopping)
		return 1;
	if (WIFEXITED(ws) && *status == 0 && nstore == 0)
		return 1; /* unmounted: it let go of everything */
	if (time(NULL) - window > 60) {
		window = time(NULL);
		restarts = 0;
	}
	if (++restarts > max_restarts) {
		say("%d restarts within a minute: giving up; what was resident is freed",
		    max_restarts);
		*status = 1;
		return 1;
	}
	if (start(argv) != 0) {
		*status = 1;
		return 1;
	}
	return 0;
}

/* Every descriptor the hard limit allows, the store's bound under it. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < store_max + 64)
		store_max = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
}

static int usage(void)
{
	fprintf(stderr, "usage: vram-keeper [--max-restarts N] [--] vram-residency -f MOUNTPOINT "
			"-o secret=FILE[,OPTIONS]\n"
			"Runs the daemon in the foreground, keeps the device memory it stores, and "
			"restarts it when it dies or is stopped\nby a signal (kill -TERM: an "
			"upgrade); stops with it when it is unmounted. SIGTERM or SIGINT to\n"
			"vram-keeper stops both, and what was resident is freed.\n");
	return 2;
}

int main(int argc, char **argv)
{
	int max_restarts = 5, i = 1, status = 0, sock, sfd;
	bool stopping = false, foreground = false;
	sigset_t set;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--max-restarts") == 0 && i + 1 < argc) {
			max_restarts = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("vram-keeper %s\n", VR_VERSION);
			return 0;
		} else {
			return usage();
		}
	}
	if (i >= argc || max_restarts < 0)
		return usage();
	for (int j = i + 1; j < argc; j++)
		foreground |= strcmp(argv[j], "-f") == 0 || strcmp(argv[j], "-d") == 0;
	if (!foreground) {
		say("the daemon must stay in the foreground under a keeper: give it -f");
		return 2;
	}
	raise_nofile();
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	sock = make_socket();
	if (sfd < 0 || sock < 0)
		return 1;
	char max[32];

	snprintf(max, sizeof(max), "%zu", store_max);
	setenv("NOTIFY_SOCKET", sock_path, 1);
	setenv("FDSTORE", max, 1);
	if (start(argv + i) != 0) {
		cleanup(sock);
		return 1;
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		struct signalfd_siginfo si;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN)
			drain(sock);
		if (!(p[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			stopping = true;
			if (child > 0)
				kill(child, SIGTERM);
			continue;
		}
		if (si.ssi_signo == SIGHUP) {
			if (child > 0)
				kill(child, SIGHUP);
			continue;
		}
		int done = reap(sock, stopping, max_restarts, argv + i, &status);

		if (done)
			break;
	}
	cleanup(sock);
	return status;
}
