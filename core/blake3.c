/* blake3.c - BLAKE3, written from its specification (Aumasson, Neves, O'Connor, Wilcox-O'Hearn,
 * 2020): portable C, streaming, and a whole buffer cut into subtrees over several threads.
 */
#include "blake3.h"
#include "digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* Domain flags (the specification's table 3). */
enum {
	CHUNK_START = 1 << 0,
	CHUNK_END = 1 << 1,
	PARENT = 1 << 2,
	ROOT = 1 << 3,
	KEYED_HASH = 1 << 4,
	DERIVE_KEY_CONTEXT = 1 << 5,
	DERIVE_KEY_MATERIAL = 1 << 6,
};

/* The IV: SHA-256's, the first 32 bits of the fractional parts of the first 8 primes' roots. */
static const uint32_t iv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
			       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

/*
 * The message word each round's G functions take: round 0 in order, each
 * next round the permutation (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14,
 * 15, 8) applied to the last, written out so no words are moved between rounds.
 */
static const uint8_t schedule[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t load32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w)
{
	p[0] = (uint8_t)w;
	p[1] = (uint8_t)(w >> 8);
	p[2] = (uint8_t)(w >> 16);
	p[3] = (uint8_t)(w >> 24);
}

/*
 * The quarter-round: mixes columns or diagonals A, B, C, D of V with message
 * words X, Y, rotating with ROT (of one word, or of a vector of them).
 */
#define G(rot, v, a, b, c, d, x, y)                                                                \
	do {                                                                                       \
		(v)[a] += (v)[b] + (x);                                                            \
		(v)[d] = (rot)((v)[d] ^ (v)[a], 16);                                               \
		(v)[c] += (v)[d];                                                                  \
		(v)[b] = (rot)((v)[b] ^ (v)[c], 12);                                               \
		(v)[a] += (v)[b] + (y);                                                            \
		(v)[d] = (rot)((v)[d] ^ (v)[a], 8);                                                \
		(v)[c] += (v)[d];                                                                  \
		(v)[b] = (rot)((v)[b] ^ (v)[c], 7);                                                \
	} while (0)

/* The seven rounds over state V and message M, each taking the words its schedule names. */
#define ROUNDS(rot, v, m)                                                                          \
	for (int r = 0; r < 7; r++) {                                                              \
		const uint8_t *s = schedule[r];                                                    \
		G(rot, v, 0, 4, 8, 12, (m)[s[0]], (m)[s[1]]);                                      \
		G(rot, v, 1, 5, 9, 13, (m)[s[2]], (m)[s[3]]);                                      \
		G(rot, v, 2, 6, 10, 14, (m)[s[4]], (m)[s[5]]);                                     \
		G(rot, v, 3, 7, 11, 15, (m)[s[6]], (m)[s[7]]);                                     \
		G(rot, v, 0, 5, 10, 15, (m)[s[8]], (m)[s[9]]);                                     \
		G(rot, v, 1, 6, 11, 12, (m)[s[10]], (m)[s[11]]);                                   \
		G(rot, v, 2, 7, 8, 13, (m)[s[12]], (m)[s[13]]);                                    \
		G(rot, v, 3, 4, 9, 14, (m)[s[14]], (m)[s[15]]);                                    \
	}

/*
 * The compression function over a 64-byte BLOCK (zero-padded to 64 when
 * shorter: LEN is its real length) with chaining value CV, the 64-bit COUNTER
 * and FLAGS. Writes all 16 output words: the first 8 are the next chaining
 * value, all 16 an extended output block.
 */
static void compress(const uint32_t cv[8], const uint8_t block[VR_BLAKE3_BLOCK_LEN],
		     uint64_t counter, uint32_t len, uint32_t flags, uint32_t out[16])
{
	uint32_t m[16], v[16];

	for (int i = 0; i < 16; i++)
		m[i] = load32(block + 4 * i);
	memcpy(v, cv, 8 * sizeof(uint32_t));
	memcpy(v + 8, iv, 4 * sizeof(uint32_t));
	v[12] = (uint32_t)counter;
	v[13] = (uint32_t)(counter >> 32);
	v[14] = len;
	v[15] = flags;
	ROUNDS(rotr, v, m)
	for (int i = 0; i < 8; i++) {
		out[i] = v[i] ^ v[i + 8];
		out[i + 8] = v[i + 8] ^ cv[i];
	}
}

