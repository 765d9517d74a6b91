/* backend.h - the device interface: one ops table and a context; mock and CUDA implement it. */
#ifndef VR_BACKEND_H
#define VR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vr_audit;

struct vr_device_info {
	char backend[16]; /* "mock" or "cuda" */
	int index;
	char name[256];
	char uuid[128];
	int cc_major, cc_minor; /* compute capability; 0.0 for the mock */
	uint64_t total_bytes;	/* what files may use in all */
	uint64_t free_bytes;	/* what is left of that */
	/* of the used bytes: memory of freed files that other processes still map, counted until
	 * they let it go (the mock sees that; 0 where a backend cannot) */
	uint64_t held_by_clients;
	/* whether the backend sees that (else the residency counts what it can: docs/socket.md) */
	bool sees_client_memory;
	bool integrated; /* shares host memory */
	bool failed;	 /* an unrecoverable device error: loads refused, checks cannot run */
};

/* One backend-specific option, passed through untouched: the backend parses its value. */
struct vr_backend_opt {
	const char *key, *value;
};

struct vr_backend_params {
	int device;		/* device=N */
	struct vr_audit *audit; /* where policy violations are recorded; may be NULL */
	/* backend-specific options (the mock's capacity, vram, fault); each backend reads the
	 * keys it knows and ignores the others, so one list serves backend=auto */
	const struct vr_backend_opt *opts;
	size_t nopts;
	/* backend=auto is only asking: "no GPU here" is news, not an error (logged as info) */
	bool probe;
	/* a keeper hands memory back at this start (vr_dev_adopt follows): what the backend
	 * finds of an earlier daemon's (the mock's chunk files) is left for the restore */
	bool restoring;
};

/*
 * One file's device memory. Each backend embeds this header first in its own
 * file struct: the file knows the device it lives on, so callers pass only the
 * file, and one process may hold files on several devices.
 */
struct vr_dev_file {
	struct vr_backend *backend; /* set by vr_dev_file_new */
	uint64_t size;		    /* current size, kept by vr_dev_resize */
	/* at the free: memory another process still maps is left unscrubbed (the daemon stops
	 * under a live lease: the lessee keeps the bytes it verified) */
	bool keep_shared;
	/* at the free: its memory is in a keeper's store (the daemon stops to be restarted):
	 * freed unscrubbed, never reused, so the next daemon finds the same bytes */
	bool kept;
	/* the host stage lent to its writer, if any (backend_stage.c): the wrappers below wait
	 * for its queued writes before any other operation on the file; set and cleared under
	 * the caller's exclusive hold of the file, as every write is */
	struct vr_dev_stage *lent;
};

/*
 * Staging a backend lends one writer of a file (the CUDA backend's pinned
 * memory; host memory where a backend lends none, backend_stage.c):
 * the writer fills a slot in place (a read(2) straight into it, a hash over
 * it), then queues the slot's upload and takes the next one, so a byte is
 * copied once by the CPU and several slots are in flight. Each backend embeds
 * this header first in its own struct.
 */
struct vr_dev_stage {
	/* set by vr_dev_stage_new: the file it uploads into (dereferenced by stage_write only:
	 * the file may be freed before the stage, removed while imported), and its backend */
	struct vr_dev_file *file;
	struct vr_backend *backend;
};

/*
 * Concurrency contract (every backend keeps it; tests/unit/test_backend.c
 * checks the cross-file part):
 *  - open and close run alone: no other call on the backend is in flight.
 *  - info may be called at any time from any thread, and never waits for
 *    device work on any file (a digest or an upload in flight).
 *  - Calls on one file are ordered by the caller: resize, write and file_free
 *    run exclusively; read, fsverity and blake3 may run at once with each other
 *    on the same file, never with an exclusive call on it.
 *  - Calls on different files may run at once from different threads. A read
 *    or digest of one file never blocks a write, read, resize or info of
 *    another; writes may wait for each other only for a bounded shared
 *    resource (the CUDA backend's staging ring), never for a digest.
 *
 * Optional operations: an op marked "optional" may be NULL; its wrapper then
 * returns the documented default (never a crash), so callers need not know.
 */
