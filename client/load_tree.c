/*
 * load_tree.c - vr_client_load: a file or a whole directory imported into a mount over several
 * connections at once, largest files first, all or nothing.
 */
#include "vram_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAX_DEPTH 64	     /* folders below the source (a link loop ends here) */
#define MAX_JOBS  64	     /* connections at once: the daemon's per-user limit */
#define GRAIN	  (64 << 10) /* the smallest unit of device memory a file takes */

struct item {
	char *src, *dest;
	mode_t mode;
	uint64_t size;
	bool existed; /* the destination was there before (a replacement: never removed) */
	bool made;    /* loaded (a file) or created (a folder) by this call */
};

struct plan {
	struct item *files, *dirs; /* folders parents first */
	size_t nfiles, ndirs, capf, capd;
	uint64_t bytes, replaced;
	mode_t umask;
	char *err;
	size_t cap;
	/* the loading threads' shared state */
	pthread_mutex_t lock;
	size_t next;
	int ret; /* the first failure */
	struct vr_client_progress progress;
	vr_client_progress_fn fn;
	void *arg;
};

static int say(struct plan *p, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first failure's reason in the caller's buffer; returns RET. */
static int say(struct plan *p, int ret, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->cap && !p->err[0]) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->cap, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static int add(struct plan *p, bool dir, const char *src, const char *dest, const struct stat *st)
{
	struct item **v = dir ? &p->dirs : &p->files;
	size_t *n = dir ? &p->ndirs : &p->nfiles, *cap = dir ? &p->capd : &p->capf;
	struct stat old;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct item *m = realloc(*v, ncap * sizeof(*m));

		if (!m)
			return say(p, -ENOMEM, "out of memory");
		*v = m;
		*cap = ncap;
	}
	struct item *it = &(*v)[*n];

	memset(it, 0, sizeof(*it));
	it->src = strdup(src);
	it->dest = strdup(dest);
	if (!it->src || !it->dest) {
		free(it->src);
		free(it->dest);
		return say(p, -ENOMEM, "out of memory");
	}
	it->mode = st->st_mode & 07777 & ~p->umask;
	it->size = dir ? 0 : (uint64_t)st->st_size;
	it->existed = lstat(dest, &old) == 0;
	if (!dir) {
		p->bytes += it->size;
		if (it->existed && S_ISREG(old.st_mode))
			p->replaced += (uint64_t)old.st_size;
	}
	(*n)++;
	return 0;
}

/* DIR/NAME into OUT, DIR's trailing slashes dropped; -ENAMETOOLONG when it does not fit. */
static int join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t len = strlen(dir);

	while (len > 1 && dir[len - 1] == '/')
		len--;
	int n =
	    snprintf(out, cap, "%.*s/%s", (int)(len == 1 && dir[0] == '/' ? 0 : len), dir, name);

	return n >= 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* Adds SRC (a file, or a folder and everything below it) as DEST to the plan. */
static int walk(struct plan *p, const char *src, const char *dest, int depth)
{
	struct stat st;
	struct dirent *e;
	int ret = 0;

	if (stat(src, &st) != 0)
		return say(p, -errno, "%s: %s", src, strerror(errno));
	if (S_ISREG(st.st_mode))
		return add(p, false, src, dest, &st);
	if (!S_ISDIR(st.st_mode))
		return say(p, -EINVAL, "%s: not a regular file or directory", src);
	if (depth >= MAX_DEPTH)
		return say(p, -ELOOP, "%s: more than %d folders deep (a link loop?)", src,
			   MAX_DEPTH);
	ret = add(p, true, src, dest, &st);
	DIR *d = ret ? NULL : opendir(src);

	if (!ret && !d)
		return say(p, -errno, "%s: %s", src, strerror(errno));
	while (ret == 0 && (e = readdir(d)) != NULL) {
		char s[PATH_MAX], t[PATH_MAX];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (join(s, sizeof(s), src, e->d_name) || join(t, sizeof(t), dest, e->d_name))
			ret = say(p, -ENAMETOOLONG, "%s/%s: path too long", src, e->d_name);
		else
			ret = walk(p, s, t, depth + 1);
	}
	if (d)
		closedir(d);
	return ret;
}