/*
 * Whole chunks abreast, one per lane of a vector of words (GCC's and clang's
 * vector extension): the same compressions as compress(), chunk J of the
 * LANES in lane J. DEFINE_CHUNKS_CV(NAME, VEC, LANES, ATTR) defines
 * NAME(in, counter, key, flags, cv): the chaining values of the LANES whole
 * chunks at IN (one after another), the first of index COUNTER, with KEY and
 * the mode's FLAGS, into CV[LANES][8]; its rotation NAME_rotr; both with ATTR
 * (a target, or nothing).
 */
/* VEC is a type and ATTR an attribute: neither can stand in parentheses */
// NOLINTBEGIN(bugprone-macro-parentheses)
#define DEFINE_CHUNKS_CV(name, vec, lanes, attr)                                                   \
	attr static inline vec name##_rotr(vec x, unsigned n)                                      \
	{                                                                                          \
		return (x >> n) | (x << (32 - n));                                                 \
	}                                                                                          \
	attr static void name(const uint8_t *in, uint64_t counter, const uint32_t key[8],          \
			      uint32_t flags, uint32_t cv[][8])                                    \
	{                                                                                          \
		const vec zero = {0};                                                              \
		vec h[8], m[16], v[16], lo = zero, hi = zero;                                      \
                                                                                                   \
		for (int i = 0; i < 8; i++)                                                        \
			h[i] = zero + key[i];                                                      \
		for (int j = 0; j < (lanes); j++) {                                                \
			lo[j] = (uint32_t)(counter + (uint64_t)j);                                 \
			hi[j] = (uint32_t)((counter + (uint64_t)j) >> 32);                         \
		}                                                                                  \
		for (int b = 0; b < VR_BLAKE3_CHUNK_LEN / VR_BLAKE3_BLOCK_LEN; b++) {              \
			const uint8_t *p = in + b * VR_BLAKE3_BLOCK_LEN;                           \
			uint32_t f =                                                               \
			    flags | (b == 0 ? CHUNK_START : 0) |                                   \
			    (b == VR_BLAKE3_CHUNK_LEN / VR_BLAKE3_BLOCK_LEN - 1 ? CHUNK_END : 0);  \
                                                                                                   \
			for (int i = 0; i < 16; i++)                                               \
				for (int j = 0; j < (lanes); j++)                                  \
					m[i][j] = load32(p + j * VR_BLAKE3_CHUNK_LEN + 4 * i);     \
			for (int i = 0; i < 8; i++)                                                \
				v[i] = h[i];                                                       \
			for (int i = 0; i < 4; i++)                                                \
				v[8 + i] = zero + iv[i];                                           \
			v[12] = lo;                                                                \
			v[13] = hi;                                                                \
			v[14] = zero + VR_BLAKE3_BLOCK_LEN;                                        \
			v[15] = zero + f;                                                          \
			ROUNDS(name##_rotr, v, m)                                                  \
			for (int i = 0; i < 8; i++)                                                \
				h[i] = v[i] ^ v[i + 8];                                            \
		}                                                                                  \
		for (int j = 0; j < (lanes); j++)                                                  \
			for (int i = 0; i < 8; i++)                                                \
				cv[j][i] = h[i][j];                                                \
	}
// NOLINTEND(bugprone-macro-parentheses)

/* Four lanes: SSE2 on x86-64, NEON on Arm, plain words elsewhere. */
typedef uint32_t lanes4_t __attribute__((vector_size(4 * sizeof(uint32_t))));
DEFINE_CHUNKS_CV(chunks_cv4, lanes4_t, 4, )

#if defined(__x86_64__)
/* Eight lanes on a CPU with AVX2 (asked at run time): twice the chunks per step. */
typedef uint32_t lanes8_t __attribute__((vector_size(8 * sizeof(uint32_t))));
DEFINE_CHUNKS_CV(chunks_cv8, lanes8_t, 8, __attribute__((target("avx2"))))

static bool have_avx2(void)
{
	return __builtin_cpu_supports("avx2");
}
#else
static void chunks_cv8(const uint8_t *in, uint64_t counter, const uint32_t key[8], uint32_t flags,
		       uint32_t cv[][8])
{
	chunks_cv4(in, counter, key, flags, cv);
	chunks_cv4(in + 4 * VR_BLAKE3_CHUNK_LEN, counter + 4, key, flags, cv + 4);
}

static bool have_avx2(void)
{
	return false;
}
#endif

/*
 * A node not yet compressed for the last time: whether it becomes a chaining
 * value or the root's output depends on what follows, so it is kept whole.
 */
struct node {
	uint32_t cv[8];
	uint8_t block[VR_BLAKE3_BLOCK_LEN];
	uint64_t counter;
	uint32_t len, flags;
};

/* The node's chaining value: its compression's first 8 words. */
static void node_cv(const struct node *n, uint32_t out[8])
{
	uint32_t w[16];

	compress(n->cv, n->block, n->counter, n->len, n->flags, w);
	memcpy(out, w, 8 * sizeof(uint32_t));
}

/* The parent node of two children's chaining values LEFT and RIGHT. */
static void parent_node(const uint32_t left[8], const uint32_t right[8], const uint32_t key[8],
			uint32_t flags, struct node *out)
{
	memcpy(out->cv, key, 8 * sizeof(uint32_t));
	for (int i = 0; i < 8; i++) {
		store32(out->block + 4 * i, left[i]);
		store32(out->block + 32 + 4 * i, right[i]);
	}
	out->counter = 0;
	out->len = VR_BLAKE3_BLOCK_LEN;
	out->flags = flags | PARENT;
}

static void parent_cv(const uint32_t left[8], const uint32_t right[8], const uint32_t key[8],
		      uint32_t flags, uint32_t out[8])
{
	struct node n;

	parent_node(left, right, key, flags, &n);
	node_cv(&n, out);
}

/*
 * The root's output: LEN bytes of the root node N compressed with ROOT set,
 * 64 bytes per output block counter (extendable output).
 */
static void root_bytes(const struct node *n, uint8_t *out, size_t len)
{
	for (uint64_t counter = 0; len > 0; counter++) {
		uint32_t w[16];
		uint8_t b[VR_BLAKE3_BLOCK_LEN];
		size_t take = len < sizeof(b) ? len : sizeof(b);

		compress(n->cv, n->block, counter, n->len, n->flags | ROOT, w);
		for (int i = 0; i < 16; i++)
			store32(b + 4 * i, w[i]);
		memcpy(out, b, take);
		out += take;
		len -= take;
	}
}

/* ---- the streaming hasher ---- */

/* Starts H for the chunk of index FIRST_CHUNK of a larger input (0: a whole input). */
static void init_at(struct vr_blake3 *h, const uint32_t key[8], uint8_t flags, uint64_t first_chunk)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->key, key, sizeof(h->key));
	memcpy(h->cv, key, sizeof(h->cv));
	h->chunk = first_chunk;
	h->flags = flags;
}

