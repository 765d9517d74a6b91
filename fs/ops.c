/* ops.c - the FUSE handlers: thin, each resolves the caller and calls core/residency. */
#include "ops.h"

#include "log.h"
#include "name.h"
#include "residency.h"
#include "vnames.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Every core result passes through here on its way to libfuse. Core returns 0
 * or a negative errno; anything else is a bug that libfuse would turn into a
 * "bad error value" or a bogus byte count, so it is logged and answered with
 * EIO. -EBADMSG (a digest or signature mismatch inside) reads as EIO, as with
 * fs-verity.
 */
static int out(const char *op, int ret)
{
	if (ret > 0 || ret < -4095) {
		vr_log(LOG_ERR, "BUG: %s returned %d, not 0 or a negative errno; answering EIO", op,
		       ret);
		return -EIO;
	}
	return ret == -EBADMSG ? -EIO : ret;
}

static struct vr_residency *res(void)
{
	return fuse_get_context()->private_data;
}

static struct vr_caller caller(void)
{
	struct fuse_context *c = fuse_get_context();

	return (struct vr_caller){.uid = c->uid, .gid = c->gid, .pid = c->pid};
}

/* Linux task flags in /proc/PID/stat: exiting, and killed by a signal. */
#define PF_EXITING  0x4
#define PF_SIGNALED 0x400

/* Reads /proc/PID/NAME into BUF; returns its length, or -1. */
static ssize_t proc_read(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* A bounded read of /proc/PID/NAME, shared by the caller and a helper thread. */
struct bounded_read {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int refs; /* the caller's and the helper's: the last to let go frees it */
	bool done;
	pid_t pid;
	char name[16];
	ssize_t len;
	char buf[1024];
};

static void bounded_put(struct bounded_read *b)
{
	pthread_mutex_lock(&b->lock);
	bool last = --b->refs == 0;

	pthread_mutex_unlock(&b->lock);
	if (last) {
		pthread_cond_destroy(&b->done_cond);
		pthread_mutex_destroy(&b->lock);
		free(b);
	}
}

static void *bounded_worker(void *arg)
{
	struct bounded_read *b = arg;
	char buf[sizeof(b->buf)];
	ssize_t n = proc_read(b->pid, b->name, buf, sizeof(buf));

	pthread_mutex_lock(&b->lock);
	b->len = n;
	if (n >= 0)
		memcpy(b->buf, buf, (size_t)n + 1);
	b->done = true;
	pthread_cond_signal(&b->done_cond);
	pthread_mutex_unlock(&b->lock);
	bounded_put(b);
	return NULL;
}

/*
 * proc_read of a file that may block: /proc/PID/stat waits while PID is in
 * execve, and a task closes its close-on-exec descriptors there, so a flush
 * from a writer's exec (os.system, subprocess) would wait on a read that
 * waits on the flush: a hung worker and a hung process. The read runs on a
 * helper thread and is given up after 100 ms (the helper finishes once the
 * exec does, after this flush is answered). Returns its length, or -1.
 */
static ssize_t proc_read_bounded(pid_t pid, const char *name, char *buf, size_t cap)
{
	struct bounded_read *b = calloc(1, sizeof(*b));
	struct timespec until;
	pthread_t t;
	ssize_t n = -1;

	if (!b)
		return -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->done_cond, NULL);
	b->refs = 2;
	b->pid = pid;
	snprintf(b->name, sizeof(b->name), "%s", name);
	if (pthread_create(&t, NULL, bounded_worker, b) != 0) {
		b->refs = 1;
		bounded_put(b);
		return -1;
	}
	pthread_detach(t);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000 * 1000;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&b->lock);
	while (!b->done && pthread_cond_timedwait(&b->done_cond, &b->lock, &until) == 0)
		;
	if (b->done && b->len >= 0) { /* CAP > 0: every caller's buffer */
		n = b->len < (ssize_t)cap ? b->len : (ssize_t)cap - 1;
		memcpy(buf, b->buf, (size_t)n);
		buf[n] = '\0';
	}
	pthread_mutex_unlock(&b->lock);
	if (n < 0)
		vr_log(LOG_DEBUG, "/proc/%d/%s did not answer in time (a process in execve)",
		       (int)pid, name);
	bounded_put(b);
	return n;
}

/*
 * The caller, with its process (FUSE names the thread) and whether it is
 * exiting on a signal: a flush sent by a writer's death looks like any
 * close, and only the task's flags tell a kill from a normal close or exit.
 * Without /proc the thread stands for its process and nothing is "killed".
 * /proc/PID/status never waits; /proc/PID/stat may (proc_read_bounded).
 */
