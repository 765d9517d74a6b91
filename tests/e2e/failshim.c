/*
 * failshim.c - an LD_PRELOAD library for test_startup_faults.sh: makes the Nth call of one
 * C library function fail, as a short system would (VR_FAIL=NAME:N), and says so on stderr
 * ("failshim: NAME call N fails"), so the test knows the failure was met. Only the daemon is
 * run with it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char fail_name[64];
static long fail_at;
static atomic_long calls;

__attribute__((constructor)) static void init(void)
{
	const char *spec = getenv("VR_FAIL");
	const char *colon = spec ? strchr(spec, ':') : NULL;

	if (!colon || (size_t)(colon - spec) >= sizeof(fail_name))
		return;
	memcpy(fail_name, spec, (size_t)(colon - spec));
	fail_at = strtol(colon + 1, NULL, 10);
}

/* Whether this call of NAME is the one to fail (said on stderr when it is). */
static bool hit(const char *name)
{
	char msg[128];
	int n;

	if (strcmp(name, fail_name) != 0 || atomic_fetch_add(&calls, 1) + 1 != fail_at)
		return false;
	n = snprintf(msg, sizeof(msg), "failshim: %s call %ld fails\n", name, fail_at);
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		return true; /* nowhere to say it: it still fails */
	return true;
}

#define REAL(f)                                                                                    \
	static __typeof__(f) *real_;                                                               \
	if (!real_)                                                                                \
	real_ = (__typeof__(f) *)dlsym(RTLD_NEXT, #f)

#define FAIL_AS(err, ret)                                                                          \
	do {                                                                                       \
		errno = (err);                                                                     \
		return (ret);                                                                      \
	} while (0)

static int open_as(const char *name, const char *path, int flags, mode_t mode)
{
	if (hit("open"))
		FAIL_AS(EMFILE, -1);
	if (strcmp(name, "open64") == 0) {
		REAL(open64);
		return real_(path, flags, mode);
	}
	REAL(open);
	return real_(path, flags, mode);
}

/* The mode argument open passes only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                                      \
	do {                                                                                       \
		if ((flags) & (O_CREAT | O_TMPFILE)) {                                             \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			(mode) = va_arg(ap, mode_t);                                               \
			va_end(ap);                                                                \
		}                                                                                  \
	} while (0)

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	return open_as("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	MODE_ARG(flags, mode);
	return open_as("open64", path, flags, mode);
}

FILE *fopen(const char *path, const char *mode)
{
	REAL(fopen);
	if (hit("fopen"))
		FAIL_AS(EMFILE, NULL);
	return real_(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
	REAL(fopen64);
	if (hit("fopen"))
		FAIL_AS(EMFILE, NULL);
	return real_(path, mode);
}

int pipe(int fd[2])
{
	REAL(pipe);
	if (hit("pipe"))
		FAIL_AS(EMFILE, -1);
	return real_(fd);
}

pid_t fork(void)
{
	REAL(fork);
	if (hit("fork"))
		FAIL_AS(EAGAIN, -1);
	return real_();
}

pid_t setsid(void)
{
	REAL(setsid);
	if (hit("setsid"))
		FAIL_AS(EPERM, -1);
	return real_();
}

int chdir(const char *path)
{
	REAL(chdir);
	if (hit("chdir"))
		FAIL_AS(EACCES, -1);
	return real_(path);
}

int dup2(int from, int to)
{
	REAL(dup2);
	if (hit("dup2"))
		FAIL_AS(EBADF, -1);
	return real_(from, to);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir);
	if (hit("mkdir"))
		FAIL_AS(EACCES, -1);
	return real_(path, mode);
}

int socket(int domain, int type, int protocol)
{
	REAL(socket);
	if (hit("socket"))
		FAIL_AS(EMFILE, -1);
	return real_(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *a, socklen_t len)
{
	REAL(bind);
	if (hit("bind"))
		FAIL_AS(EADDRINUSE, -1);
	return real_(fd, a, len);
}

int listen(int fd, int backlog)
{
	REAL(listen);
	if (hit("listen"))
		FAIL_AS(EADDRINUSE, -1);
	return real_(fd, backlog);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *a,
	       socklen_t alen)
{
	REAL(sendto);
	if (hit("sendto"))
		FAIL_AS(ECONNREFUSED, -1);
	return real_(fd, buf, len, flags, a, alen);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	REAL(sendmsg);
	if (hit("sendmsg"))
		FAIL_AS(ENOBUFS, -1);
	return real_(fd, m, flags);
}

int memfd_create(const char *name, unsigned flags)
{
	REAL(memfd_create);
	if (hit("memfd_create"))
		FAIL_AS(EMFILE, -1);
	return real_(name, flags);
}

int connect(int fd, const struct sockaddr *a, socklen_t len)
{
	REAL(connect);
	if (hit("connect"))
		FAIL_AS(ECONNREFUSED, -1);
	return real_(fd, a, len);
}

int getrlimit(__rlimit_resource_t r, struct rlimit *rl)
{
	REAL(getrlimit);
	if (hit("getrlimit"))
		FAIL_AS(EPERM, -1);
	return real_(r, rl);
}

int setrlimit(__rlimit_resource_t r, const struct rlimit *rl)
{
	REAL(setrlimit);
	if (hit("setrlimit"))
		FAIL_AS(EPERM, -1);
	return real_(r, rl);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	REAL(sigaction);
	if (hit("sigaction"))
		FAIL_AS(EINVAL, -1);
	return real_(sig, act, old);
}

int fsync(int fd)
{
	REAL(fsync);
	if (hit("fsync"))
		FAIL_AS(EIO, -1);
	return real_(fd);
}

int rename(const char *from, const char *to)
{
	REAL(rename);
	if (hit("rename"))
		FAIL_AS(EACCES, -1);
	return real_(from, to);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	REAL(pthread_create);
	if (hit("pthread_create"))
		return EAGAIN;
	return real_(t, attr, fn, arg);
}

int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	REAL(pthread_sigmask);
	if (hit("pthread_sigmask"))
		return EINVAL;
	return real_(how, set, old);
}