void vr_blake3_init(struct vr_blake3 *h)
{
	init_at(h, iv, 0, 0);
}

void vr_blake3_init_keyed(struct vr_blake3 *h, const uint8_t key[VR_BLAKE3_KEY_LEN])
{
	uint32_t k[8];

	for (int i = 0; i < 8; i++)
		k[i] = load32(key + 4 * i);
	init_at(h, k, KEYED_HASH, 0);
	explicit_bzero(k, sizeof(k));
}

void vr_blake3_init_derive_key(struct vr_blake3 *h, const char *context)
{
	struct vr_blake3 ctx;
	uint8_t ck[VR_BLAKE3_KEY_LEN];
	uint32_t k[8];

	init_at(&ctx, iv, DERIVE_KEY_CONTEXT, 0);
	vr_blake3_update(&ctx, context, strlen(context));
	vr_blake3_final(&ctx, ck, sizeof(ck));
	for (int i = 0; i < 8; i++)
		k[i] = load32(ck + 4 * i);
	init_at(h, k, DERIVE_KEY_MATERIAL, 0);
	explicit_bzero(ck, sizeof(ck));
	explicit_bzero(k, sizeof(k));
}

/* Bytes of the current chunk taken so far. */
static size_t chunk_len(const struct vr_blake3 *h)
{
	return (size_t)h->blocks * VR_BLAKE3_BLOCK_LEN + h->buf_len;
}