/* How a file's exported descriptors are mapped by the receiver. */
enum vr_export_kind {
	VR_EXPORT_HOST_FD = 1, /* host memory (the mock): mmap each, read-only */
	VR_EXPORT_CUDA_FD = 2, /* CUDA VMM handles: cuMemImportFromShareableHandle, POSIX fd */
};

/*
 * A file's memory as descriptors another process can map: COUNT chunks in
 * file order, chunk i covering LENS[i] bytes right after chunk i-1 (the
 * first at byte 0); together they cover the file's size, perhaps more
 * (zeros). Each descriptor reaches its own file's bytes only.
 */
struct vr_dev_export {
	enum vr_export_kind kind;
	uint32_t count;
	int *fds; /* the holder's to close (vr_dev_export_clear) */
	uint64_t *lens;
};

struct vr_backend_ops {
	const char *name;
	/* the device's memory is the host's (the mock): a read-back costs a memory copy, not a
	 * transfer over a bus */
	bool host_memory;
	int (*open)(const struct vr_backend_params *p, void **ctx);
	void (*close)(void *ctx);
	int (*info)(void *ctx, struct vr_device_info *out);
	/* allocates the backend's file struct (with the header first), empty */
	int (*file_new)(void *ctx, struct vr_dev_file **out);
	/* grows with zeroed extents, all or nothing (no copy of what is there), or shrinks,
	 * scrubbing the cut tail */
	int (*resize)(void *ctx, struct vr_dev_file *f, uint64_t size);
	int (*write)(void *ctx, struct vr_dev_file *f, uint64_t off, const void *buf, size_t len);
	int (*read)(void *ctx, struct vr_dev_file *f, uint64_t off, void *buf, size_t len);
	/* fs-verity digest computed where the bytes live */
	int (*fsverity)(void *ctx, struct vr_dev_file *f, uint8_t out[32]);
	/* optional: BLAKE3 (b3sum's) computed where the bytes live; default: the host's, streamed
	 * from read-backs */
	int (*blake3)(void *ctx, struct vr_dev_file *f, uint8_t out[32]);
	/* optional: device bytes the file holds (whole extents); default: its size */
	uint64_t (*held)(void *ctx, const struct vr_dev_file *f);
	/* optional: descriptors of the file's memory for another process to map read-only
	 * (fresh ones each call); default -EOPNOTSUPP. The file does not change size after. */
	int (*export)(void *ctx, struct vr_dev_file *f, struct vr_dev_export *out);
	/* optional: descriptors of the file's whole memory for a keeper to hold across a
	 * restart of the daemon (fresh ones each call, the caller's); default -EOPNOTSUPP */
	int (*keep)(void *ctx, struct vr_dev_file *f, struct vr_dev_export *out);
	/* optional: a file of SIZE bytes over descriptors KEEP gave before a restart, which it
	 * takes (closing them when it fails); default -EOPNOTSUPP */
	int (*adopt)(void *ctx, struct vr_dev_export *from, uint64_t size,
		     struct vr_dev_file **out);
	/* optional: staging lent to F's writer (struct vr_dev_stage); default: host staging
	 * (backend_stage.c), slots of host memory written through the write op when queued */
	int (*stage_new)(void *ctx, struct vr_dev_file *f, struct vr_dev_stage **out);
	/* the next slot to fill (*BUF, *CAP bytes), once its last upload is done */
	int (*stage_slot)(void *ctx, struct vr_dev_stage *s, void **buf, size_t *cap);
	/* queues the upload of the first LEN bytes of the slot last given to OFF of the file
	 * (inside its size); ordered before the file's later reads, digests and resizes */
	int (*stage_write)(void *ctx, struct vr_dev_stage *s, uint64_t off, size_t len);
	/* waits for every upload queued through S and gives it back; returns their first
	 * error (the staged bytes may not all be on the device) */
	int (*stage_free)(void *ctx, struct vr_dev_stage *s);
	/* scrubs (zeroes) and frees; returns the scrub's error, but frees regardless */
	int (*file_free)(void *ctx, struct vr_dev_file *f);
};