static int by_size_down(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 : strcmp(x->dest, y->dest);
}

/* The process's umask, read without changing it (umask(2) would race other threads). */
static mode_t current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned m = 022;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	if (f)
		fclose(f);
	return (mode_t)m & 0777;
}

/* The folder DEST is (or will be made) in: the mount's daemon is found from there. */
static void parent_of(const char *dest, char *out, size_t cap)
{
	const char *slash;
	size_t len = strlen(dest);

	while (len > 1 && dest[len - 1] == '/')
		len--;
	for (slash = dest + len; slash > dest && slash[-1] != '/';)
		slash--;
	if (slash == dest)
		snprintf(out, cap, ".");
	else
		snprintf(out, cap, "%.*s", (int)(slash - dest > 1 ? slash - dest - 1 : 1), dest);
}

/* Refuses a plan that cannot fit in what the mount has free, before anything is made. */
static int fits(struct plan *p, const char *where)
{
	struct statvfs sv;
	uint64_t need = 0, avail;

	if (statvfs(where, &sv) != 0)
		return say(p, -errno, "%s: %s", where, strerror(errno));
	for (size_t i = 0; i < p->nfiles; i++)
		need += (p->files[i].size + GRAIN - 1) / GRAIN * GRAIN;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	/* a replaced file's memory comes back as its replacement is sealed */
	need = need > p->replaced ? need - p->replaced : 0;
	if (need > avail)
		return say(p, -ENOSPC,
			   "needs %llu bytes of device memory and the mount has %llu free: "
			   "nothing loaded",
			   (unsigned long long)need, (unsigned long long)avail);
	return 0;
}

/* Makes the plan's folders, each writable by its maker until the files are in. */
static int make_dirs(struct plan *p)
{
	for (size_t i = 0; i < p->ndirs; i++) {
		struct item *d = &p->dirs[i];
		struct stat st;

		if (mkdir(d->dest, d->mode | 0700) == 0) {
			d->made = true;
			continue;
		}
		int e = errno;

		if (e == EEXIST && (stat(d->dest, &st) != 0 || !S_ISDIR(st.st_mode)))
			e = ENOTDIR;
		if (e != EEXIST)
			return say(p, -e, "%s: %s", d->dest, strerror(e));
	}
	return 0;
}

