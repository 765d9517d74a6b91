/* mock_keep.c - a mock file's chunks held by a keeper across a restart of the daemon, and a
 * file made again from them by the next daemon. */
#include "mock_private.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writable descriptors of F's chunks (duplicates: the same memory, not a copy). */
int mock_keep(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out)
{
	struct mock_file *f = mf(file);

	(void)ctx;
	out->kind = VR_EXPORT_HOST_FD;
	out->count = 0;
	out->fds = calloc(f->count ? f->count : 1, sizeof(int));
	out->lens = calloc(f->count ? f->count : 1, sizeof(uint64_t));
	if (!out->fds || !out->lens) {
		vr_dev_export_clear(out);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < f->count; i++) {
		int fd = fcntl(f->chunks[i].fd, F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			int ret = errno == EMFILE || errno == ENFILE ? -ENOMEM : -errno;

			vr_dev_export_clear(out);
			return ret;
		}
		out->fds[i] = fd;
		out->lens[i] = f->chunks[i].len;
		out->count = i + 1;
	}
	return 0;
}

/*
 * Whether descriptor FD is one of this mock's chunks of LEN bytes: a memfd, or with vram=DIR a
 * file chunk-ID in DIR (*ID set). Returns 0 or -EINVAL, having said why.
 */
static int chunk_of(struct mock *m, int fd, uint64_t len, uint64_t *id)
{
	char self[64], path[4096], name[64];
	unsigned long long n;
	struct stat st, in_dir;
	ssize_t got;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len ||
	    len == 0 || len % MOCK_GRAIN || len > MOCK_CHUNK_MAX) {
		vr_log(LOG_ERR, "mock: a kept chunk is not a chunk of %llu bytes",
		       (unsigned long long)len);
		return -EINVAL;
	}
	*id = 0;
	if (m->dirfd < 0) {
		/* memfds alone answer F_GET_SEALS */
		if (fcntl(fd, F_GET_SEALS) < 0) {
			vr_log(LOG_ERR, "mock: a kept chunk is not a memfd");
			return -EINVAL;
		}
		return 0;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	got = readlink(self, path, sizeof(path) - 1);
	if (got <= 0)
		return -EINVAL;
	path[got] = '\0';
	const char *base = strrchr(path, '/');

	if (!base || sscanf(base + 1, "chunk-%llu", &n) != 1)
		return -EINVAL;
	snprintf(name, sizeof(name), "chunk-%llu", n);
	if (strcmp(base + 1, name) != 0 ||
	    fstatat(m->dirfd, name, &in_dir, AT_SYMLINK_NOFOLLOW) != 0 ||
	    in_dir.st_dev != st.st_dev || in_dir.st_ino != st.st_ino) {
		vr_log(LOG_ERR, "mock: a kept chunk is not a file of this vram= folder");
		return -EINVAL;
	}
	*id = n;
	return 0;
}

/* Takes FROM's chunks into F, checked, their memory counted as used. */
static int take_chunks(struct mock *m, struct mock_file *f, struct vr_dev_export *from)
{
	uint64_t sum = 0;
	int ret = 0;

	f->chunks = calloc(from->count ? from->count : 1, sizeof(*f->chunks));
	if (!f->chunks)
		return -ENOMEM;
	f->cap = from->count;
	for (uint32_t i = 0; i < from->count && ret == 0; i++) {
		struct chunk *c = &f->chunks[i];
		int seals;

		ret = chunk_of(m, from->fds[i], from->lens[i], &c->id);
		if (ret)
			break;
		seals = m->dirfd < 0 ? fcntl(from->fds[i], F_GET_SEALS) : 0;
		c->fd = from->fds[i];
		c->len = from->lens[i];
		/* one an earlier daemon exported is sealed against writes: it can no longer be
		 * scrubbed through a descriptor, so it is closed at the free, never reused */
		c->sealed = seals > 0 && (seals & F_SEAL_FUTURE_WRITE);
		c->exported = c->sealed;
		from->fds[i] = -1;
		f->count = i + 1;
		sum += c->len;
	}
	if (ret)
		return ret;
	f->held = sum;
	pthread_mutex_lock(&m->lock);
	if (sum > m->capacity - m->used) {
		ret = -ENOSPC;
	} else {
		m->used += sum;
		for (uint32_t i = 0; i < f->count; i++)
			if (f->chunks[i].id >= m->next_id)
				m->next_id = f->chunks[i].id + 1;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int mock_adopt(void *ctx, struct vr_dev_export *from, uint64_t size, struct vr_dev_file **out)
{
	struct mock *m = ctx;
	struct mock_file *f;
	uint64_t sum = 0;
	int ret;

	if (from->kind != VR_EXPORT_HOST_FD)
		return -EINVAL;
	for (uint32_t i = 0; i < from->count; i++)
		sum += from->lens[i];
	/* the chunks cover the size, and none lies wholly past it */
	if (sum < size || (from->count && sum - from->lens[from->count - 1] >= size && size))
		return -EINVAL;
	if (size == 0 && from->count)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	ret = take_chunks(m, f, from);
	if (ret) {
		for (uint32_t i = 0; i < f->count; i++)
			close(f->chunks[i].fd); /* taken, not counted: closed here */
		free(f->chunks);
		free(f);
		return ret;
	}
	f->size = size;
	*out = &f->hdr;
	return 0;
}