static uint32_t start_flag(const struct vr_blake3 *h)
{
	return h->blocks == 0 ? CHUNK_START : 0;
}

/* The current chunk's last node: its pending block, with CHUNK_END. */
static void chunk_node(const struct vr_blake3 *h, struct node *out)
{
	memcpy(out->cv, h->cv, sizeof(out->cv));
	memset(out->block, 0, sizeof(out->block));
	memcpy(out->block, h->buf, h->buf_len);
	out->counter = h->chunk;
	out->len = h->buf_len;
	out->flags = h->flags | start_flag(h) | CHUNK_END;
}

/*
 * Closes the current (full) chunk, because more input follows it, and pushes
 * its chaining value. Each completed pair of equal subtrees is merged at
 * once: after chunk number T (counted from this hasher's first) the stack
 * holds one value per bit set in T, the largest first. The last chunk stays
 * open until final(), since only then is it known whether it is the root.
 */
static void push_cv(struct vr_blake3 *h, const uint32_t chunk_cv[8])
{
	uint32_t cv[8];

	memcpy(cv, chunk_cv, sizeof(cv));
	h->pushed++;
	for (uint64_t t = h->pushed; (t & 1) == 0; t >>= 1)
		parent_cv(h->stack[--h->depth], cv, h->key, h->flags, cv);
	memcpy(h->stack[h->depth++], cv, sizeof(cv));
	h->chunk++;
}

static void push_chunk(struct vr_blake3 *h)
{
	struct node n;
	uint32_t cv[8];

	chunk_node(h, &n);
	node_cv(&n, cv);
	push_cv(h, cv);
	memcpy(h->cv, h->key, sizeof(h->cv));
	h->blocks = 0;
	h->buf_len = 0;
}

/*
 * Takes whole chunks from P, eight or four at a time, while more input follows them
 * (so none is the last, which may be the root); H is at a chunk's start.
 * Returns the bytes taken.
 */
static size_t take_chunks(struct vr_blake3 *h, const uint8_t *p, size_t len)
{
	const size_t four = 4 * (size_t)VR_BLAKE3_CHUNK_LEN;
	uint32_t cv[8][8];
	size_t done = 0;

	/* eight at a time where the CPU has AVX2, then (and elsewhere) four */
	while (have_avx2() && len - done > 2 * four) {
		chunks_cv8(p + done, h->chunk, h->key, h->flags, cv);
		for (int j = 0; j < 8; j++)
			push_cv(h, cv[j]);
		done += 2 * four;
	}
	for (; len - done > four; done += four) {
		chunks_cv4(p + done, h->chunk, h->key, h->flags, cv);
		for (int j = 0; j < 4; j++)
			push_cv(h, cv[j]);
	}
	return done;
}

/* Compresses the pending full block when more input of its chunk follows. */
static void flush_block(struct vr_blake3 *h, const uint8_t *block)
{
	uint32_t w[16];

	compress(h->cv, block, h->chunk, VR_BLAKE3_BLOCK_LEN, h->flags | start_flag(h), w);
	memcpy(h->cv, w, sizeof(h->cv));
	h->blocks++;
	h->buf_len = 0;
}

void vr_blake3_update(struct vr_blake3 *h, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		if (chunk_len(h) == VR_BLAKE3_CHUNK_LEN)
			push_chunk(h);
		if (chunk_len(h) == 0) {
			size_t done = take_chunks(h, p, len);

			p += done;
			len -= done;
		}
		if (h->buf_len == VR_BLAKE3_BLOCK_LEN)
			flush_block(h, h->buf);
		/* whole blocks straight from the input, but never a chunk's last: its
		 * node waits for CHUNK_END or the next chunk */
		while (h->buf_len == 0 && len > VR_BLAKE3_BLOCK_LEN &&
		       chunk_len(h) + VR_BLAKE3_BLOCK_LEN < VR_BLAKE3_CHUNK_LEN) {
			flush_block(h, p);
			p += VR_BLAKE3_BLOCK_LEN;
			len -= VR_BLAKE3_BLOCK_LEN;
		}
		size_t take = VR_BLAKE3_BLOCK_LEN - h->buf_len;

		if (take > len)
			take = len;
		memcpy(h->buf + h->buf_len, p, take);
		h->buf_len += (uint8_t)take;
		p += take;
		len -= take;
	}
}

