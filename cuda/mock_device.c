/*
 * mock_device.c - the mock device: its options (capacity, vram, fault,
 * reserve), fault injection, open, close, info, and the ops table that the
 * other mock_*.c files fill.
 */
#include "mock_private.h"

#include "backends.h"
#include "log.h"
#include "size.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Counts a call of OP and says whether it is the one to fail. */
int mock_fault(struct mock *m, enum fault_op op)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	m->calls[op]++;
	if (m->fail_at[op] && m->calls[op] == m->fail_at[op])
		ret = -(m->fail_errno[op] ? m->fail_errno[op] : EIO);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* Parses fault=OP:N[:ERR][+OP:N[:ERR]...] into M; returns 0 or -EINVAL (having said why). */
static int parse_fault(struct mock *m, const char *text)
{
	static const char *const ops[FAULT_OPS] = {"alloc", "write", "read", "digest"};
	char *copy = strdup(text), *save = NULL;
	int ret = -EINVAL; /* until an item is read: "" and "+" name no fault */

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, "+", &save); item; item = strtok_r(NULL, "+", &save)) {
		char *op = item, *nth = strchr(item, ':'), *err = NULL;
		int i;

		ret = 0;

		if (nth) {
			*nth++ = '\0';
			err = strchr(nth, ':');
			if (err)
				*err++ = '\0';
		}
		for (i = 0; i < FAULT_OPS; i++)
			if (strcmp(op, ops[i]) == 0)
				break;
		if (i == FAULT_OPS || !nth || atoi(nth) < 1) {
			ret = -EINVAL;
			break;
		}
		m->fail_at[i] = (unsigned)atoi(nth);
		if (!err || strcmp(err, "eio") == 0)
			m->fail_errno[i] = EIO;
		else if (strcmp(err, "enomem") == 0)
			m->fail_errno[i] = ENOMEM;
		else if (strcmp(err, "enospc") == 0)
			m->fail_errno[i] = ENOSPC;
		else {
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	if (ret)
		vr_log(LOG_ERR,
		       "mock: mock_fault=%s: use OP:N[:eio|enomem|enospc], OP one of alloc, write, "
		       "read, digest, joined by +",
		       text);
	return ret;
}

/* Empties DIR of the chunk files a previous run left (scrubbed, but stale). */
static void clear_chunk_dir(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "chunk-", 6) == 0)
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

/* Opens (making it if needed) the directory vram=DIR of chunk files; returns an fd or -errno. */
static int open_chunk_dir(const char *dir, bool restoring)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int e = errno;

		vr_log(LOG_ERR, "mock: cannot make mock_vram=%s: %s", dir, strerror(e));
		return -e;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		vr_log(LOG_ERR, "mock: mock_vram=%s: %s (it names a directory of chunk files)", dir,
		       strerror(e));
		return -e;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & 022) || st.st_uid != geteuid()) {
		vr_log(LOG_ERR,
		       "mock: mock_vram=%s must be a directory of this user's, not writable by "
		       "others (chmod 700)",
		       dir);
		close(fd);
		return -EPERM;
	}
	if (!restoring)
		clear_chunk_dir(fd); /* else the restore takes what it names and frees the rest */
	return fd;
}

static void mock_close(void *ctx);

/*
 * reserve=1: takes the whole capacity now, as chunks in the sizes one file
 * grows through (1, 1, 2, 4 ... 256, 256 ... MiB), pooled, so loads (and the
 * benchmarks) pay no allocation. Returns 0 or -errno, having said why.
 */
static int reserve_all(struct mock *m)
{
	uint64_t held = 0;

	while (held < m->capacity) {
		uint64_t len = held < MOCK_CAP_UNIT ? MOCK_CAP_UNIT : held;
		struct chunk c;
		int ret;

		if (len > MOCK_CHUNK_MAX)
			len = MOCK_CHUNK_MAX;
		if (len > m->capacity - held)
			len = m->capacity - held;
		ret = mock_chunk_make(m, len, &c);
		if (ret == 0) {
			ret = -posix_fallocate(c.fd, 0, (off_t)len);
			if (ret)
				close(c.fd);
		}
		if (ret) {
			vr_log(LOG_ERR,
			       "mock: reserve=1: cannot take %llu bytes of host memory: %s",
			       (unsigned long long)m->capacity, strerror(-ret));
			return ret;
		}
		/* into the pool, as a freed chunk: its memory stays taken */
		pthread_mutex_lock(&m->lock);
		m->used += len;
		pthread_mutex_unlock(&m->lock);
		mock_chunk_drop(m, &c, false, true);
		held += len;
	}
	return 0;
}