/*
 * The staging a backend lends writers (-o staging=SLOTxCOUNTxSTAGES, e.g. the
 * default 8Mx4x16): each stage is COUNT slots of SLOT bytes, and at most
 * STAGES are lent at once (files loading at once; more wait for one back).
 * Pinned memory on a GPU (SLOT x COUNT x STAGES at most), host memory on the
 * mock.
 */
struct vr_staging {
	size_t slot;
	unsigned slots, stages;
};
#define VR_STAGING_DEFAULT    "8Mx4x16"
#define VR_STAGING_SLOTS_MAX  16
#define VR_STAGING_STAGES_MAX 64

struct host_pool;
struct vr_backend {
	const struct vr_backend_ops *ops;
	void *ctx;
	struct vr_staging staging; /* from the params' "staging" (vr_backend_staging) */
	struct host_pool *pool;	   /* host staging's, where the backend lends none */
};

/* Parses a staging=SLOTxCOUNTxSTAGES value (SLOT a size such as 8M: a multiple of 4 KiB from
 * 64K to 256M; COUNT 2 to 16; STAGES 1 to 64; 16 GiB in all at most); returns 0, or -EINVAL
 * with WHY (CAP bytes) saying what is wrong. */
int vr_staging_parse(const char *text, struct vr_staging *out, char *why, size_t cap);
/* The geometry P's "staging" option gives, or the default; returns 0 or -EINVAL (logged). */
int vr_backend_staging(const struct vr_backend_params *p, struct vr_staging *out);

/*
 * The chunk growth policy both backends share, for a file that holds HELD
 * bytes and must hold NEED (more): the next chunk is as large as what the
 * file holds already (few chunks, so few descriptors, for a big file), at
 * least what is missing, at most MAX. *LEAST gets the smallest that still
 * serves, for when the slack does not fit. Multiples of the grain stay so.
 */
static inline uint64_t vr_dev_chunk_len(uint64_t held, uint64_t need, uint64_t max, uint64_t *least)
{
	uint64_t min = need - held < max ? need - held : max;
	uint64_t len = held > min ? held : min;

	*least = min;
	return len > max ? max : len;
}

/*
 * The invariant both backends keep for a file (their check_file()): chunks of
 * SUM bytes in all cover exactly the HELD bytes, inside the RESERVED range
 * (BASED: it has an address when it has a size), COUNT chunks within the
 * record's CAP, and, when SIZED (the size is settled), the SIZE within them.
 * One condition, bitwise, so an assertion over it is one branch.
 */
static inline bool vr_dev_extents_ok(uint64_t sum, uint64_t held, uint64_t reserved, bool based,
				     uint32_t count, uint32_t cap, bool sized, uint64_t size)
{
	return (sum == held) & (held <= reserved) & ((reserved == 0) | based) & (count <= cap) &
	       (!sized | (size <= held));
}

/* Opens a backend through OPS; returns 0 or the backend's -errno. */
int vr_backend_open(const struct vr_backend_ops *ops, const struct vr_backend_params *p,
		    struct vr_backend *out);
/* Closes; a zeroed struct is fine. */
void vr_backend_close(struct vr_backend *b);
/* Device name, UUID, capacity; returns 0 or -errno. */
int vr_backend_info(struct vr_backend *b, struct vr_device_info *out);
/* The value of backend option KEY in P, or NULL when it was not given. */
const char *vr_backend_opt(const struct vr_backend_params *p, const char *key);

/* A new empty file allocation on B; returns 0, -ENOMEM. */
int vr_dev_file_new(struct vr_backend *b, struct vr_dev_file **out);
/* Resizes the allocation to SIZE bytes, all or nothing; returns 0, -ENOSPC, -ENOMEM or -EIO. */
int vr_dev_resize(struct vr_dev_file *f, uint64_t size);
/* Copies LEN bytes to the device at OFF (inside the current size); returns 0, -EINVAL or -EIO. */
int vr_dev_write(struct vr_dev_file *f, uint64_t off, const void *buf, size_t len);
/* Copies LEN bytes from the device at OFF; returns 0, -EINVAL or -EIO. */
int vr_dev_read(struct vr_dev_file *f, uint64_t off, void *buf, size_t len);
/* fs-verity digest of the file's bytes (its current size), computed on the device. Returns 0 or
 * -errno. */