static struct vr_caller caller_proc(void)
{
	struct vr_caller c = caller();
	char buf[1024], *p;
	unsigned long flags = 0;

	c.tgid = c.pid;
	if (proc_read(c.pid, "status", buf, sizeof(buf)) > 0 && (p = strstr(buf, "\nTgid:")))
		c.tgid = (pid_t)strtol(p + 6, NULL, 10);
	/* field 9, flags, counted after the command name, which may hold spaces */
	if (proc_read_bounded(c.pid, "stat", buf, sizeof(buf)) > 0 && (p = strrchr(buf, ')')) &&
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1)
		c.killed = (flags & (PF_EXITING | PF_SIGNALED)) == (PF_EXITING | PF_SIGNALED);
	return c;
}

static struct vr_handle *handle(const struct fuse_file_info *fi)
{
	return (struct vr_handle *)(uintptr_t)fi->fh;
}

static void to_stat(const struct vr_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = VR_IO_SIZE;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

static void *vr_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* every request is read through fs/channel.c's read (a spliced one would pass it by) */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	cfg->use_ino = 1;
	cfg->hard_remove = 1; /* no .fuse_hidden files: unlinked open files live in core */
	/*
	 * Names are asked for at every use (directories' aside: fs/channel.c), so a file the
	 * daemon removed itself (a failed load, the seal of a removed file) is gone at once.
	 * Attributes the kernel may keep for a millisecond, which it rounds to a tick or two: a
	 * stat then uses what the lookup of its name just returned, instead of asking again. The
	 * daemon changes a file's metadata on its own only for sizes and times it reports anyway
	 * at the next lookup; permissions change only through the kernel.
	 */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0.001;
	cfg->negative_timeout = 0;
	cfg->direct_io = 0;   /* per open: see vr_open */
	cfg->nullpath_ok = 1; /* open files live on after unlink: handles need no path */
	return res();
}

static int vr_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct vr_attr a;
	int ret;

	/*
	 * An open file's attributes come from its handle, never from the path libfuse found
	 * for its node: that path was looked up before this call runs, and a rename over it
	 * meanwhile would answer with another file's size, which the kernel then takes for this
	 * one's (a read of it ends early, at the other's size, with no error).
	 */
	if (fi)
		ret = out("fgetattr", vr_res_fgetattr(res(), handle(fi), &a));
	else if (path)
		ret = out("getattr", vr_res_getattr(res(), path, &a));
	else
		ret = -ESTALE;
	if (ret == 0)
		to_stat(&a, st);
	return ret;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_one(void *ctx, const char *name, const struct vr_attr *a, uint64_t cookie)
{
	struct fill_ctx *f = ctx;
	struct stat st;

	to_stat(a, &st);
	return f->filler(f->buf, name, &st, (off_t)cookie, 0);
}

/*
 * Lists a directory a kernel buffer at a time, resuming by each entry's
 * cookie (its offset): libfuse then keeps no copy of the whole listing per
 * open handle, which a user holding many handles of a large directory open
 * would otherwise grow without bound.
 */
static int vr_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill_ctx f = {buf, filler};

	(void)path; /* NULL with nullpath_ok: the handle says which directory */
	(void)flags;
	/* a kernel buffer always holds these two: the first reply never stops at them */
	if (off == 0)
		filler(buf, ".", NULL, 1, 0);
	if (off <= 1)
		filler(buf, "..", NULL, 2, 0);
	return out("readdir", vr_res_readdir_at(res(), handle(fi), (uint64_t)off, fill_one, &f));
}

static int vr_opendir(const char *path, struct fuse_file_info *fi)
{
	struct vr_handle *h;
	struct vr_caller c = caller();
	int ret = out("opendir", vr_res_opendir_as(res(), path, &c, &h));

	if (ret == 0)
		fi->fh = (uintptr_t)h;
	return ret;
}

static int vr_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	vr_res_release(res(), handle(fi));
	return 0;
}

static int vr_mkdir(const char *path, mode_t mode)
{
	struct vr_caller c = caller();

	return out("mkdir", vr_res_mkdir(res(), path, mode, &c));
}

static int vr_rmdir(const char *path)
{
	struct vr_caller c = caller();

	return out("rmdir", vr_res_rmdir(res(), path, &c));
}

static int vr_unlink(const char *path)
{
	struct vr_caller c = caller();

	return out("unlink", vr_res_unlink(res(), path, &c));
}