/*
 * The last node of what H has taken: the open chunk, merged with every
 * subtree on the stack from the right. The root when H began at chunk 0, else
 * (a subtree of a larger input) the node whose chaining value stands for it.
 */
static void final_node(const struct vr_blake3 *h, struct node *out)
{
	chunk_node(h, out);
	for (size_t i = h->depth; i-- > 0;) {
		uint32_t cv[8];

		node_cv(out, cv);
		parent_node(h->stack[i], cv, h->key, h->flags, out);
	}
}

void vr_blake3_final(const struct vr_blake3 *h, uint8_t *out, size_t len)
{
	struct node n;

	final_node(h, &n);
	root_bytes(&n, out, len);
}

/* ---- one buffer on many threads ---- */

#define B3_MAX_THREADS	     64
#define B3_MAX_PIECES	     256 /* chaining values kept: 8 KiB on the caller's stack */
#define B3_PIECES_PER_THREAD 16	 /* so threads that finish early find more to take */
#define B3_MIN_SHARE	     ((uint64_t)4 << 20) /* less, and starting a thread costs more */

/* The largest power of two below M (M >= 2). */
static uint64_t pow2_below(uint64_t m)
{
	return (uint64_t)1 << (63 - __builtin_clzll(m - 1));
}

struct b3_job {
	const uint8_t *data; /* the bytes, or NULL: READ gives them */
	vr_blake3_read_fn read;
	void *ctx;
	uint64_t len;
	uint64_t piece;	    /* bytes of each piece but the last: a power of two chunks */
	size_t pieces;	    /* how many */
	atomic_size_t next; /* the next piece nobody has taken */
	atomic_int err;	    /* READ's first error: the others stop taking pieces */
	uint32_t (*cv)[8];  /* each piece's chaining value */
};

/* Bytes a reading worker takes at a time: few calls, and its buffer stays in the caches. */
#define B3_READ ((size_t)2 << 20)

/* Feeds bytes [OFF, OFF + N) into H: from J's bytes in memory (BUF NULL), or read through J
 * into BUF. */
static int b3_feed(const struct b3_job *j, struct vr_blake3 *h, uint64_t off, uint64_t n,
		   uint8_t *buf)
{
	if (!buf) {
		vr_blake3_update(h, j->data + off, (size_t)n);
		return 0;
	}
	for (uint64_t at = off; at < off + n;) {
		size_t k = off + n - at < B3_READ ? (size_t)(off + n - at) : B3_READ;
		int ret = j->read(j->ctx, at, buf, k);

		if (ret)
			return ret;
		vr_blake3_update(h, buf, k);
		at += k;
	}
	return 0;
}

static void *b3_worker(void *arg)
{
	struct b3_job *j = arg;
	uint8_t *buf = NULL;
	size_t i;

	if (!j->data && !(buf = vr_buf_alloc(B3_READ))) {
		int none = 0;

		atomic_compare_exchange_strong(&j->err, &none, -ENOMEM);
		return NULL;
	}
	while (atomic_load(&j->err) == 0 && (i = atomic_fetch_add(&j->next, 1)) < j->pieces) {
		uint64_t off = i * j->piece, n = j->len - off < j->piece ? j->len - off : j->piece;
		struct vr_blake3 h;
		struct node last;
		int ret, none = 0;

		init_at(&h, iv, 0, off / VR_BLAKE3_CHUNK_LEN);
		ret = b3_feed(j, &h, off, n, buf);
		if (ret) {
			atomic_compare_exchange_strong(&j->err, &none, ret);
			break;
		}
		final_node(&h, &last);
		node_cv(&last, j->cv[i]);
	}
	if (buf)
		vr_buf_free(buf, B3_READ); /* scrubbed: they were a file's bytes */
	return NULL;
}

/*
 * The chaining value of the subtree over pieces CV[0..M): every piece but the
 * last is a whole subtree of one size, so the tree above them splits them as
 * it splits chunks: the largest power of two of them on the left.
 */
