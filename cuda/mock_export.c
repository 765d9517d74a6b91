/* mock_export.c - a mock file's chunks handed to another process, sealed and read-only, and
 * those still mapped there after their file was freed: counted until they are let go. */
#include "mock_private.h"

#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Read-only descriptors of F's chunks. A memfd gets seals first (no write,
 * no shrink or growth, by anyone, through any descriptor), so a receiver
 * that reopens its descriptor for writing still cannot change a byte; the
 * daemon's own mapping, made just before, keeps working for writes and the
 * scrub.
 */
int mock_export(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	uint32_t i;
	int ret = 0;

	out->kind = VR_EXPORT_HOST_FD;
	out->count = 0;
	out->fds = calloc(f->count ? f->count : 1, sizeof(int));
	out->lens = calloc(f->count ? f->count : 1, sizeof(uint64_t));
	if (!out->fds || !out->lens) {
		ret = -ENOMEM;
		goto fail;
	}
	/* two exports of one file may run at once (as reads do): the first seals each chunk and
	 * maps it, once, under the mock's lock */
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < f->count; i++) {
		struct chunk *c = &f->chunks[i];
		char self[64];
		int fd;

		if (m->dirfd < 0 && !c->sealed) {
			/* the daemon's own way to keep writing and scrubbing it, made before the
			 * seals forbid writes through any descriptor */
			if (!c->map) {
				void *p = mmap(NULL, c->len, PROT_READ | PROT_WRITE, MAP_SHARED,
					       c->fd, 0);

				if (p == MAP_FAILED) {
					ret = -ENOMEM;
					goto fail_locked;
				}
				/* users' bytes never go into the daemon's core dump */
				madvise(p, c->len, MADV_DONTDUMP);
				c->map = p;
			}
			if (fcntl(c->fd, F_ADD_SEALS,
				  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE |
				      F_SEAL_SEAL) != 0) {
				ret = -errno;
				goto fail_locked;
			}
			c->sealed = true;
		}
		/* a new open file description, read-only, of the same memory */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->fd);
		fd = open(self, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto fail_locked;
		}
		c->exported = true;
		out->fds[out->count] = fd;
		out->lens[out->count++] = c->len;
	}
	pthread_mutex_unlock(&m->lock);
	return 0;

fail_locked:
	pthread_mutex_unlock(&m->lock);
fail:
	vr_dev_export_clear(out);
	return ret;
}

/*
 * Whether another process holds C: a write lease (F_SETLEASE) is granted only
 * while no other open file description of the file exists, and a receiver's
 * descriptor, or its mapping after it closed the descriptor, is one. On a
 * memfd the lease is taken on a new read-only open of it (the memfd's own
 * description is not counted by the kernel, and a description open for
 * writing could not take it); a vram=DIR chunk file's own read-write one is.
 * A probe that cannot answer (leases disabled) says no, as before this probe:
 * the memory is then counted free once its file is.
 */
bool mock_chunk_shared(const struct mock *m, const struct chunk *c)
{
	static atomic_bool warned;
	char self[64];
	int fd = c->fd, ret;

	if (m->no_probe)
		return false;
	if (m->dirfd < 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", c->fd);
		fd = open(self, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return false;
	}
	ret = fcntl(fd, F_SETLEASE, F_WRLCK) == 0 ? 0 : errno;
	if (ret == 0)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	if (fd != c->fd)
		close(fd);
	if (ret && ret != EAGAIN && !atomic_exchange(&warned, true)) {
		vr_log(LOG_WARNING,
		       "mock: cannot tell whether a client still maps freed memory (F_SETLEASE: "
		       "%s); it is counted free",
		       strerror(ret));
	}
	return ret == EAGAIN;
}

bool mock_orphan(struct mock *m, const struct chunk *c)
{
	if (m->norphans == m->caporphans) {
		size_t ncap = m->caporphans ? m->caporphans * 2 : 16;
		struct chunk *n = realloc(m->orphans, sizeof(*n) * ncap);

		if (!n)
			return false;
		m->orphans = n;
		m->caporphans = ncap;
	}
	m->orphans[m->norphans++] = *c;
	m->orphaned += c->len;
	return true;
}

void mock_reap(struct mock *m)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->norphans;) {
		struct chunk c = m->orphans[i];

		if (mock_chunk_shared(m, &c)) {
			i++;
			continue;
		}
		m->orphans[i] = m->orphans[--m->norphans];
		m->orphaned -= c.len;
		m->used -= c.len;
		mock_chunk_close(m, &c);
	}
	pthread_mutex_unlock(&m->lock);
}
