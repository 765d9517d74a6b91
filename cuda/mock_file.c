/*
 * mock_file.c - a mock file's memory: memfd chunks (or vram=DIR files) end
 * to end; growth, trim, the scrub of what is cut or freed, the capacity they
 * take from, and the pool of freed chunks kept for reuse.
 */
#include "mock_private.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * The invariant of a file's chunk record: the chunks lie end to end from
 * offset 0 and cover HELD bytes, and the file's SIZE lies within them.
 * Checked after every change in debug builds (SIZED: the size is settled too).
 */
static void check_file(const struct mock_file *f, bool sized)
{
#ifndef NDEBUG
	uint64_t sum = 0;

	for (uint32_t i = 0; i < f->count; i++)
		sum += f->chunks[i].len;
	assert(vr_dev_extents_ok(sum, f->held, f->held, true, f->count, f->cap, sized, f->size));
#else
	(void)f;
	(void)sized;
#endif
}

int mock_file_new(void *ctx, struct vr_dev_file **out)
{
	struct mock_file *f = calloc(1, sizeof(*f));

	(void)ctx;
	if (!f)
		return -ENOMEM;
	*out = &f->hdr;
	return 0;
}

static uint64_t round_grain(uint64_t n)
{
	return (n + MOCK_GRAIN - 1) / MOCK_GRAIN * MOCK_GRAIN;
}