static void merge(const uint32_t (*cv)[8], size_t m, uint32_t out[8])
{
	uint32_t left[8], right[8];
	size_t q;

	if (m == 1) {
		memcpy(out, cv[0], sizeof(left));
		return;
	}
	q = (size_t)pow2_below(m);
	merge(cv, q, left);
	merge(cv + q, m - q, right);
	parent_cv(left, right, iv, 0, out);
}

/*
 * Cuts N >= 2 chunks into at most TARGET >= 2 pieces of a power of two
 * chunks: the smallest such power. There are at least two: with one chunk a
 * piece, N; else half that size made more than TARGET pieces, so N is more
 * than twice half of it.
 */
static size_t piece_chunks(uint64_t n, size_t target)
{
	uint64_t p = 1;

	while ((n + p - 1) / p > target)
		p <<= 1;
	return (size_t)p;
}

/* The plain hash of J's LEN bytes (more than one chunk) on NTHREADS threads, this one among
 * them; returns 0 or READ's first error. */
static int b3_run(struct b3_job *j, unsigned nthreads, uint8_t out[VR_BLAKE3_LEN])
{
	uint32_t cvs[B3_MAX_PIECES][8], left[8], right[8];
	pthread_t tids[B3_MAX_THREADS];
	unsigned started = 0;
	struct node root;
	size_t q;

	if (nthreads == 0) {
		/* one per CPU, each worth starting: a share of B3_MIN_SHARE bytes or more */
		uint64_t worth = j->len / B3_MIN_SHARE;

		nthreads = vr_cpu_count();
		if (worth < nthreads)
			nthreads = worth > 1 ? (unsigned)worth : 1;
	}
	if (nthreads > B3_MAX_THREADS)
		nthreads = B3_MAX_THREADS;
	uint64_t chunks = (j->len + VR_BLAKE3_CHUNK_LEN - 1) / VR_BLAKE3_CHUNK_LEN;
	size_t target = (size_t)nthreads * B3_PIECES_PER_THREAD;

	j->cv = cvs;
	j->piece = (uint64_t)piece_chunks(chunks, target < B3_MAX_PIECES ? target : B3_MAX_PIECES) *
		   VR_BLAKE3_CHUNK_LEN;
	j->pieces = (size_t)((j->len + j->piece - 1) / j->piece);
	atomic_init(&j->next, 0);
	atomic_init(&j->err, 0);
	if (nthreads > j->pieces)
		nthreads = (unsigned)j->pieces;
	for (unsigned t = 1; t < nthreads; t++) {
		if (pthread_create(&tids[started], NULL, b3_worker, j) != 0)
			break; /* those started, and this thread, take its share */
		started++;
	}
	b3_worker(j);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	if (atomic_load(&j->err))
		return atomic_load(&j->err);
	q = (size_t)pow2_below(j->pieces);
	merge(cvs, q, left);
	merge(cvs + q, j->pieces - q, right);
	parent_node(left, right, iv, 0, &root);
	root_bytes(&root, out, VR_BLAKE3_LEN);
	return 0;
}

void vr_blake3_parallel(const void *data, size_t len, unsigned nthreads, uint8_t out[VR_BLAKE3_LEN])
{
	struct b3_job job = {.data = data, .len = len};

	if (len <= VR_BLAKE3_CHUNK_LEN) {
		struct vr_blake3 h;

		vr_blake3_init(&h);
		vr_blake3_update(&h, data, len);
		vr_blake3_final(&h, out, VR_BLAKE3_LEN);
		return;
	}
	(void)b3_run(&job, nthreads, out); /* bytes in memory: nothing to fail */
}

int vr_blake3_parallel_read(vr_blake3_read_fn read, void *ctx, uint64_t len, unsigned nthreads,
			    uint8_t out[VR_BLAKE3_LEN])
{
	struct b3_job job = {.read = read, .ctx = ctx, .len = len};

	if (len <= VR_BLAKE3_CHUNK_LEN) {
		uint8_t buf[VR_BLAKE3_CHUNK_LEN];
		struct vr_blake3 h;
		int ret = len ? read(ctx, 0, buf, (size_t)len) : 0;

		vr_blake3_init(&h);
		vr_blake3_update(&h, buf, ret ? 0 : (size_t)len);
		vr_blake3_final(&h, out, VR_BLAKE3_LEN);
		explicit_bzero(buf, sizeof(buf));
		return ret;
	}
	return b3_run(&job, nthreads, out);
}