/* Loads one file over C; returns 0 or -errno with the reason said. */
static int load_one(struct plan *p, struct vr_client *c, struct item *it)
{
	uint64_t got = 0;
	int fd = open(it->src, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0) {
		ret = -errno;
		pthread_mutex_lock(&p->lock);
		say(p, ret, "%s: %s", it->src, strerror(-ret));
		pthread_mutex_unlock(&p->lock);
		return ret;
	}
	ret = vr_client_import(c, fd, it->dest, it->mode, &got);
	close(fd);
	pthread_mutex_lock(&p->lock);
	if (ret) {
		say(p, ret, "%s -> %s: %s", it->src, it->dest, vr_client_error(c));
	} else {
		it->made = true;
		p->progress.files_done++;
		p->progress.bytes_done += got;
		p->progress.src = it->src;
		p->progress.dest = it->dest;
		p->progress.size = got;
		if (p->fn)
			p->fn(&p->progress, p->arg);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* A loading thread: its own connection, then files until none is left or one failed. */
static void *loader(void *arg)
{
	struct plan *p = arg;
	struct vr_client *c = NULL;
	char where[PATH_MAX];
	int ret;

	parent_of(p->files[0].dest, where, sizeof(where));
	ret = vr_client_connect(p->ndirs ? p->dirs[0].dest : where, &c);
	pthread_mutex_lock(&p->lock);
	if (ret)
		say(p, ret, "not a vram-residency mount with a socket: %s", strerror(-ret));
	if (ret && !p->ret)
		p->ret = ret;
	while (ret == 0 && p->ret == 0 && p->next < p->nfiles) {
		struct item *it = &p->files[p->next++];

		pthread_mutex_unlock(&p->lock);
		ret = load_one(p, c, it);
		pthread_mutex_lock(&p->lock);
		if (ret && !p->ret)
			p->ret = ret;
	}
	pthread_mutex_unlock(&p->lock);
	vr_client_close(c);
	return NULL;
}

/* Removes what this call made (files loaded, folders created), newest first. */
static unsigned undo(struct plan *p)
{
	unsigned removed = 0;

	for (size_t i = p->nfiles; i-- > 0;)
		if (p->files[i].made && !p->files[i].existed && unlink(p->files[i].dest) == 0)
			removed++;
	for (size_t i = p->ndirs; i-- > 0;)
		if (p->dirs[i].made)
			rmdir(p->dirs[i].dest);
	return removed;
}

static int run(struct plan *p, unsigned jobs)
{
	pthread_t t[MAX_JOBS];
	unsigned started = 0;

	if (jobs == 0) {
		/* an import keeps about two cores busy (the daemon's reader and loader, then
		 * the seal's SHA-256 beside its tree), so one per two CPUs: on 2 cores two at
		 * once ran slower than one (docs/benchmarks.md) */
		long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;

		jobs = n > 0 ? (unsigned)n : 1;
	}
	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	if (jobs > p->nfiles)
		jobs = (unsigned)p->nfiles;
	for (; started < jobs; started++)
		if (pthread_create(&t[started], NULL, loader, p) != 0)
			break;
	if (started == 0 && jobs)
		loader(p); /* no thread could start: this one loads them all */
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	return p->ret;
}

int vr_client_load(const char *src, const char *dest, unsigned jobs, vr_client_progress_fn fn,
		   void *arg, char *err, size_t cap)
{
	struct plan p = {.umask = current_umask(), .err = err, .cap = cap, .fn = fn, .arg = arg};
	char where[PATH_MAX];
	int ret;

	if (err && cap)
		err[0] = '\0';
	pthread_mutex_init(&p.lock, NULL);
	ret = walk(&p, src, dest, 0);
	if (ret == 0) {
		struct vr_client *c = NULL;

		qsort(p.files, p.nfiles, sizeof(*p.files), by_size_down);
		p.progress.files = p.nfiles;
		p.progress.bytes = p.bytes;
		/* a mount with a socket, before anything is weighed or made */
		parent_of(dest, where, sizeof(where));
		ret = vr_client_connect(where, &c);
		if (ret)
			say(&p, ret, "%s: not a vram-residency mount with a socket: %s", where,
			    strerror(-ret));
		vr_client_close(c);
	}
	if (ret == 0)
		ret = fits(&p, where);
	if (ret == 0)
		ret = make_dirs(&p);
	if (ret == 0 && p.nfiles)
		ret = run(&p, jobs);
	if (ret == 0) {
		/* the folders' own modes, now that their files are in */
		for (size_t i = p.ndirs; i-- > 0;)
			if (p.dirs[i].made && (p.dirs[i].mode | 0700) != p.dirs[i].mode)
				chmod(p.dirs[i].dest, p.dirs[i].mode);
	} else {
		unsigned removed = undo(&p);
		size_t len = err ? strlen(err) : 0;

		if (removed && err && len + 1 < cap)
			snprintf(err + len, cap - len, " (the %u files loaded before were removed)",
				 removed);
	}
	for (size_t i = 0; i < p.nfiles; i++) {
		free(p.files[i].src);
		free(p.files[i].dest);
	}
	for (size_t i = 0; i < p.ndirs; i++) {
		free(p.dirs[i].src);
		free(p.dirs[i].dest);
	}
	free(p.files);
	free(p.dirs);
	pthread_mutex_destroy(&p.lock);
	return ret;
}
