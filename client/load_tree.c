/*
 * load_tree.c - vr_client_load: files and whole directories imported into a mount over several
 * connections at once, largest files first, all or nothing.
 */
#include "client_private.h"
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

#define MAX_DEPTH 256	     /* folders below a source */
#define MAX_JOBS  16	     /* connections at once: well inside the daemon's 64 per user */
#define GRAIN	  (64 << 10) /* the smallest unit of device memory a file takes */

struct item {
	char *src, *dest;
	mode_t mode;
	uint64_t size;
	bool existed; /* the destination was there before (a replacement: never removed) */
	bool made;    /* loaded (a file) or created (a folder) by this call */
	ino_t ino;    /* what was made: the daemon's inode number for it */
};

struct plan {
	struct item *files, *dirs; /* folders parents first */
	size_t nfiles, ndirs, capf, capd;
	uint64_t bytes, replaced;
	mode_t umask;
	char *err;
	size_t cap;
	/* the folders open on the walk's way down (a link back to one is a loop) */
	dev_t up_dev[MAX_DEPTH + 1];
	ino_t up_ino[MAX_DEPTH + 1];
	/* the loading threads' shared state */
	pthread_mutex_t lock;
	size_t next;
	int ret;		 /* the first failure */
	struct vr_client *first; /* the connection made to check the mount, for one loader */
	struct vr_client_progress progress;
	vr_client_progress_fn fn;
	void *arg;
	bool direct; /* VR_CLIENT_DIRECT: sources opened with O_DIRECT where they can be */
};

static int say(struct plan *p, int ret, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int walk(struct plan *p, const char *src, const char *dest, int depth);

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

/*
 * Whether the last component of PATH, when it is a symbolic link, may be
 * followed by this process as the kernel's fs.protected_symlinks allows:
 * not a link of another user's in a sticky folder anyone may write, unless
 * that folder is the link owner's. (The library resolves links itself.)
 */
static int link_ok(struct plan *p, const char *path, const struct stat *l)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat d;

	if (!S_ISLNK(l->st_mode) || l->st_uid == geteuid())
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (!*dir)
		strcpy(dir, "/");
	if (stat(dir, &d) != 0 || !(d.st_mode & S_ISVTX) || !(d.st_mode & S_IWOTH) ||
	    d.st_uid == l->st_uid)
		return 0;
	return say(p, -EACCES,
		   "%s: a link of another user's in a shared folder: not followed (as the "
		   "kernel's fs.protected_symlinks refuses)",
		   path);
}

/* Checks each component of PATH with link_ok. */
static int path_ok(struct plan *p, const char *path)
{
	char pre[PATH_MAX];
	struct stat l;
	int ret = 0;

	for (const char *c = strchr(path + 1, '/'); ret == 0; c = strchr(c + 1, '/')) {
		size_t len = c ? (size_t)(c - path) : strlen(path);

		if (len >= sizeof(pre))
			return say(p, -ENAMETOOLONG, "%s: path too long", path);
		memcpy(pre, path, len);
		pre[len] = '\0';
		if (lstat(pre, &l) == 0)
			ret = link_ok(p, pre, &l);
		if (!c)
			break;
	}
	return ret;
}