static int vr_rename(const char *from, const char *to, unsigned flags)
{
	struct vr_caller c = caller();

	int ret = vr_res_rename(res(), from, to, flags, &c);

	if (ret == 0)
		vr_res_settle(res()); /* where a file lives decides who reaches it: kept first */
	return out("rename", ret);
}

/* With a path, by it; without one (libfuse gives none only to a file removed while open),
 * through the handle fs/channel.c lent the request. */
static int vr_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int ret = path ? vr_res_chmod(res(), path, mode)
		  : fi ? vr_res_fchmod(res(), handle(fi), mode)
		       : -ESTALE;

	/* a permission taken away must not come back with a crash: kept before the answer */
	if (ret == 0)
		vr_res_settle(res());
	return out(path ? "chmod" : "fchmod", ret);
}

static int vr_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int ret = path ? vr_res_chown(res(), path, uid, gid)
		  : fi ? vr_res_fchown(res(), handle(fi), uid, gid)
		       : -ESTALE;

	if (ret == 0)
		vr_res_settle(res());
	return out(path ? "chown" : "fchown", ret);
}

static int vr_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (path)
		return out("utimens", vr_res_utimens(res(), path, tv));
	return fi ? out("futimens", vr_res_futimens(res(), handle(fi), tv)) : -ESTALE;
}

static int vr_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();

	if (size < 0)
		return -EINVAL;
	if (fi)
		return out("ftruncate", vr_res_ftruncate(res(), handle(fi), (uint64_t)size, &c));
	return path ? out("truncate", vr_res_truncate(res(), path, (uint64_t)size, &c)) : -ESTALE;
}

static int vr_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct vr_caller c = caller_proc();
	struct vr_handle *h;
	int ret = out("create", vr_res_create(res(), path, mode, &c, &h));

	if (ret)
		return ret;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int vr_open(const char *path, struct fuse_file_info *fi)
{
	/* only a writer's process matters (one load at a time): readers skip /proc */
	bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	struct vr_caller c = writes ? caller_proc() : caller();
	struct vr_handle *h;
	int ret = out("open", vr_res_open(res(), path, fi->flags, &c, &h));

	if (ret)
		return ret;
	fi->fh = (uintptr_t)h;
	/*
	 * A sealed file opened for reading cannot change, so it may go through
	 * the page cache, which shared read-only mmap needs (llama.cpp, numpy).
	 * The cache is dropped at the first such open after the file's bytes
	 * last changed and kept after that, so it holds only sealed bytes.
	 * Everything else is direct I/O from device memory.
	 */
	fi->direct_io = !vr_res_handle_cacheable(h);
	fi->keep_cache = vr_res_handle_keep_cache(h);
	return 0;
}

static int vr_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t got = 0;
	int ret;

	(void)path;
	if (off < 0)
		return -EINVAL;
	ret = out("read", vr_res_read(res(), handle(fi), buf, size, (uint64_t)off, &got));
	return ret ? ret : (int)got;
}

static int vr_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vr_caller c = caller();
	int ret;

	(void)path;
	if (off < 0)
		return -EINVAL;
	ret = out("write", vr_res_write(res(), handle(fi), buf, size, (uint64_t)off, &c));
	return ret ? ret : (int)size;
}

/* Whether mount MNT_ID of process TGID is one of this file system's (its mountinfo). */
static bool our_mount(pid_t tgid, unsigned long mnt_id)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool ours = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)tgid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ours && getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - ");

		ours = strtoul(line, NULL, 10) == mnt_id && sep &&
		       strncmp(sep + 3, "fuse.vram-residency ", 20) == 0;
	}
	free(line);
	fclose(f);
	return ours;
}

/*
 * Whether process TGID holds a descriptor open for writing of this file
 * system's inode INO. The kernel takes the closed descriptor out of the table
 * before it sends the flush, so any found is another one: a dup the process
 * goes on writing through. Reads only fdinfo and mountinfo, which never wait
 * on a process in execve (its fd links and stat do). Without /proc, false
 * (the close settles, as before).
 */
static bool holds_writer(pid_t tgid, uint64_t ino)
{
	char dir[64], name[96], buf[512];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)tgid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		char *flags, *inode, *mnt;

		/* "." and "..", and a descriptor closed since the listing, read as nothing */
		snprintf(name, sizeof(name), "fdinfo/%.64s", e->d_name);
		if (proc_read(tgid, name, buf, sizeof(buf)) <= 0)
			continue;
		/* every fdinfo has the three (Linux 5.14 and later; before, no ino: none found) */
		flags = strstr(buf, "flags:");
		inode = strstr(buf, "\nino:");
		mnt = strstr(buf, "\nmnt_id:");
		found = flags && inode && mnt &&
			(strtoul(flags + 6, NULL, 8) & O_ACCMODE) != O_RDONLY &&
			strtoull(inode + 5, NULL, 10) == ino &&
			our_mount(tgid, strtoul(mnt + 8, NULL, 10));
	}
	closedir(d);
	return found;
}