static int mock_open(const struct vr_backend_params *p, void **ctx)
{
	const char *capacity = vr_backend_opt(p, "capacity");
	const char *vram = vr_backend_opt(p, "vram");
	const char *faults = vr_backend_opt(p, "fault");
	const char *reserve = vr_backend_opt(p, "reserve");
	const char *probe = vr_backend_opt(p, "client_probe");
	uint64_t cap = MOCK_DEFAULT_CAPACITY;
	struct mock *m;
	int ret;

	if (capacity && (vr_size_parse(capacity, &cap) != 0 || cap == 0)) {
		vr_log(LOG_ERR, "mock: capacity=%s: use a size such as 512M or 2G", capacity);
		return -EINVAL;
	}
	if (cap % MOCK_CAP_UNIT) {
		vr_log(LOG_ERR, "mock: capacity=%llu must be a whole number of MiB (e.g. 512M, 2G)",
		       (unsigned long long)cap);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dirfd = -1;
	m->no_probe = probe && strcmp(probe, "0") == 0;
	if (faults && (ret = parse_fault(m, faults)) != 0)
		goto free_mock;
	if (vram) {
		ret = open_chunk_dir(vram, p->restoring);
		if (ret < 0)
			goto free_mock;
		m->dirfd = ret;
	}
	/* Nothing is reserved up front unless reserve=1: a chunk takes (and pre-faults) its
	 * memory when a file grows into it, so a mount costs nothing at any capacity. */
	m->capacity = cap;
	m->index = p->device;
	pthread_mutex_init(&m->lock, NULL);
	if (reserve && strcmp(reserve, "1") == 0 && m->dirfd < 0) {
		ret = reserve_all(m);
		if (ret) {
			mock_close(m);
			return ret;
		}
	} else if (reserve && strcmp(reserve, "0") != 0 && strcmp(reserve, "1") != 0) {
		vr_log(LOG_ERR, "mock: reserve=%s: use 0 or 1", reserve);
		mock_close(m);
		return -EINVAL;
	}
	*ctx = m;
	return 0;

free_mock:
	free(m);
	return ret;
}

static void mock_close(void *ctx)
{
	struct mock *m = ctx;

	/* every file was freed (and scrubbed) by its owner before this; pooled chunks are
	 * scrubbed already */
	for (size_t i = 0; i < m->npool; i++)
		close(m->pool[i].fd);
	free(m->pool);
	/* freed files' chunks clients still map are theirs now (scrubbed already) */
	for (size_t i = 0; i < m->norphans; i++)
		mock_chunk_close(m, &m->orphans[i]);
	free(m->orphans);
	if (m->dirfd >= 0)
		close(m->dirfd);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int mock_info(void *ctx, struct vr_device_info *out)
{
	struct mock *m = ctx;

	memset(out, 0, sizeof(*out));
	strcpy(out->backend, "mock");
	out->index = m->index;
	strcpy(out->name, "mock device (host memory, not a GPU)");
	snprintf(out->uuid, sizeof(out->uuid), "MOCK-%08x-0000-0000-0000-000000000000",
		 (unsigned)m->index);
	mock_reap(m); /* what clients let go of since is free again */
	pthread_mutex_lock(&m->lock);
	out->total_bytes = m->capacity;
	out->free_bytes = m->capacity - m->used;
	out->held_by_clients = m->orphaned;
	out->sees_client_memory = !m->no_probe;
	pthread_mutex_unlock(&m->lock);
	out->integrated = false;
	return 0;
}

const struct vr_backend_ops vr_mock_ops = {
    .name = "mock",
    .open = mock_open,
    .close = mock_close,
    .info = mock_info,
    .host_memory = true,
    .file_new = mock_file_new,
    .resize = mock_resize,
    .write = mock_write,
    .read = mock_read,
    .fsverity = mock_fsverity,
    .held = mock_held,
    .export = mock_export,
    .keep = mock_keep,
    .adopt = mock_adopt,
    .file_free = mock_file_free,
};
