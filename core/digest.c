/* digest.c - fs-verity file digests (SHA-256 Merkle tree) and plain SHA-256. */
#include "digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha2.h>

static const uint8_t zero_block[VR_FSV_BLOCK_SIZE];

/* The plain SHA-256 of the bytes SPANS hold, through a stream; returns 0 or -errno. */
static int spans_sha256(const struct vr_span *spans, size_t nspans, uint8_t out[VR_DIGEST_SIZE])
{
	struct vr_sha256_stream *st = NULL;
	int ret = vr_sha256_stream_new(&st);

	for (size_t i = 0; ret == 0 && i < nspans; i++)
		ret = vr_sha256_stream_update(st, spans[i].data, spans[i].len);
	if (ret == 0)
		ret = vr_sha256_stream_final(st, out);
	vr_sha256_stream_free(st); /* NULL when it could not be made */
	return ret;
}

void vr_sha256(const void *data, size_t len, uint8_t out[VR_DIGEST_SIZE])
{
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, len, data);
	sha256_digest(&c, VR_DIGEST_SIZE, out);
}

static void block_hash(const void *data, size_t len, uint8_t out[VR_DIGEST_SIZE])
{
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, len, data);
	if (len < VR_FSV_BLOCK_SIZE)
		sha256_update(&c, VR_FSV_BLOCK_SIZE - len, zero_block);
	sha256_digest(&c, VR_DIGEST_SIZE, out);
}

static void descriptor_digest(const uint8_t root[VR_DIGEST_SIZE], uint64_t size,
			      uint8_t out[VR_DIGEST_SIZE])
{
	uint8_t d[VR_FSV_DESC_SIZE];

	vr_fsv_descriptor(d, root, size);
	vr_sha256(d, sizeof(d), out);
}

void vr_fsv_init(struct vr_fsv_stream *s)
{
	s->size = 0;
	memset(s->fill, 0, sizeof(s->fill));
	memset(s->emitted, 0, sizeof(s->emitted));
}

/*
 * Appends a hash to tree buffer LEVEL (>= 1). A full buffer is hashed only when
 * a further hash arrives, since a level that is exactly one full block is the
 * root and must not be hashed again one level up.
 */
static int add_hash(struct vr_fsv_stream *s, int level, const uint8_t h[VR_DIGEST_SIZE])
{
	if (level > VR_FSV_MAX_LEVELS)
		return -EFBIG;
	if (s->fill[level] == VR_FSV_BLOCK_SIZE) {
		uint8_t up[VR_DIGEST_SIZE];
		int ret;

		vr_sha256(s->buf[level], VR_FSV_BLOCK_SIZE, up);
		s->emitted[level]++;
		s->fill[level] = 0;
		ret = add_hash(s, level + 1, up);
		if (ret)
			return ret;
	}
	memcpy(s->buf[level] + s->fill[level], h, VR_DIGEST_SIZE);
	s->fill[level] += VR_DIGEST_SIZE;
	return 0;
}

static int data_block(struct vr_fsv_stream *s, const uint8_t *block, size_t len)
{
	uint8_t h[VR_DIGEST_SIZE];

	block_hash(block, len, h);
	if (s->emitted[0] == 0)
		memcpy(s->first, h, VR_DIGEST_SIZE);
	s->emitted[0]++;
	return add_hash(s, 1, h);
}