/* A new zeroed chunk of LEN bytes with its memory taken now; returns 0 or -errno. */
int mock_chunk_make(struct mock *m, uint64_t len, struct chunk *c)
{
	char name[32];
	int fd = -1, ret;

	if (m->dirfd >= 0) {
		/* past the files an earlier daemon's chunks left there, if any */
		for (int tries = 0; tries < 4096; tries++) {
			pthread_mutex_lock(&m->lock);
			c->id = m->next_id++;
			pthread_mutex_unlock(&m->lock);
			snprintf(name, sizeof(name), "chunk-%llu", (unsigned long long)c->id);
			fd = openat(m->dirfd, name,
				    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd >= 0 || errno != EEXIST)
				break;
		}
	} else {
		pthread_mutex_lock(&m->lock);
		c->id = m->next_id++;
		pthread_mutex_unlock(&m->lock);
		fd = memfd_create("vram-mock-chunk", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	}
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? -ENOMEM : -errno;
	/* its memory is taken when it is mapped (add_chunk) */
	ret = ftruncate(fd, (off_t)len) == 0 ? 0 : errno;
	if (ret) {
		close(fd);
		if (m->dirfd >= 0)
			unlinkat(m->dirfd, name, 0);
		return ret == ENOSPC || ret == EFBIG ? -ENOSPC : -ret;
	}
	c->fd = fd;
	c->len = len;
	c->map = NULL;
	c->sealed = false;
	c->exported = false;
	return 0;
}

/* Closes C's descriptor (and its mapping, if it was exported) and, with vram=DIR, removes its
 * file. */
void mock_chunk_close(struct mock *m, const struct chunk *c)
{
	char name[32];

	if (c->map)
		munmap(c->map, c->len);
	close(c->fd);
	if (m->dirfd >= 0) {
		snprintf(name, sizeof(name), "chunk-%llu", (unsigned long long)c->id);
		unlinkat(m->dirfd, name, 0);
	}
}

/*
 * Releases C, SCRUBBED by the caller unless SHARED and kept for its lessee
 * (one not scrubbed is never reused), and gives its capacity back. A memfd chunk never exported is
 * kept in the pool for the next chunk of its size (its memory stays taken:
 * loads then pay no allocation, as a device allocator caches); one ever
 * exported is closed, never reused, or, while another process still maps it
 * (SHARED), kept as an orphan: its memory is not free until that process lets
 * go, so it stays counted as used until then (mock_reap).
 */
void mock_chunk_drop(struct mock *m, struct chunk *c, bool shared, bool scrubbed)
{
	bool kept = false;

	pthread_mutex_lock(&m->lock);
	if (shared && mock_orphan(m, c)) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->used -= c->len;
	if (m->dirfd < 0 && !c->sealed && scrubbed) {
		if (m->npool == m->cappool) {
			size_t ncap = m->cappool ? m->cappool * 2 : 16;
			struct chunk *n = realloc(m->pool, sizeof(*n) * ncap);

			if (n) {
				m->pool = n;
				m->cappool = ncap;
			}
		}
		if (m->npool < m->cappool) {
			m->pool[m->npool++] = *c;
			m->pooled += c->len;
			kept = true;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (!kept)
		mock_chunk_close(m, c);
}

/*
 * A pooled chunk of LEN bytes into C (true): one of that size, else another
 * one cut or grown to it (so the pool never outgrows what was freed at once).
 * Pooled chunks past the capacity (the host memory the mock may hold, LEN's
 * share already taken) are closed first.
 */
static bool pool_take(struct mock *m, uint64_t len, struct chunk *c)
{
	bool exact = false, took = false;
	size_t at = 0;

	pthread_mutex_lock(&m->lock);
	while (m->npool && m->used + m->pooled > m->capacity) {
		struct chunk old = m->pool[--m->npool];

		m->pooled -= old.len;
		pthread_mutex_unlock(&m->lock);
		close(old.fd);
		pthread_mutex_lock(&m->lock);
	}
	for (size_t i = 0; i < m->npool && !exact; i++)
		if (m->pool[i].len == len) {
			at = i;
			exact = true;
		}
	if (m->npool) {
		at = exact ? at : m->npool - 1;
		*c = m->pool[at];
		m->pool[at] = m->pool[--m->npool];
		m->pooled -= c->len;
		took = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (took && c->len != len) {
		/* its bytes are zero (scrubbed); what a growth adds is zero too */
		if (ftruncate(c->fd, (off_t)len) != 0) {
			close(c->fd);
			return false;
		}
		c->len = len;
	}
	return took;
}

/* Takes LEN bytes of capacity, orphans nobody maps any more given back first if need be;
 * returns 0 or -ENOSPC. */
static int take_capacity(struct mock *m, uint64_t len)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	bool reap = m->norphans && len > m->capacity - m->used;

	pthread_mutex_unlock(&m->lock);
	if (reap)
		mock_reap(m);
	pthread_mutex_lock(&m->lock);
	if (len > m->capacity - m->used)
		ret = -ENOSPC;
	else
		m->used += len;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* Scrubs and frees F's chunks from index KEEP on. */
static void drop_chunks(struct mock *m, struct mock_file *f, uint32_t keep)
{
	while (f->count > keep) {
		struct chunk *c = &f->chunks[f->count - 1];
		uint64_t at = f->held - c->len;

		if (f->hdr.kept) {
			/* a keeper holds it for the next daemon: left as it is, even its file */
			pthread_mutex_lock(&m->lock);
			m->used -= c->len;
			pthread_mutex_unlock(&m->lock);
			if (c->map)
				munmap(c->map, c->len);
			close(c->fd);
			f->held = at;
			f->count--;
			continue;
		}
		bool shared = c->exported && mock_chunk_shared(m, c);
		bool kept = shared && f->hdr.keep_shared;

		/* a stale importer's mapping (its lease gone) keeps zeros, never these bytes;
		 * but a lessee's when the daemon stops under it keeps what it verified. A
		 * chunk not scrubbed is never reused. */
		bool scrubbed = !kept && mock_chunk_zero(c, 0, c->len) == 0;

		mock_chunk_drop(m, c, shared && !kept, scrubbed);
		f->held = at;
		f->count--;
		check_file(f, false);
	}
}

/* Adds one more chunk of LEN bytes (capacity taken by the caller) at F's end. */
static int add_chunk(struct mock *m, struct mock_file *f, uint64_t len)
{
	struct chunk c = {.fd = -1};
	int ret;

	if (f->count == f->cap) {
		uint32_t ncap = f->cap ? f->cap * 2 : 4;
		struct chunk *n = realloc(f->chunks, sizeof(*n) * ncap);

		if (!n)
			return -ENOMEM;
		f->chunks = n;
		f->cap = ncap;
	}
	if (!pool_take(m, len, &c)) {
		ret = mock_chunk_make(m, len, &c);
		if (ret)
			return ret;
	}
	/*
	 * Its memory taken now (a pooled chunk's is already), so running out is an
	 * error here and never a SIGBUS in a client's mapping later. The daemon
	 * does not map it: it writes and reads through the descriptor, which on
	 * virtual machines costs a tenth of a first store to a new mapping's pages
	 * (docs/benchmarks.md), and its bytes are in no core dump.
	 */
	ret = posix_fallocate(c.fd, 0, (off_t)len);
	if (ret) {
		mock_chunk_close(m, &c);
		return ret == ENOSPC ? -ENOSPC : -ENOMEM;
	}
	f->chunks[f->count++] = c;
	f->held += len;
	check_file(f, false);
	return 0;
}

/*
 * Adds chunks until F covers NEED bytes, all or nothing. The policy may pick
 * more than NEED (slack for the next writes).
 */
static int grow(struct mock *m, struct mock_file *f, uint64_t need)
{
	uint32_t had = f->count;
	int ret = 0;

	while (ret == 0 && f->held < need) {
		uint64_t min, len = vr_dev_chunk_len(f->held, need, MOCK_CHUNK_MAX, &min);

		/* the slack only when it fits: a full device still gives what is needed */
		if (take_capacity(m, len) != 0) {
			len = min;
			ret = take_capacity(m, len);
			if (ret)
				break;
		}
		ret = add_chunk(m, f, len);
		if (ret) {
			pthread_mutex_lock(&m->lock);
			m->used -= len;
			pthread_mutex_unlock(&m->lock);
		}
	}
	if (ret)
		drop_chunks(m, f, had);
	check_file(f, false);
	return ret;
}

/*
 * Gives back what F holds past NEED: whole chunks, then the tail of the
 * last one (cut with ftruncate while it has never been exported).
 */
static void trim(struct mock *m, struct mock_file *f, uint64_t need)
{
	uint32_t keep = 0;
	uint64_t end = 0;

	while (keep < f->count && end < need)
		end += f->chunks[keep++].len;
	drop_chunks(m, f, keep);
	if (f->count && f->held > need) {
		struct chunk *c = &f->chunks[f->count - 1];
		uint64_t cut = f->held - need;

		if (mock_chunk_zero(c, c->len - cut, cut) != 0 || c->sealed)
			return; /* its size is fixed now: the slack stays held (scrubbed) */
		/* if the cut fails, the tail stays held and zero, as counted */
		if (ftruncate(c->fd, (off_t)(c->len - cut)) != 0)
			return;
		c->len -= cut;
		f->held = need;
		pthread_mutex_lock(&m->lock);
		m->used -= cut;
		pthread_mutex_unlock(&m->lock);
	}
	check_file(f, false);
}

int mock_resize(void *ctx, struct vr_dev_file *file, uint64_t size)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	uint64_t need = round_grain(size);
	int ret;

	if (size > UINT64_MAX - MOCK_GRAIN || need > m->capacity)
		return -ENOSPC;
	if (need > f->held) {
		ret = mock_fault(m, FAULT_ALLOC);
		if (ret)
			return ret;
		ret = grow(m, f, need);
		if (ret)
			return ret;
	}
	/* a cut is scrubbed, the bytes past the new end reading as zero if the file regrows:
	 * here what stays held, in trim what is given back */
	if (size < f->size && size < need) {
		ret = mock_zero(f, size, (f->size < need ? f->size : need) - size);
		if (ret)
			return ret;
	}
	/* a resize to the same size fits the memory to the file (the load is done) */
	if (size <= f->size && need < f->held)
		trim(m, f, need);
	f->size = size;
	check_file(f, true);
	return 0;
}

uint64_t mock_held(void *ctx, const struct vr_dev_file *file)
{
	(void)ctx;
	return ((const struct mock_file *)file)->held;
}

int mock_file_free(void *ctx, struct vr_dev_file *file)
{
	struct mock_file *f = mf(file);

	drop_chunks(ctx, f, 0);
	free(f->chunks);
	free(f);
	return 0;
}
