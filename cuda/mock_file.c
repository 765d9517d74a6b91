/*
 * mock_file.c - a mock file's memory: one reserved range of address space
 * per file with memfd chunks (or vram=DIR files) mapped end to end in it;
 * growth, trim, the scrub of what is cut or freed, the capacity they take
 * from, and the pool of freed chunks kept for reuse.
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
 * The invariant between a file's reservation, its chunk record and what is
 * mapped: the chunks lie end to end from BASE and cover HELD bytes, all inside
 * the RESERVED range (so a MAP_FIXED only ever replaces the file's own
 * reserved range), and the file's SIZE within them. Checked after every
 * change of any of them in debug builds (SIZED: the size is settled too);
 * add_chunk refuses a chunk that would leave the range in every build.
 */
static void check_file(const struct mock_file *f, bool sized)
{
#ifndef NDEBUG
	uint64_t sum = 0;

	for (uint32_t i = 0; i < f->count; i++)
		sum += f->chunks[i].len;
	assert(vr_dev_extents_ok(sum, f->held, f->reserved, f->base != NULL, f->count, f->cap,
				 sized, f->size));
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

/* Address space with nothing behind it (it costs no memory until a chunk is mapped there). */
static void *reserve_range(void *at, uint64_t len)
{
	void *p = mmap(at, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0), -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Makes F's reservation cover at least NEED bytes, moving its chunks' mappings (no copy). */
static int grow_reservation(struct mock_file *f, uint64_t need)
{
	uint64_t len = f->reserved ? f->reserved : MOCK_RESERVE_MIN;
	uint64_t off = 0;
	uint8_t *nb;
	uint32_t i;

	if (need <= f->reserved)
		return 0;
	while (len < need)
		len = len > UINT64_MAX / 2 ? need : len * 2;
	nb = reserve_range(NULL, len);
	if (!nb)
		return -ENOMEM;
	for (i = 0; i < f->count; off += f->chunks[i++].len)
		if (mremap(f->base + off, f->chunks[i].len, f->chunks[i].len,
			   MREMAP_MAYMOVE | MREMAP_FIXED, nb + off) == MAP_FAILED)
			break;
	if (i < f->count) {
		/* put back what moved: the file stays as it was */
		off = 0;
		for (uint32_t j = 0; j < i; off += f->chunks[j++].len)
			mremap(nb + off, f->chunks[j].len, f->chunks[j].len,
			       MREMAP_MAYMOVE | MREMAP_FIXED, f->base + off);
		munmap(nb, len);
		return -ENOMEM;
	}
	if (f->base)
		munmap(f->base, f->reserved); /* only the unbacked rest is still mapped there */
	f->base = nb;
	f->reserved = len;
	check_file(f, false);
	return 0;
}

/* A new zeroed chunk of LEN bytes with its memory taken now; returns 0 or -errno. */
int mock_chunk_make(struct mock *m, uint64_t len, struct chunk *c)
{
	char name[32];
	int fd, ret;

	pthread_mutex_lock(&m->lock);
	c->id = m->next_id++;
	pthread_mutex_unlock(&m->lock);
	if (m->dirfd >= 0) {
		snprintf(name, sizeof(name), "chunk-%llu", (unsigned long long)c->id);
		fd = openat(m->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
			    0600);
	} else {
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
	c->sealed = false;
	c->exported = false;
	return 0;
}

/* Closes C's descriptor and, with vram=DIR, removes its file. */
void mock_chunk_close(struct mock *m, const struct chunk *c)
{
	char name[32];

	close(c->fd);
	if (m->dirfd >= 0) {
		snprintf(name, sizeof(name), "chunk-%llu", (unsigned long long)c->id);
		unlinkat(m->dirfd, name, 0);
	}
}

/*
 * Releases C, scrubbed (unless SHARED and kept for its lessee) and unmapped
 * by the caller, and gives its capacity back. A memfd chunk never exported is
 * kept in the pool for the next chunk of its size (its memory stays taken:
 * loads then pay no allocation, as a device allocator caches); one ever
 * exported is closed, never reused, or, while another process still maps it
 * (SHARED), kept as an orphan: its memory is not free until that process lets
 * go, so it stays counted as used until then (mock_reap).
 */
void mock_chunk_drop(struct mock *m, struct chunk *c, bool shared)
{
	bool kept = false;

	pthread_mutex_lock(&m->lock);
	if (shared && mock_orphan(m, c)) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->used -= c->len;
	if (m->dirfd < 0 && !c->sealed) {
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

/* Unmaps, scrubs and frees F's chunks from index KEEP on (their range stays reserved). */
static void drop_chunks(struct mock *m, struct mock_file *f, uint32_t keep)
{
	while (f->count > keep) {
		struct chunk *c = &f->chunks[f->count - 1];
		uint64_t at = f->held - c->len;

		bool shared = c->exported && mock_chunk_shared(m, c);

		/* a stale importer's mapping (its lease gone) keeps zeros, never these bytes;
		 * but a lessee's when the daemon stops under it keeps what it verified */
		if (!(shared && f->hdr.keep_shared))
			explicit_bzero(f->base + at, c->len);
		reserve_range(f->base + at, c->len);
		mock_chunk_drop(m, c, shared && !f->hdr.keep_shared);
		f->held = at;
		f->count--;
		check_file(f, false);
	}
}

/* Maps one more chunk of LEN bytes (capacity taken by the caller) at F's end. */
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
	if (len > f->reserved - f->held) {
		vr_log(LOG_ERR,
		       "BUG: mock: a chunk of %llu bytes at %llu would leave the file's "
		       "reservation of %llu bytes; refused",
		       (unsigned long long)len, (unsigned long long)f->held,
		       (unsigned long long)f->reserved);
		return -EIO;
	}
	if (!pool_take(m, len, &c)) {
		ret = mock_chunk_make(m, len, &c);
		if (ret)
			return ret;
	}
	if (mmap(f->base + f->held, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, c.fd, 0) ==
	    MAP_FAILED) {
		reserve_range(f->base + f->held, len);
		mock_chunk_close(m, &c);
		return -ENOMEM;
	}
	/*
	 * Its memory taken and mapped now, in one pass, so running out is an error
	 * here and never a SIGBUS at a later store, and loads pay no page faults.
	 * Kernels before 5.14 lack MADV_POPULATE_WRITE: fallocate takes the memory.
	 */
	ret = madvise(f->base + f->held, len, MADV_POPULATE_WRITE) == 0 ? 0 : errno;
	if (ret == EINVAL)
		ret = posix_fallocate(c.fd, 0, (off_t)len);
	/* users' bytes never go into a core dump (shared mappings are in the default filter) */
	if (ret == 0 && madvise(f->base + f->held, len, MADV_DONTDUMP) != 0)
		ret = errno;
	if (ret) {
		reserve_range(f->base + f->held, len);
		mock_chunk_close(m, &c);
		return ret == ENOSPC ? -ENOSPC : -ENOMEM;
	}
	f->chunks[f->count++] = c;
	f->held += len;
	check_file(f, false);
	return 0;
}

/*
 * Adds chunks until F covers NEED bytes, all or nothing. Each chunk's size is
 * chosen first and the reservation grown to take it: the policy may pick more
 * than NEED (slack for the next writes), and a chunk mapped past the
 * reservation's end would replace whatever mapping follows it (issue 20).
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
		ret = grow_reservation(f, f->held + len);
		if (ret == 0)
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

		explicit_bzero(f->base + need, cut);
		if (c->sealed)
			return; /* its size is fixed now: the slack stays, scrubbed */
		/* cut first: if that fails, the tail stays mapped, held and zero, as counted (it
		 * was unmapped first once, and a later scrub of the chunk faulted) */
		if (ftruncate(c->fd, (off_t)(c->len - cut)) != 0)
			return;
		reserve_range(f->base + need, cut);
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
	if (size < f->size && size < need)
		explicit_bzero(f->base + size, (f->size < need ? f->size : need) - size);
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
	if (f->base)
		munmap(f->base, f->reserved);
	free(f->chunks);
	free(f);
	return 0;
}
