/* nullfs.c - a reference FUSE filesystem that only keeps bytes in memory: the benchmarks' floor. */
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * One flat directory of files, each kept in a memfd written and read by the
 * kernel's copy (pwrite, pread), as the mock keeps its chunks: on a virtual
 * machine a first store to freshly mapped pages costs several times the copy
 * (docs/benchmarks.md, issue 25), and a floor that paid it would flatter
 * whatever is measured against it.
 */
#define CHUNK	  (1u << 20)
#define MAX_FILES 64

struct nfile {
	char name[256];
	size_t size;
	int fd; /* the bytes; -1 until the first write */
};

static struct nfile files[MAX_FILES];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct nfile *find(const char *path)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (files[i].name[0] && strcmp(files[i].name, path + 1) == 0)
			return &files[i];
	return NULL;
}

static void *n_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->direct_io = 1;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	return NULL;
}

static int n_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	if (f) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = (off_t)f->size;
		st->st_blksize = CHUNK;
	}
	pthread_mutex_unlock(&lock);
	return f ? 0 : -ENOENT;
}

static int n_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		     struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)path, (void)off, (void)fi, (void)flags;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_FILES; i++)
		if (files[i].name[0])
			fill(buf, files[i].name, NULL, 0, 0);
	pthread_mutex_unlock(&lock);
	return 0;
}

static void drop(struct nfile *f)
{
	if (f->fd > 0)
		close(f->fd);
	memset(f, 0, sizeof(*f));
}

static int n_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int ret = -ENOSPC;

	(void)mode, (void)fi;
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	if (f) {
		drop(f);
		ret = 0;
		strncpy(f->name, path + 1, sizeof(f->name) - 1);
	} else {
		for (int i = 0; i < MAX_FILES; i++)
			if (!files[i].name[0]) {
				strncpy(files[i].name, path + 1, sizeof(files[i].name) - 1);
				ret = 0;
				break;
			}
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

static int n_open(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	pthread_mutex_unlock(&lock);
	return f ? 0 : -ENOENT;
}

static int n_write(const char *path, const char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)fi;
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);
	size_t end = (size_t)off + size;

	if (!f) {
		pthread_mutex_unlock(&lock);
		return -ENOENT;
	}
	if (f->fd <= 0 && (f->fd = memfd_create("nullfs", MFD_CLOEXEC)) < 0) {
		f->fd = 0;
		pthread_mutex_unlock(&lock);
		return -ENOMEM;
	}
	for (size_t done = 0; done < size;) {
		ssize_t n = pwrite(f->fd, buf + done, size - done, off + (off_t)done);

		if (n <= 0) {
			pthread_mutex_unlock(&lock);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	if (end > f->size)
		f->size = end;
	pthread_mutex_unlock(&lock);
	return (int)size;
}

static int n_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	if (!f) {
		pthread_mutex_unlock(&lock);
		return -ENOENT;
	}
	if ((size_t)off >= f->size)
		size = 0;
	else if (size > f->size - (size_t)off)
		size = f->size - (size_t)off;
	for (size_t done = 0; done < size;) {
		ssize_t n = pread(f->fd, buf + done, size - done, off + (off_t)done);

		if (n <= 0) {
			pthread_mutex_unlock(&lock);
			return n < 0 ? -errno : -EIO;
		}
		done += (size_t)n;
	}
	pthread_mutex_unlock(&lock);
	return (int)size;
}

static int n_unlink(const char *path)
{
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	if (f)
		drop(f);
	pthread_mutex_unlock(&lock);
	return f ? 0 : -ENOENT;
}

static int n_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	pthread_mutex_lock(&lock);
	struct nfile *f = find(path);

	if (f && size == 0) {
		char name[256];

		memcpy(name, f->name, sizeof(name));
		drop(f);
		memcpy(f->name, name, sizeof(name));
	}
	pthread_mutex_unlock(&lock);
	return f ? (size == 0 ? 0 : -EOPNOTSUPP) : -ENOENT;
}

static int n_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)path, (void)tv, (void)fi;
	return 0;
}

static const struct fuse_operations ops = {
    .init = n_init,
    .getattr = n_getattr,
    .readdir = n_readdir,
    .create = n_create,
    .open = n_open,
    .read = n_read,
    .write = n_write,
    .unlink = n_unlink,
    .truncate = n_truncate,
    .utimens = n_utimens,
};

int main(int argc, char **argv)
{
	return fuse_main(argc, argv, &ops, NULL);
}