int vr_fsv_update(struct vr_fsv_stream *s, const void *data, size_t len)
{
	const uint8_t *p = data;
	int ret;

	while (len > 0) {
		if (s->fill[0] == 0 && len >= VR_FSV_BLOCK_SIZE) {
			ret = data_block(s, p, VR_FSV_BLOCK_SIZE);
			if (ret)
				return ret;
			p += VR_FSV_BLOCK_SIZE;
			len -= VR_FSV_BLOCK_SIZE;
			s->size += VR_FSV_BLOCK_SIZE;
			continue;
		}
		size_t n = VR_FSV_BLOCK_SIZE - s->fill[0];

		if (n > len)
			n = len;
		memcpy(s->buf[0] + s->fill[0], p, n);
		s->fill[0] += n;
		s->size += n;
		p += n;
		len -= n;
		if (s->fill[0] == VR_FSV_BLOCK_SIZE) {
			s->fill[0] = 0;
			ret = data_block(s, s->buf[0], VR_FSV_BLOCK_SIZE);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int vr_fsv_final(struct vr_fsv_stream *s, uint8_t out[VR_DIGEST_SIZE])
{
	uint8_t root[VR_DIGEST_SIZE] = {0};
	int ret;

	if (s->fill[0] > 0) {
		ret = data_block(s, s->buf[0], s->fill[0]);
		if (ret)
			return ret;
		s->fill[0] = 0;
	}
	if (s->emitted[0] == 1) {
		memcpy(root, s->first, VR_DIGEST_SIZE);
	} else if (s->emitted[0] > 1) {
		for (int level = 1;; level++) {
			uint8_t h[VR_DIGEST_SIZE];

			block_hash(s->buf[level], s->fill[level], h);
			if (s->emitted[level] == 0) {
				memcpy(root, h, VR_DIGEST_SIZE);
				break;
			}
			s->emitted[level]++;
			s->fill[level] = 0;
			ret = add_hash(s, level + 1, h);
			if (ret)
				return ret;
		}
	}
	descriptor_digest(root, s->size, out);
	return 0;
}

static uint64_t units_of(uint64_t size)
{
	return vr_fsv_level_up(vr_fsv_blocks(size));
}

static void unit_hash(const void *data, size_t len, uint8_t out[VR_DIGEST_SIZE])
{
	uint8_t level[VR_FSV_BLOCK_SIZE];
	const uint8_t *p = data;
	size_t i = 0;

	for (size_t off = 0; off < len; off += VR_FSV_BLOCK_SIZE, i++) {
		size_t n = len - off < VR_FSV_BLOCK_SIZE ? len - off : VR_FSV_BLOCK_SIZE;

		block_hash(p + off, n, level + i * VR_DIGEST_SIZE);
	}
	block_hash(level, i * VR_DIGEST_SIZE, out);
}

static void finish_l1(uint8_t *l1, uint64_t size, uint8_t out[VR_DIGEST_SIZE])
{
	uint8_t root[VR_DIGEST_SIZE] = {0};
	uint64_t n = units_of(size);

	if (size > 0 && size <= VR_FSV_BLOCK_SIZE) {
		memcpy(root, l1, VR_DIGEST_SIZE);
	} else if (size > 0) {
		/* Each pass hashes blocks of 128 hashes; writing hash i at i*32
		 * never overtakes block i+1, which starts at (i+1)*4096. */
		while (n > 1) {
			uint64_t next = vr_fsv_level_up(n);

			for (uint64_t i = 0; i < next; i++) {
				uint64_t cnt = n - i * VR_FSV_ARITY;
				uint8_t h[VR_DIGEST_SIZE];

				if (cnt > VR_FSV_ARITY)
					cnt = VR_FSV_ARITY;
				block_hash(l1 + i * VR_FSV_BLOCK_SIZE, cnt * VR_DIGEST_SIZE, h);
				memcpy(l1 + i * VR_DIGEST_SIZE, h, VR_DIGEST_SIZE);
			}
			n = next;
		}
		memcpy(root, l1, VR_DIGEST_SIZE);
	}
	descriptor_digest(root, size, out);
}

/* Threads now busy with a sequential plain SHA-256 (vr_digest_thread_busy). */
static atomic_int host_hashers;

void vr_digest_thread_busy(int delta)
{
	atomic_fetch_add(&host_hashers, delta);
}

unsigned vr_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

/* Work shared by the digest threads. */
struct spans_job {
	const struct vr_span *spans;
	size_t nspans;
	uint64_t *first_unit; /* index of each span's first unit, plus the total */
	uint8_t *l1;
	atomic_uint_fast64_t *next; /* shared by all threads */
	/* plain SHA-256, done by the first thread before it joins the tree */
	bool want_sha;
	uint8_t *sha;
	int sha_ret;
	/* elastic pools (nthreads 0): worker INDEX works only while fewer than CPUS - INDEX
	 * threads are busy hashing beside the tree, so it joins when such a hash ends */
	bool elastic;
	unsigned cpus, index;
	/* instead of SPANS: the file's SIZE bytes, copied through READ into each worker's own
	 * buffer; the first error it returns ends every worker and is the digest's (READ_RET) */
	vr_read_fn read;
	void *rctx;
	uint64_t size;
	atomic_int *read_ret;
	uint64_t total; /* units in all */
};

/* Waits until this elastic worker may take a CPU, or the units run out; returns false then. */
static bool may_work(const struct spans_job *job, uint64_t total)
{
	const struct timespec nap = {0, 200000}; /* 0.2 ms: a unit takes about 0.4 ms */

	while ((unsigned)atomic_load(&host_hashers) + job->index >= job->cpus) {
		if (atomic_load(job->next) >= total)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

#define UNITS_PER_GRAB 4

static void unit_at(const struct spans_job *job, uint64_t u, const uint8_t **p, size_t *len)
{
	size_t lo = 0, hi = job->nspans - 1;

	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;

		if (job->first_unit[mid] <= u)
			lo = mid;
		else
			hi = mid - 1;
	}
	const struct vr_span *s = &job->spans[lo];
	size_t off = (size_t)(u - job->first_unit[lo]) * VR_FSV_UNIT_SIZE;

	*p = (const uint8_t *)s->data + off;
	*len = s->len - off < VR_FSV_UNIT_SIZE ? s->len - off : VR_FSV_UNIT_SIZE;
}

/* Hashes the units from U (at most UNITS_PER_GRAB) read through JOB's READ into BUF. */
static void read_units(struct spans_job *job, uint64_t u, uint8_t *buf)
{
	uint64_t at = u * VR_FSV_UNIT_SIZE;
	uint64_t end = at + (uint64_t)UNITS_PER_GRAB * VR_FSV_UNIT_SIZE;
	size_t len = (size_t)((end < job->size ? end : job->size) - at);
	int ret = job->read(job->rctx, at, buf, len);

	if (ret) {
		int none = 0;

		atomic_compare_exchange_strong(job->read_ret, &none, ret);
		atomic_store(job->next, job->total); /* every worker stops */
		return;
	}
	for (size_t off = 0; off < len; off += VR_FSV_UNIT_SIZE, u++)
		unit_hash(buf + off, len - off < VR_FSV_UNIT_SIZE ? len - off : VR_FSV_UNIT_SIZE,
			  job->l1 + u * VR_DIGEST_SIZE);
}

/* Above glibc's first mmap threshold: smaller ones come from the heap as before. */
#define BUF_MAP_MIN ((size_t)128 << 10)

void *vr_buf_alloc(size_t len)
{
	void *p;

	if (len < BUF_MAP_MIN)
		return malloc(len ? len : 1);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, len, MADV_DONTDUMP); /* file bytes stay out of core dumps */
	return p;
}

void vr_buf_free(void *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len ? len : 1); /* file bytes do not linger */
	if (len < BUF_MAP_MIN)
		free(p);
	else
		munmap(p, len);
}

static void *spans_worker(void *arg)
{
	struct spans_job *job = arg;
	uint64_t total = job->total;
	uint8_t *buf = NULL;
	/* a small file's worker takes what the file needs, not a whole grab: fresh pages
	 * cost their first touch, and a small file's digest would be mostly that */
	size_t buf_len = job->size < (uint64_t)UNITS_PER_GRAB * VR_FSV_UNIT_SIZE
			     ? (size_t)job->size
			     : (size_t)UNITS_PER_GRAB * VR_FSV_UNIT_SIZE;

	if (job->read && !(buf = vr_buf_alloc(buf_len))) {
		int none = 0;

		atomic_compare_exchange_strong(job->read_ret, &none, -ENOMEM);
		return NULL; /* the others do its share */
	}
	if (job->want_sha)
		job->sha_ret = spans_sha256(job->spans, job->nspans, job->sha);
	for (;;) {
		if (job->elastic && job->index > 0 && !may_work(job, total))
			break;
		uint64_t u = atomic_fetch_add(job->next, UNITS_PER_GRAB);

		if (u >= total)
			break;
		if (buf) {
			read_units(job, u, buf);
			continue;
		}
		for (uint64_t end = u + UNITS_PER_GRAB; u < end && u < total; u++) {
			const uint8_t *p;
			size_t len;

			unit_at(job, u, &p, &len);
			unit_hash(p, len, job->l1 + u * VR_DIGEST_SIZE);
		}
	}
	if (buf)
		vr_buf_free(buf, buf_len);
	return NULL;
}

/*
 * Hashes a file of one block at most, over SPANS, into L1 (the root) and its
 * plain SHA-256 into SHA when SHA is not NULL. Returns 0 or what spans_sha256
 * returns.
 */
static int one_block(const struct vr_span *spans, size_t nspans, uint8_t *sha, uint8_t *l1)
{
	/* a one-block file's root is its block's hash, not a level-1 hash */
	for (size_t i = 0; i < nspans; i++)
		if (spans[i].len)
			block_hash(spans[i].data, spans[i].len, l1);
	return sha ? spans_sha256(spans, nspans, sha) : 0;
}

/*
 * Hashes the TOTAL units of BASE's spans into BASE->l1 with NTHREADS threads
 * (0: one per CPU, elastic), this one among them; this one also takes the
 * plain SHA-256 when BASE->sha is not NULL. Returns 0, -errno when a thread
 * cannot start, or what spans_sha256 returns.
 */
static int run_workers(const struct spans_job *base, unsigned nthreads, uint64_t total)
{
	struct spans_job job = *base;
	uint8_t *sha = job.sha;
	atomic_uint_fast64_t next;
	struct spans_job each[256];
	pthread_t tids[256];
	unsigned started = 0;
	int ret = 0;

	atomic_init(&next, 0);
	job.next = &next;
	if (nthreads == 0) {
		/* one thread per CPU; those a plain SHA-256 beside the tree needs wait for it */
		job.elastic = true;
		job.cpus = nthreads = vr_cpu_count();
	}
	if (nthreads > 256)
		nthreads = 256;
	/* a reading worker takes UNITS_PER_GRAB units at a time: more would find none */
	uint64_t shares = job.read ? (total + UNITS_PER_GRAB - 1) / UNITS_PER_GRAB : total;

	if ((uint64_t)nthreads > shares + (sha != NULL))
		nthreads = (unsigned)(shares + (sha != NULL));
	if (nthreads == 0)
		nthreads = 1;
	/* Thread 0 (this one) takes the plain hash when asked, so the tree
	 * work of the others overlaps it. */
	for (unsigned t = 1; t < nthreads; t++) {
		each[t] = job;
		each[t].index = t;
		int err = pthread_create(&tids[t], NULL, spans_worker, &each[t]);

		if (err) {
			ret = -err;
			break;
		}
		started = t;
	}
	if (ret == 0) {
		struct spans_job mine = job;

		mine.want_sha = sha != NULL;
		spans_worker(&mine);
		ret = mine.sha_ret;
	}
	for (unsigned t = 1; t <= started; t++)
		pthread_join(tids[t], NULL);
	return ret;
}

/*
 * The fs-verity digest of SPANS into FSV, and their plain SHA-256 into SHA
 * when SHA is not NULL, with NTHREADS threads (0: elastic). Every span but
 * the last must hold whole units. Returns 0, -EINVAL, -ENOMEM or -errno.
 */
static int digest_spans(const struct vr_span *spans, size_t nspans, unsigned nthreads, uint8_t *sha,
			uint8_t fsv[VR_DIGEST_SIZE])
{
	struct spans_job job = {.spans = spans, .nspans = nspans, .sha = sha};
	uint64_t size = 0;
	int ret;

	for (size_t i = 0; i + 1 < nspans; i++)
		if (spans[i].len % VR_FSV_UNIT_SIZE)
			return -EINVAL;
	job.first_unit = calloc(nspans + 1, sizeof(*job.first_unit));
	if (!job.first_unit)
		return -ENOMEM;
	for (size_t i = 0; i < nspans; i++) {
		job.first_unit[i + 1] = job.first_unit[i] + units_of(spans[i].len);
		size += spans[i].len;
	}
	uint64_t total = job.first_unit[nspans];

	job.total = total;
	job.l1 = malloc(total ? total * VR_FSV_BLOCK_SIZE / VR_FSV_ARITY : VR_DIGEST_SIZE);
	if (!job.l1) {
		ret = -ENOMEM;
		goto free_first;
	}
	if (size > 0 && size <= VR_FSV_BLOCK_SIZE)
		ret = one_block(spans, nspans, sha, job.l1);
	else
		ret = run_workers(&job, nthreads, total);
	if (ret == 0)
		finish_l1(job.l1, size, fsv);
	free(job.l1);
free_first:
	free(job.first_unit);
	return ret;
}

int vr_fsv_digest_read(vr_read_fn read, void *ctx, uint64_t size, unsigned nthreads,
		       uint8_t out[VR_DIGEST_SIZE])
{
	atomic_int read_ret;
	struct spans_job job = {.read = read,
				.rctx = ctx,
				.size = size,
				.read_ret = &read_ret,
				.total = units_of(size)};
	int ret = 0;

	atomic_init(&read_ret, 0);
	if (job.total > SIZE_MAX / VR_DIGEST_SIZE)
		return -EFBIG;
	job.l1 = malloc(job.total ? job.total * VR_DIGEST_SIZE : VR_DIGEST_SIZE);
	if (!job.l1)
		return -ENOMEM;
	if (size > 0 && size <= VR_FSV_BLOCK_SIZE) {
		uint8_t block[VR_FSV_BLOCK_SIZE];

		/* a one-block file's root is its block's hash, not a level-1 hash */
		ret = read(ctx, 0, block, (size_t)size);
		if (ret == 0)
			block_hash(block, (size_t)size, job.l1);
		explicit_bzero(block, sizeof(block));
	} else if (size > 0) {
		ret = run_workers(&job, nthreads, job.total);
		if (ret == 0)
			ret = atomic_load(&read_ret);
	}
	if (ret == 0)
		finish_l1(job.l1, size, out);
	free(job.l1);
	return ret;
}

int vr_fsv_digest_spans(const struct vr_span *spans, size_t nspans, unsigned nthreads,
			uint8_t out[VR_DIGEST_SIZE])
{
	return digest_spans(spans, nspans, nthreads, NULL, out);
}

int vr_digest_both_spans(const struct vr_span *spans, size_t nspans, unsigned nthreads,
			 uint8_t sha[VR_DIGEST_SIZE], uint8_t fsv[VR_DIGEST_SIZE])
{
	return digest_spans(spans, nspans, nthreads, sha, fsv);
}