int vr_dev_fsverity(struct vr_dev_file *f, uint8_t out[32]);
/* Whether the file's memory is the host's (the backend's host_memory): a read-back then costs a
 * memory copy, not a transfer over a bus. */
bool vr_dev_host_memory(const struct vr_dev_file *f);
/* Plain SHA-256 of the file's bytes: host work, over read-backs in pieces. Returns 0 or -errno. */
int vr_dev_sha256(struct vr_dev_file *f, uint8_t out[32]);
/* BLAKE3 of the file's bytes (b3sum's): on the device where the backend can (its blake3 op),
 * else host work streamed from read-backs on one core. Returns 0 or -errno. */
int vr_dev_blake3(struct vr_dev_file *f, uint8_t out[32]);
/* Copies FROM's bytes into TO, which has FROM's size and may live on another backend (an
 * eviction to host memory and back), through a buffer scrubbed after. Returns 0, -EINVAL (sizes
 * differ), -ENOMEM or a backend's -errno. */
int vr_dev_copy(struct vr_dev_file *from, struct vr_dev_file *to);
/* Device bytes the file holds (whole extents). */
uint64_t vr_dev_held(const struct vr_dev_file *f);
/* Descriptors of F's memory for another process (see struct vr_dev_export); returns 0,
 * -EOPNOTSUPP (the backend cannot share its memory), -ENOMEM or -EMFILE. */
int vr_dev_export(struct vr_dev_file *f, struct vr_dev_export *out);
/* Closes an export's descriptors and frees its arrays; a zeroed struct is fine. */
void vr_dev_export_clear(struct vr_dev_export *e);
/* Whether B can hand its files' memory to a keeper and adopt it back (keep and adopt). */
bool vr_backend_can_keep(const struct vr_backend *b);
/* Descriptors of F's whole memory for a keeper to hold across a restart (see the op); returns
 * 0, -EOPNOTSUPP (the backend cannot) or -errno. */
int vr_dev_keep(struct vr_dev_file *f, struct vr_dev_export *out);
/* A file of SIZE bytes on B over FROM (what vr_dev_keep gave a daemon before), whose
 * descriptors it takes in any case; returns 0, -EOPNOTSUPP, -EINVAL (they do not make such a
 * file), -ENOSPC or -errno. */
int vr_dev_adopt(struct vr_backend *b, struct vr_dev_export *from, uint64_t size,
		 struct vr_dev_file **out);
/* Staging for F's writer (struct vr_dev_stage): the backend's pinned slots, or host memory
 * where it lends none; returns 0, -ENOMEM or -errno. */
int vr_dev_stage_new(struct vr_dev_file *f, struct vr_dev_stage **out);
/* The next slot to fill, once its previous upload is done; returns 0 or -errno (an upload
 * failed). */
int vr_dev_stage_slot(struct vr_dev_stage *s, void **buf, size_t *cap);
/* Queues the upload of LEN bytes of the slot last given to OFF of the stage's file; returns
 * 0, -EINVAL or -EIO. */
int vr_dev_stage_write(struct vr_dev_stage *s, uint64_t off, size_t len);
/* Waits for the stage's uploads and gives it back; NULL is fine. Returns 0 or their first
 * -errno. */
int vr_dev_stage_free(struct vr_dev_stage *s);
/* backend_stage.c, for vr_backend_open and close: the host staging's pool of slots and count
 * of stages lent (NULL is fine to free). */
int vr_host_pool_new(const struct vr_staging *g, struct host_pool **out);
void vr_host_pool_free(struct host_pool *p);
/* backend_stage.c, for the wrappers: waits for the writes queued through F's host stage, if
 * any; detach also cuts the stage from F (its later writes fail with -ESTALE), before F is
 * freed. */
void vr_dev_stage_drain(struct vr_dev_file *f);
void vr_dev_stage_detach(struct vr_dev_file *f);
/* Scrubs and frees; NULL is fine. Returns 0 or the scrub's -errno (memory is freed anyway). */
int vr_dev_file_free(struct vr_dev_file *f);

#endif