static int add(struct plan *p, bool dir, const char *src, const char *dest, const struct stat *st)
{
	struct item **v = dir ? &p->dirs : &p->files;
	size_t *n = dir ? &p->ndirs : &p->nfiles, *cap = dir ? &p->capd : &p->capf;
	struct stat old, to;
	int ret;

	bool existed = lstat(dest, &old) == 0;

	if (existed && (ret = link_ok(p, dest, &old)) != 0)
		return ret;
	/* cp's "are the same file": loading a file onto itself would replace it with nothing */
	if (existed && !dir && stat(dest, &to) == 0 && to.st_dev == st->st_dev &&
	    to.st_ino == st->st_ino)
		return say(p, -EINVAL, "%s and %s are the same file: nothing loaded", src, dest);
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
	it->existed = existed;
	if (!dir) {
		p->bytes += it->size;
		if (existed && S_ISREG(old.st_mode))
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

/* Adds the entries of folder SRC (opened, at DEPTH) below DEST. */
static int walk_dir(struct plan *p, const char *src, const char *dest, int depth)
{
	DIR *d = opendir(src);
	struct dirent *e;
	int ret = 0;

	if (!d)
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
	closedir(d);
	return ret;
}

/* cp's "cannot copy a directory into itself": folder SRC's copy DEST inside SRC (its tree
 * would hold a copy of itself). Returns 0 or -EINVAL, said. */
static int not_into_itself(struct plan *p, const char *src, const char *dest)
{
	char parent[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	const char *slash = strrchr(dest, '/');

	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - dest) + (slash == dest),
			 dest);
	/* unresolvable: the load fails there anyway, with its own reason */
	if (!realpath(src, from) || !realpath(parent, to))
		return 0;
	size_t n = strlen(from);

	if (strncmp(to, from, n) == 0 && (to[n] == '\0' || to[n] == '/' || n == 1))
		return say(p, -EINVAL, "cannot load %s into itself, %s: nothing loaded", src, dest);
	return 0;
}

/*
 * Adds SRC (a file, or a folder and everything below it) as DEST to the plan.
 * Links are followed, as cp -rL does (a Hugging Face snapshot's links to its
 * blobs load as the files); one that leads back up the tree is a loop.
 */
static int walk(struct plan *p, const char *src, const char *dest, int depth)
{
	struct stat st;
	int ret;

	if (stat(src, &st) != 0)
		return say(p, -errno, "%s: %s", src, strerror(errno));
	if (S_ISREG(st.st_mode))
		return add(p, false, src, dest, &st);
	if (!S_ISDIR(st.st_mode))
		return say(p, -EINVAL, "%s: not a regular file or directory", src);
	if (depth >= MAX_DEPTH)
		return say(p, -ELOOP, "%s: more than %d folders deep", src, MAX_DEPTH);
	for (int i = 0; i < depth; i++)
		if (p->up_dev[i] == st.st_dev && p->up_ino[i] == st.st_ino)
			return say(p, -ELOOP, "%s: a link back to a folder above it (a loop)", src);
	if (depth == 0 && (ret = not_into_itself(p, src, dest)) != 0)
		return ret;
	p->up_dev[depth] = st.st_dev;
	p->up_ino[depth] = st.st_ino;
	ret = add(p, true, src, dest, &st);
	return ret ? ret : walk_dir(p, src, dest, depth);
}

static int by_size_down(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 : strcmp(x->dest, y->dest);
}

static int by_dest(const void *a, const void *b)
{
	return strcmp((*(const struct item *const *)a)->dest,
		      (*(const struct item *const *)b)->dest);
}

/* Refuses two sources loading into one destination (cp: "will not overwrite just-created"). */
static int no_twins(struct plan *p)
{
	size_t n = p->nfiles + p->ndirs;
	typedef const struct item *item_ptr;
	item_ptr *all;
	int ret = 0;

	if (n == 0)
		return 0;
	all = calloc(n, sizeof(item_ptr));
	if (!all)
		return say(p, -ENOMEM, "out of memory");
	for (size_t i = 0; i < p->nfiles; i++)
		all[i] = &p->files[i];
	for (size_t i = 0; i < p->ndirs; i++)
		all[p->nfiles + i] = &p->dirs[i];
	qsort(all, n, sizeof(item_ptr), by_dest);
	for (size_t i = 1; i < n && ret == 0; i++)
		if (strcmp(all[i - 1]->dest, all[i]->dest) == 0)
			ret = say(p, -EEXIST, "%s and %s would both load into %s: nothing loaded",
				  all[i - 1]->src, all[i]->src, all[i]->dest);
	free(all);
	return ret;
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
			if (lstat(d->dest, &st) == 0)
				d->ino = st.st_ino;
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
	uint64_t got = 0, ino = 0;
	int fd = -1, ret;

	/* O_DIRECT where the source's filesystem takes it (a block device's: the daemon reads
	 * it into its slots past the page cache), else as any read; never blocking in the open,
	 * and then only a regular file: one swapped for a FIFO since the walk would hang here */
	if (p->direct)
		fd = open(it->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_DIRECT);
	if (fd < 0)
		fd = open(it->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0) {
		struct stat st;
		int fl = fcntl(fd, F_GETFL);

		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 ||
		    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
			close(fd);
			fd = -1;
			errno = EINVAL;
		}
	}
	if (fd < 0) {
		ret = -errno;
		pthread_mutex_lock(&p->lock);
		say(p, ret, "%s: %s", it->src,
		    ret == -EINVAL ? "no longer a regular file (changed since the walk)"
				   : strerror(-ret));
		pthread_mutex_unlock(&p->lock);
		return ret;
	}
	ret = vr_client_import_ino(c, fd, it->dest, it->mode, &got, &ino);
	close(fd);
	pthread_mutex_lock(&p->lock);
	if (ret) {
		say(p, ret, "%s -> %s: %s", it->src, it->dest, vr_client_error(c));
		/* refused at sealing, it stays (as cp's would): the undo removes it too */
		it->made = ino != 0;
		it->ino = (ino_t)ino;
	} else {
		it->made = true;
		it->ino = (ino_t)ino;
		p->progress.files_done++;
		p->progress.bytes_done += got;
		p->progress.src = it->src;
		p->progress.dest = it->dest;
		p->progress.size = got;
		if (p->fn && p->fn(&p->progress, p->arg) != 0)
			ret = say(p, -ECANCELED, "stopped: nothing loaded");
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* A loading thread: a connection of its own, then files until none is left or one failed.
 * One that cannot connect (the daemon's per-user limit) leaves the files to the others. */
static void *loader(void *arg)
{
	struct plan *p = arg;
	struct vr_client *c = NULL;
	char where[PATH_MAX];
	int ret;

	pthread_mutex_lock(&p->lock);
	c = p->first;
	p->first = NULL;
	pthread_mutex_unlock(&p->lock);
	if (!c) {
		parent_of(p->files[0].dest, where, sizeof(where));
		if (vr_client_connect(p->ndirs ? p->dirs[0].dest : where, &c) != 0)
			return NULL;
	}
	pthread_mutex_lock(&p->lock);
	while (p->ret == 0 && p->next < p->nfiles) {
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

/* Removes ITEM when what its path names now is what this call made (the same inode: a link
 * swapped on the way leads elsewhere, and that is left alone). True when removed. */
static bool undo_one(const struct item *it, bool dir)
{
	char parent[PATH_MAX];
	const char *name = strrchr(it->dest, '/');
	struct stat st;
	bool done = false;

	parent_of(it->dest, parent, sizeof(parent));
	name = name ? name + 1 : it->dest;
	int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == it->ino &&
	    (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
		done = unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) == 0;
	close(dfd);
	return done;
}

/* Removes what this call made (files loaded, folders created), newest first; says so. */
static void undo(struct plan *p)
{
	unsigned removed = 0, stays = 0;
	size_t len = p->err ? strlen(p->err) : 0;

	for (size_t i = p->nfiles; i-- > 0;)
		if (p->files[i].made && !p->files[i].existed)
			removed += undo_one(&p->files[i], false);
	for (size_t i = p->ndirs; i-- > 0;)
		if (p->dirs[i].made && !undo_one(&p->dirs[i], true))
			stays++;
	if (p->err && len + 1 < p->cap && (removed || stays))
		snprintf(p->err + len, p->cap - len,
			 " (removed what the load had made: %u file%s%s", removed,
			 removed == 1 ? "" : "s", stays ? "" : ")");
	len = p->err ? strlen(p->err) : 0;
	if (p->err && len + 1 < p->cap && stays)
		snprintf(p->err + len, p->cap - len, "; %u folder%s it made stay%s, not empty)",
			 stays, stays == 1 ? "" : "s", stays == 1 ? "s" : "");
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
	if (p->ret == 0 && p->next < p->nfiles) /* no loader could connect */
		p->ret = say(p, -ECONNREFUSED, "the daemon took no connection: nothing loaded");
	return p->ret;
}

/* Plans every source: walked, checked, sorted largest first; 0 or -errno with the reason. */
static int plan_all(struct plan *p, const char *const *src, const char *const *dest, size_t n,
		    char *where, size_t wcap)
{
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i++) {
		char abs[PATH_MAX * 2], cwd[PATH_MAX];
		struct stat st;

		parent_of(dest[i], where, wcap);
		if (stat(where, &st) != 0)
			return say(p, -errno, "%s: %s", where, strerror(errno));
		/* the destination's path, its links checked as the kernel would follow them */
		if (dest[i][0] != '/' && !getcwd(cwd, sizeof(cwd)))
			return say(p, -errno, "the current folder: %s", strerror(errno));
		snprintf(abs, sizeof(abs), "%s%s%s", dest[i][0] == '/' ? "" : cwd,
			 dest[i][0] == '/' ? "" : "/", dest[i]);
		ret = path_ok(p, abs);
		if (ret == 0)
			ret = walk(p, src[i], dest[i], 0);
	}
	if (ret == 0)
		ret = no_twins(p);
	if (ret)
		return ret;
	qsort(p->files, p->nfiles, sizeof(*p->files), by_size_down);
	p->progress.files = p->nfiles;
	p->progress.bytes = p->bytes;
	/* a mount with a socket, before anything is weighed or made */
	ret = vr_client_connect(where, &p->first);
	if (ret)
		return say(p, ret, "%s: not a vram-residency mount with a socket: %s", where,
			   strerror(-ret));
	return fits(p, where);
}

int vr_client_load_all(const char *const *src, const char *const *dest, size_t n, unsigned jobs,
		       vr_client_progress_fn fn, void *arg, char *err, size_t cap)
{
	struct plan p = {.umask = current_umask(),
			 .err = err,
			 .cap = cap,
			 .fn = fn,
			 .arg = arg,
			 .direct = (jobs & VR_CLIENT_DIRECT) != 0};
	char where[PATH_MAX] = ".";
	int ret;

	jobs &= ~VR_CLIENT_DIRECT;

	if (err && cap)
		err[0] = '\0';
	pthread_mutex_init(&p.lock, NULL);
	ret = plan_all(&p, src, dest, n, where, sizeof(where));
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
		undo(&p);
	}
	vr_client_close(p.first);
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

int vr_client_load(const char *src, const char *dest, unsigned jobs, vr_client_progress_fn fn,
		   void *arg, char *err, size_t cap)
{
	return vr_client_load_all(&src, &dest, 1, jobs, fn, arg, err, cap);
}
