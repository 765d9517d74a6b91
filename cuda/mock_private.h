/*
 * mock_private.h - what the mock backend's files share: its memory model,
 * the device and file structs, their limits and locking, and the calls
 * between the files.
 */
#ifndef VR_MOCK_PRIVATE_H
#define VR_MOCK_PRIVATE_H

#include "backend.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define MOCK_GRAIN	      ((uint64_t)64 << 10)  /* allocation unit: 16 fs-verity blocks */
#define MOCK_CAP_UNIT	      ((uint64_t)1 << 20)   /* capacities are whole MiB */
#define MOCK_CHUNK_MAX	      ((uint64_t)256 << 20) /* the largest single chunk */
#define MOCK_DEFAULT_CAPACITY ((uint64_t)1 << 30)

/* Where a fault is injected (option fault=OP:N[:ERR]): the Nth call of a kind fails. */
enum fault_op { FAULT_ALLOC, FAULT_WRITE, FAULT_READ, FAULT_DIGEST, FAULT_OPS };

/*
 * Memory model (docs/architecture.md, "Device memory"): a file's bytes are
 * held by chunks end to end, as CUDA's VMM maps physical chunks into a
 * reserved virtual range. A chunk is a memfd (or, with vram=DIR, a file in
 * DIR that tests change to play an attacker), so a file can be handed to
 * another process as descriptors that reach its bytes and no other file's.
 * Growth adds chunks (sizes growing with the file, up to MOCK_CHUNK_MAX) and
 * never copies. The daemon reads and writes them through their descriptors
 * (pread, pwrite) and maps none, except a chunk it exports: that one it maps
 * before sealing it against writes, to keep writing and scrubbing it.
 *
 * Locking: LOCK guards the accounting, the pool, the chunk counter and the fault
 * counters, nothing else; a file's chunks belong to its caller (backend.h's
 * contract), so copies and digests run with no lock held.
 */
struct mock {
	pthread_mutex_t lock;
	uint64_t capacity, used;
	int dirfd;	  /* vram=DIR: where chunk files live; -1 for memfds */
	uint64_t next_id; /* names chunk files */
	/* freed memfd chunks never exported, scrubbed, for reuse; POOLED: their bytes (free
	 * capacity, but host memory still held) */
	struct chunk *pool;
	size_t npool, cappool;
	uint64_t pooled;
	/* exported chunks of freed files that another process still maps: scrubbed, closed once
	 * nobody else holds them (mock_reap); ORPHANED: their bytes, still in USED */
	struct chunk *orphans;
	size_t norphans, caporphans;
	uint64_t orphaned;
	bool no_probe; /* client_probe=0 (tests): a backend that cannot tell, as CUDA */
	int index;
	unsigned calls[FAULT_OPS];
	unsigned fail_at[FAULT_OPS]; /* the fail_at[op]-th call (from 1) fails, with -fail_errno */
	int fail_errno[FAULT_OPS];
};

struct chunk {
	int fd;
	uint64_t len;
	uint8_t *map;  /* the daemon's writable mapping of it, made at its first export */
	uint64_t id;   /* its file's number in DIR (vram=) */
	bool sealed;   /* memfd seals added at its first export: it can no longer change size */
	bool exported; /* ever handed to another process */
};

struct mock_file {
	struct vr_dev_file hdr; /* first: the file knows its device */
	uint64_t size;
	uint64_t held; /* bytes the chunks cover */
	struct chunk *chunks;
	uint32_t count, cap;
};

static inline struct mock_file *mf(struct vr_dev_file *f)
{
	return (struct mock_file *)f;
}

/* mock_device.c: options, open, close, info, fault injection */
int mock_fault(struct mock *m, enum fault_op op);

/* mock_file.c: a file's range, its chunks and the pool of freed ones */
int mock_chunk_make(struct mock *m, uint64_t len, struct chunk *c);
void mock_chunk_drop(struct mock *m, struct chunk *c, bool shared, bool scrubbed);
int mock_file_new(void *ctx, struct vr_dev_file **out);
int mock_resize(void *ctx, struct vr_dev_file *file, uint64_t size);
uint64_t mock_held(void *ctx, const struct vr_dev_file *file);
int mock_file_free(void *ctx, struct vr_dev_file *file);

/* mock_io.c: writes, reads, digests (with the test seam), scrubs */
int mock_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len);
int mock_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len);
int mock_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32]);
/* Zeroes LEN bytes at OFF of chunk C, or of file F (inside what it holds); 0 or -EIO. */
int mock_chunk_zero(const struct chunk *c, uint64_t off, uint64_t len);
int mock_zero(const struct mock_file *f, uint64_t off, uint64_t len);

/* mock_export.c: a file's chunks as sealed read-only descriptors; chunks still mapped by
 * another process once freed */
int mock_export(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out);
/* Whether another process still holds chunk C (an open description or a mapping of it). */
bool mock_chunk_shared(const struct mock *m, const struct chunk *c);
/* Keeps freed chunk C, which another process still maps, counted as used (true); false when
 * there is no room to track it. LOCK held. */
bool mock_orphan(struct mock *m, const struct chunk *c);
/* Closes the orphans nobody holds any more, giving back their capacity. */
void mock_reap(struct mock *m);
/* mock_keep.c: a file's chunks for a keeper across a restart, and a file made from them */
int mock_keep(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out);
int mock_adopt(void *ctx, struct vr_dev_export *from, uint64_t size, struct vr_dev_file **out);
/* mock_file.c */
void mock_chunk_close(struct mock *m, const struct chunk *c);

#endif