static int vr_flush(const char *path, struct fuse_file_info *fi)
{
	struct vr_caller c;
	struct vr_attr a;

	(void)path;
	/* only a writer's close can settle a load: a reader's looks at no /proc */
	if (!vr_res_handle_writes(handle(fi)))
		return 0;
	c = caller_proc();
	if (vr_res_fgetattr(res(), handle(fi), &a) == 0 && a.kind == VR_KIND_FILE)
		c.holds_more = holds_writer(c.tgid, a.ino);
	return out("flush", vr_res_flush(res(), handle(fi), &c));
}

static int vr_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	vr_res_release(res(), handle(fi));
	return 0;
}

static int vr_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();

	(void)path;
	if (off < 0 || len <= 0)
		return -EINVAL;
	return out("fallocate",
		   vr_res_fallocate(res(), handle(fi), mode, (uint64_t)off, (uint64_t)len, &c));
}

static int vr_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0; /* writes are on the device when write() returns */
}

static int vr_statfs(const char *path, struct statvfs *sv)
{
	struct vr_statfs s;
	int ret;

	(void)path;
	ret = out("statfs", vr_res_statfs(res(), &s));
	if (ret)
		return ret;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = s.total_bytes / 4096;
	sv->f_bfree = s.free_bytes / 4096;
	sv->f_bavail = sv->f_bfree;
	sv->f_files = s.files + 1000000;
	sv->f_ffree = 1000000;
	sv->f_favail = sv->f_ffree;
	sv->f_namemax = VR_FILE_NAME_MAX; /* a file's name leaves room for "<name>.seal" */
	return 0;
}

static int refuse(const char *what, const char *path)
{
	vr_log(LOG_INFO,
	       "%s %s refused: only files, directories and links inside the mount live here", what,
	       path);
	return -EPERM;
}

static int vr_symlink(const char *target, const char *path)
{
	struct vr_caller c = caller();

	return out("symlink", vr_res_symlink(res(), target, path, &c));
}

static int vr_readlink(const char *path, char *buf, size_t size)
{
	return out("readlink", vr_res_readlink(res(), path, buf, size));
}

static int vr_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	return out("setxattr", vr_res_setxattr(res(), path, name, value, size, flags));
}

/* libfuse wants getxattr and listxattr to return the size, or the bytes copied. */
static int vr_getxattr(const char *path, const char *name, char *value, size_t size)
{
	size_t len = 0;
	int ret = out("getxattr", vr_res_getxattr(res(), path, name, value, size, &len));

	return ret ? ret : (int)len;
}

static int vr_listxattr(const char *path, char *list, size_t size)
{
	size_t len = 0;
	int ret = out("listxattr", vr_res_listxattr(res(), path, list, size, &len));

	return ret ? ret : (int)len;
}

static int vr_removexattr(const char *path, const char *name)
{
	return out("removexattr", vr_res_removexattr(res(), path, name));
}

static int vr_link(const char *from, const char *to)
{
	(void)from;
	return refuse("link", to);
}

static int vr_mknod(const char *path, mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	return refuse("mknod", path);
}

const struct fuse_operations vr_fuse_ops = {
    .init = vr_init,
    .getattr = vr_getattr,
    .opendir = vr_opendir,
    .readdir = vr_readdir,
    .releasedir = vr_releasedir,
    .mkdir = vr_mkdir,
    .rmdir = vr_rmdir,
    .unlink = vr_unlink,
    .rename = vr_rename,
    .chmod = vr_chmod,
    .chown = vr_chown,
    .utimens = vr_utimens,
    .truncate = vr_truncate,
    .create = vr_create,
    .open = vr_open,
    .read = vr_read,
    .write = vr_write,
    .flush = vr_flush,
    .release = vr_release,
    .fsync = vr_fsync,
    .fallocate = vr_fallocate,
    .statfs = vr_statfs,
    .symlink = vr_symlink,
    .readlink = vr_readlink,
    .setxattr = vr_setxattr,
    .getxattr = vr_getxattr,
    .listxattr = vr_listxattr,
    .removexattr = vr_removexattr,
    .link = vr_link,
    .mknod = vr_mknod,
};
