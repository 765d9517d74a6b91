/* residency.h - the one place that decides what lives on the device: tree, files, seals. */
#ifndef VR_RESIDENCY_H
#define VR_RESIDENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "audit.h"
#include "backend.h"
#include "key.h"

struct vr_residency;
struct vr_handle;
struct vr_trust;

/*
 * Checks (verify runs, checks at open with verify_on_open, the socket's checks) that users
 * other than root (and the user who mounted, root_uid) hold at once, all together, each caller
 * waiting on a shared one counted: past it, a check is refused with EAGAIN rather than waiting.
 * Each holds a thread of the front end while it runs or waits, so the front end keeps more threads
 * than this for everyone else (fs/main.c).
 */
#define VR_RES_CHECKS_OTHERS 8

/*
 * A keeper of device memory across restarts of the daemon (docs/operations.md, "Restarts"):
 * called with no residency lock held except where said.
 */
struct vr_res_keeper {
	void *ctx;
	/* a file OWNER made was sealed: hand its memory to the keeper; 0 with the id of its
	 * names there, their number and each one's bytes (malloc'd, the residency's), or -errno
	 * (-ENOSPC, -EDQUOT: the store, or OWNER's share of it, is full; the file then does not
	 * outlive the daemon) */
	int (*store)(void *ctx, struct vr_dev_file *dev, uid_t owner, uint64_t *id,
		     uint32_t *chunks, uint64_t **lens);
	/* the memory under ID is freed (the file removed, replaced): the keeper lets it go */
	void (*drop)(void *ctx, uint64_t id, uint32_t chunks, uid_t owner);
	/* the tree changed: a new record is due (vr_res_record); called with the tree lock
	 * held, so it must only take a lock of its own */
	void (*changed)(void *ctx);
	/* waits (a bounded time) until the keeper holds a record with every change made so far */
	void (*settle)(void *ctx);
};

struct vr_res_config {
	struct vr_backend *backend; /* opened; stays the caller's */
	struct vr_keyring *keys;    /* stays the caller's */
	struct vr_audit *audit;	    /* stays the caller's */
	bool verify_on_open; /* re-check a sealed file on the device at each open for reading */
	bool list_generated; /* readdir shows verify, status and the seals too */
	bool immutable;	     /* sealed files cannot even be replaced with O_TRUNC */
	/* keys trusted to sign models (model.sig); stays the caller's; NULL: none, so every
	 * signature is refused as untrusted */
	const struct vr_trust *trust;
	bool expect_require; /* refuse to seal a file no expected digest covers */
	/* seal with the fs-verity digest alone ("sha256": null), for loads at line rate; a file
	 * an expected digest names still gets its SHA-256, when it is checked */
	bool sha256_off;
	/* what verify recomputes where the bytes live (VR_DEVICE_DIGEST_*; 0: fs-verity): with
	 * BLAKE3, every seal records its BLAKE3, taken on the device */
	unsigned device_digest;
	/* the daemon's socket, shown in status; NULL: none */
	const char *socket_path;
	/* the root directory's owner: the user who mounted, so a user's own mount is theirs */
	uid_t root_uid;
	gid_t root_gid;
	/* host memory each user's entries and attributes may take (0: VR_META_LIMIT_DEFAULT);
	 * root and the mount's owner are not limited */
	uint64_t meta_limit;
	/* NULL: none, and a restart of the daemon loses every file */
	const struct vr_res_keeper *keeper;
	/* where evicted files' bytes wait (docs/operations.md, "Sharing the GPU"): a backend
	 * over host memory whose capacity is what they may take; stays the caller's. NULL: no
	 * eviction (EOPNOTSUPP) */
	struct vr_backend *evict_store;
	bool restore_manual; /* an open or map of an evicted file gets EAGAIN, not a restore */
	struct vr_res_evict_policy {
		bool on;	      /* evict=nvml: vr_res_evict_tick() decides */
		uint64_t keep_free;   /* device bytes to leave free while other processes run */
		uint64_t margin;      /* a restore leaves KEEP_FREE + MARGIN free */
		double min_resident;  /* seconds after a load or restore before it may go */
		double restore_delay; /* seconds without pressure before restores begin */
	} evict;
};

#define VR_META_LIMIT_DEFAULT (64ULL << 20)

/* device_digest=: bits of what a check recomputes. A seal that records a BLAKE3 (a
 * checksums.blake3 named its file) has it checked whatever the bits; one without is checked
 * by its fs-verity digest whatever they say. */
#define VR_DEVICE_DIGEST_FSVERITY 1u
#define VR_DEVICE_DIGEST_BLAKE3	  2u

/* Who asks: recorded in audit records. */
struct vr_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	/* filled by the front end for open, create and flush (0 / false elsewhere): */
	pid_t tgid;  /* the caller's process (pid is the thread) */
	bool killed; /* flush: the closing process is exiting on a signal (killed mid-load) */
	/* flush: the load is given up (an import that failed, removed next: not a signal),
	 * never sealed, as a killed one */
	bool abandoned;
	/* flush: the closing process still holds another descriptor of the file open for
	 * writing (a dup: a shell's ">> f" opens, dup2s and closes), so the load goes on */
	bool holds_more;
};

enum vr_kind {
	VR_KIND_DIR,
	VR_KIND_FILE,
	VR_KIND_LINK,
	VR_KIND_SEAL,
	VR_KIND_VERIFY,
	VR_KIND_STATUS
};

struct vr_attr {
	enum vr_kind kind;
	uint64_t ino;
	mode_t mode; /* permission bits and type */
	uid_t uid;
	gid_t gid;
	uint64_t size;
	uint64_t blocks; /* 512-byte units of device memory held */
	unsigned nlink;
	struct timespec atime, mtime, ctime;
};

struct vr_statfs {
	uint64_t total_bytes, free_bytes, files;
};

/* Creates an empty tree over CFG's backend; returns 0 or -ENOMEM. */
int vr_res_new(const struct vr_res_config *cfg, struct vr_residency **out);
/* Scrubs and frees every file's device memory, then the tree. */
void vr_res_free(struct vr_residency *r);

/* All paths are absolute within the mount ("/", "/llama/w.bin"); errors are -errno. */
int vr_res_getattr(struct vr_residency *r, const char *path, struct vr_attr *out);
/* Attributes through an open handle (the file may be unlinked). */
int vr_res_fgetattr(struct vr_residency *r, struct vr_handle *h, struct vr_attr *out);
/* Opens directory PATH for listing; the handle keeps it alive. Returns 0 or -errno. */
int vr_res_opendir(struct vr_residency *r, const char *path, struct vr_handle **out);
/* The same for caller C, who may hold 64 directories open at once unless root or the mount's
 * owner (-EMFILE beyond). */
int vr_res_opendir_as(struct vr_residency *r, const char *path, const struct vr_caller *c,
		      struct vr_handle **out);
/* Calls FILL for each name in the open directory H (not "." and ".."); returns 0 or -errno. */
int vr_res_readdir(struct vr_residency *r, struct vr_handle *h,
		   int (*fill)(void *ctx, const char *name, const struct vr_attr *a), void *ctx);
/*
 * Calls FILL for the names in H after the one whose COOKIE was AFTER (0: from the first;
 * 1 and 2 are the caller's "." and "..", so the first entry's cookie is 3 or more), until FILL
 * returns non-zero: a listing resumed by cookie needs no copy of the directory, so an open
 * handle costs nothing however large its directory. Entries linked meanwhile may be left out;
 * none that stays is given twice or missed. Returns 0 or -errno.
 */
int vr_res_readdir_at(struct vr_residency *r, struct vr_handle *h, uint64_t after,
		      int (*fill)(void *ctx, const char *name, const struct vr_attr *a,
				  uint64_t cookie),
		      void *ctx);
int vr_res_mkdir(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c);
int vr_res_rmdir(struct vr_residency *r, const char *path, const struct vr_caller *c);
/* Removes a file, scrubbing and freeing its device memory once no one has it open. */
int vr_res_unlink(struct vr_residency *r, const char *path, const struct vr_caller *c);
/* Moves a file or directory; seals below it are re-signed for their new paths. FLAGS:
 * RENAME_NOREPLACE. */
int vr_res_rename(struct vr_residency *r, const char *from, const char *to, unsigned flags,
		  const struct vr_caller *c);
/*
 * Creates symbolic link PATH to TARGET, which must stay inside the mount: a
 * relative path of leading ".." (no more than the link's depth) and then
 * names, the Hugging Face cache's "../../blobs/<sha>". Others: -EPERM,
 * logged with why. Returns 0 or -errno.
 */
int vr_res_symlink(struct vr_residency *r, const char *target, const char *path,
		   const struct vr_caller *c);
/* Copies link PATH's target, NUL-terminated and cut to CAP; returns 0 or -errno. */
int vr_res_readlink(struct vr_residency *r, const char *path, char *buf, size_t cap);
/*
 * Extended attributes in the user namespace, per file or directory, not
 * covered by the seal: at most VR_XATTR_MAX of them, values of at most
 * VR_XATTR_VALUE_MAX bytes. Other namespaces: -EOPNOTSUPP. FLAGS: XATTR_CREATE
 * (1), XATTR_REPLACE (2). Returns 0 or -errno (-ENOSPC, -E2BIG, -EEXIST,
 * -ENODATA).
 */
#define VR_XATTR_MAX	   32
#define VR_XATTR_VALUE_MAX 4096
int vr_res_setxattr(struct vr_residency *r, const char *path, const char *name, const void *value,
		    size_t size, int flags);
/* Copies the value into BUF (CAP 0: only the size); *LEN its size. -ERANGE if CAP is short. */
int vr_res_getxattr(struct vr_residency *r, const char *path, const char *name, void *buf,
		    size_t cap, size_t *len);
/* The names, each NUL-terminated, into BUF (CAP 0: only the size); *LEN their size. */
int vr_res_listxattr(struct vr_residency *r, const char *path, char *buf, size_t cap, size_t *len);
int vr_res_removexattr(struct vr_residency *r, const char *path, const char *name);
int vr_res_chmod(struct vr_residency *r, const char *path, mode_t mode);
int vr_res_chown(struct vr_residency *r, const char *path, uid_t uid, gid_t gid);
int vr_res_utimens(struct vr_residency *r, const char *path, const struct timespec tv[2]);
/* The same through an open handle: for a file removed while open, which no path names; a
 * generated entry's handle is refused (-EPERM) as its path is. */
int vr_res_fchmod(struct vr_residency *r, struct vr_handle *h, mode_t mode);
int vr_res_fchown(struct vr_residency *r, struct vr_handle *h, uid_t uid, gid_t gid);
int vr_res_futimens(struct vr_residency *r, struct vr_handle *h, const struct timespec tv[2]);
/* Truncates a file being written; -EPERM for a sealed one. */
int vr_res_truncate(struct vr_residency *r, const char *path, uint64_t size,
		    const struct vr_caller *c);

/* Creates a file for writing (it must not exist). */
int vr_res_create(struct vr_residency *r, const char *path, mode_t mode, const struct vr_caller *c,
		  struct vr_handle **out);
/*
 * Opens PATH with open(2) FLAGS: files (for writing only while not yet sealed;
 * for reading, re-checked first when verify_on_open), seals, verify (runs the
 * check now) and status. Returns 0 or -errno (-EPERM, -EIO for quarantine).
 */
int vr_res_open(struct vr_residency *r, const char *path, int flags, const struct vr_caller *c,
		struct vr_handle **out);
/*
 * Whether H's bytes may be served from the host's page cache: a file opened
 * for reading while sealed (immutable, and checked at that open when
 * verify_on_open), so shared read-only mmap works. Writers, files still
 * loading and generated text answer false (direct I/O).
 */
bool vr_res_handle_cacheable(const struct vr_handle *h);
/*
 * Whether the page cache may be kept from the file's previous open for
 * reading: only when it can hold nothing but these sealed bytes (not at the
 * first such open after a load or a replacement).
 */
bool vr_res_handle_keep_cache(const struct vr_handle *h);
/* Reads up to LEN bytes at OFF into BUF; *GOT receives the count. Returns 0 or -errno. */
int vr_res_read(struct vr_residency *r, struct vr_handle *h, void *buf, size_t len, uint64_t off,
		size_t *got);
int vr_res_write(struct vr_residency *r, struct vr_handle *h, const void *buf, size_t len,
		 uint64_t off, const struct vr_caller *c);
/*
 * Staging the device lends a load through writer handle H for caller C (the
 * CUDA backend's pinned slots, host slots on the mock): the caller fills a
 * slot in place (a read(2) straight into it) and writes it with
 * vr_res_write_staged, which queues its upload and hashes it where it lies,
 * so each byte is copied once by the CPU. One user other than root holds a
 * quarter of the staging's stages at most: a load past that waits for one of
 * that user's own to end. Returns 0, -EBADF or -errno.
 */
struct vr_res_stage;
int vr_res_stage_open(struct vr_residency *r, struct vr_handle *h, const struct vr_caller *c,
		      struct vr_res_stage **out);
/* The next slot to fill (*BUF, *CAP bytes), once its last upload and hash are done. Returns 0
 * or -errno (an earlier upload failed: the load fails, never to be sealed). */
int vr_res_stage_buf(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
		     void **buf, size_t *cap, const struct vr_caller *c);
/* Writes the first LEN bytes of the slot vr_res_stage_buf gave last at OFF, as vr_res_write
 * does (the same checks, state and seal). Returns 0 or -errno. */
int vr_res_write_staged(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
			size_t len, uint64_t off, const struct vr_caller *c);
/* Waits for every upload and hash of S's slots and gives it back; an upload that failed
 * fails the load. NULL is fine. Returns 0 or that -errno. */
int vr_res_stage_close(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s,
		       const struct vr_caller *c);
/* fallocate(2)'s FALLOC_FL_KEEP_SIZE, without the kernel header. */
#define VR_FALLOC_KEEP_SIZE 0x01
/*
 * Reserves device memory for [OFF, OFF+LEN) of a file being loaded: mode 0
 * grows its size over bytes that count as unwritten (the file is incomplete
 * until they are written); VR_FALLOC_KEEP_SIZE reserves past the end without
 * changing the size. Other modes: -EOPNOTSUPP. A reservation that does not
 * fit changes nothing (-ENOSPC). Returns 0 or -errno.
 */
int vr_res_fallocate(struct vr_residency *r, struct vr_handle *h, int mode, uint64_t off,
		     uint64_t len, const struct vr_caller *c);
/* Truncates through an open handle. */
int vr_res_ftruncate(struct vr_residency *r, struct vr_handle *h, uint64_t size,
		     const struct vr_caller *c);
/* Whether H was opened for writing (a load's handle). */
bool vr_res_handle_writes(const struct vr_handle *h);
/* Whether H's file is sealed now; *INO (may be NULL) gets its inode number. */
bool vr_res_handle_sealed(struct vr_residency *r, const struct vr_handle *h, uint64_t *ino);
/*
 * Called at each close(2) of any descriptor of H. A close by the process that
 * opened H, while H is the file's only description open for writing, settles
 * the load now: sealed if complete, else INCOMPLETE, so the seal or its error
 * is there when close() returns (a later write through a descriptor still
 * open withdraws the seal). A close by a process killed by a signal marks the
 * load incomplete at once. A load that failed is removed and its error
 * returned here. Returns 0 or -errno.
 */
int vr_res_flush(struct vr_residency *r, struct vr_handle *h, const struct vr_caller *c);
/*
 * Drops the handle; never fails. The release of a file's last description
 * open for writing settles the load again if anything changed since: sealed
 * if complete, else INCOMPLETE (unsealed, writable to resume, reported by
 * verify).
 */
void vr_res_release(struct vr_residency *r, struct vr_handle *h);

/* A process asking over the socket: its credentials (SO_PEERCRED, SO_PEERGROUPS). */
struct vr_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const gid_t *groups; /* supplementary groups */
	size_t ngroups;
};

/* A sealed file's memory handed to a process: held until vr_res_lease_end. */
struct vr_lease;
/*
 * Leases sealed file PATH to P: P must be able to open it for reading under
 * the modes (search on each directory, read on the file; root may); with
 * VERIFY, its digest is re-checked on the device first. Fills EXP with
 * read-only descriptors of its memory (the caller sends and clears them).
 * While a lease lives, rm, rename over it and replacement fail with -EBUSY.
 * Audited (vram_exported, or vram_export_refused with why). Returns 0,
 * -ENOENT, -EACCES, -EISDIR, -EINVAL (not a regular file), -EAGAIN (not
 * sealed yet), -EIO (quarantined, refused, or the check failed), or the
 * backend's -errno (-EOPNOTSUPP: it cannot share memory).
 */
int vr_res_lease(struct vr_residency *r, const char *path, const struct vr_peer *p, bool verify,
		 struct vr_lease **out, struct vr_dev_export *exp);
/* The signed seal's JSON as it was at the lease (*LEN its length). */
const char *vr_lease_seal(const struct vr_lease *l, size_t *len);
/* The file's size in bytes. */
uint64_t vr_lease_size(const struct vr_lease *l);
/* Re-checks the leased file on the device now, as verify does (a mismatch quarantines it);
 * WHY gets the reason of a failure. Returns 0, -EIO (it differs or a check failed) or a
 * device's -errno (could not check). */
int vr_res_lease_verify(struct vr_residency *r, struct vr_lease *l, char *why, size_t cap);
/* Whether P may load PATH as open(2) with O_CREAT|O_TRUNC would let it (write and search on
 * the directory for a new name; for an existing file the sticky-folder and fs.protected_regular
 * rules, then write on it). Returns 0, -EACCES, -EPERM (sticky folder; a generated entry),
 * -ENOENT (no such directory) or -EISDIR. */
int vr_res_may_load(struct vr_residency *r, const char *path, const struct vr_peer *p);
/*
 * The socket's import: checks as vr_res_may_load() and, in the same hold of the tree lock,
 * creates PATH (MODE, owned by C) or replaces the existing file as an open with O_TRUNC, open
 * for writing through *OUT. A permission refusal is logged and audited
 * (vram_import_refused). Returns 0 or -errno.
 */
int vr_res_import_open(struct vr_residency *r, const char *path, mode_t mode,
		       const struct vr_peer *p, const struct vr_caller *c, struct vr_handle **out);
/* The fs.protected_regular level (0, 1, 2) imports apply; by default the kernel's, read from
 * /proc/sys/fs/protected_regular at the first import (0 when it cannot be read). */
void vr_res_set_protected_regular(struct vr_residency *r, int level);
/* Ends the lease (audited); NULL is fine. */
void vr_res_lease_end(struct vr_residency *r, struct vr_lease *l);
/*
 * Ends the lease as vr_res_lease_end() and says whether it had been revoked (-ESTALE, with
 * WHY) or not (0). STOPPING: the daemon stops while it is held, and the file's memory is then
 * left unscrubbed at the end (docs/socket.md): the lessee keeps reading what it verified.
 */
int vr_res_lease_release(struct vr_residency *r, struct vr_lease *l, bool stopping, char *why,
			 size_t cap);
/*
 * Ends every lease on file PATH (revoke), for P: its owner or root, who must be able to
 * search every folder above it. Each holder's next call on its lease answers -ESTALE; its
 * mapping stays, and reads zeros once the file is removed or replaced (no longer blocked).
 * Until then other users' maps of it are refused (-EAGAIN), so none re-pins it.
 * Audited (vram_export_revoked; vram_revoke_refused). *ENDED gets how many leases ended.
 * Returns 0, -ENOENT, -EACCES, -EPERM (not the owner), -EISDIR or -EINVAL.
 */
int vr_res_revoke(struct vr_residency *r, const char *path, const struct vr_peer *p,
		  unsigned *ended);

int vr_res_statfs(struct vr_residency *r, struct vr_statfs *out);
/*
 * Replaces the keys trusted to sign models (SIGHUP's re-read); signatures
 * that arrive from now on are checked against TRUST. The old keys stay the
 * caller's and must outlive the residency (a check may still be using them).
 */
void vr_res_set_trust(struct vr_residency *r, const struct vr_trust *trust);
/*
 * The tree as the record a keeper holds (restart): one line of JSON (folders, links, sealed files
 * with their seals and the names of their memory, in GEN) and one of its HMAC-SHA256 under the
 * record key (vr_keyring_record_mac), malloc'd into *OUT. Returns 0 or -ENOMEM.
 */
int vr_res_record(struct vr_residency *r, uint64_t gen, char **out, size_t *len);
/* Returns once a keeper holds a record of every change made so far (or after its bounded wait;
 * at once without a keeper): for changes a crash must not undo, as a permission taken away. */
void vr_res_settle(struct vr_residency *r);
/* The daemon stops to be restarted: files the keeper holds are freed unscrubbed and kept there,
 * by vr_res_free, not let go. */
void vr_res_keep_at_stop(struct vr_residency *r);

/* What a restore found. */
struct vr_res_restored {
	uint64_t generation;
	unsigned files, dirs, links;
	uint64_t bytes;
	unsigned quarantined; /* their bytes differ from their seals: kept, never served */
	unsigned refused;     /* not restored: memory missing or not what the record says */
	double seconds;
};
/*
 * Rebuilds the tree from RECORD (LEN bytes, as vr_res_record wrote it), into a residency with
 * nothing in it yet. TAKE(CTX, ID, I, OWNER) gives (once) the descriptor the keeper holds as
 * chunk I of ID, a file OWNER made, or -1. Each file's memory is adopted by the backend and its
 * fs-verity digest recomputed on the device and compared with its seal's (whose signature is
 * checked first) before the file is put in the tree; a file whose bytes differ is quarantined and
 * audited. Returns 0 (*OUT says what came back), -EBADMSG (the record's MAC fails: nothing
 * restored), -EINVAL (not a record, or of another device or backend: nothing restored, WHY says
 * which) or -ENOMEM.
 */
int vr_res_restore(struct vr_residency *r, const char *record, size_t len, uint64_t generation,
		   int (*take)(void *ctx, uint64_t id, uint32_t i, uid_t owner), void *ctx,
		   struct vr_res_restored *out, char *why, size_t cap);
/*
 * Evicts sealed file PATH (every sealed file below, for a folder) to host memory, freeing its
 * device memory and keeping its seal; with RESTORE, brings it back to the device, checked there
 * against its seal before anything is served (a mismatch is quarantined). Evicting is the
 * file's owner's, root's and the mount owner's; restoring, anyone's who may read it (an open
 * restores too). *MOVED gets how many files moved; WHY (CAP bytes) says what was left and why.
 * Returns 0, -ENOENT, -EACCES, -EPERM, -EBUSY (open or mapped), -ENOSPC (no room in host
 * memory, or on the device), -EINVAL (not sealed), -EOPNOTSUPP (no eviction here) or -errno.
 */
int vr_res_evict(struct vr_residency *r, const char *path, const struct vr_peer *p, bool restore,
		 unsigned *moved, char *why, size_t cap);

/* One look at the device's memory, for the eviction policy (NVML's numbers, fs/evict.c). */
struct vr_res_pressure {
	uint64_t total, free;  /* the device's memory, and what is free of it */
	uint64_t others_bytes; /* what other processes use */
	unsigned others;       /* how many other processes use the device */
	double now;	       /* CLOCK_MONOTONIC seconds */
};
/*
 * The policy's step (cfg.evict): while other processes would leave less than keep_free free,
 * evicts the least recently used files nobody holds open or mapped that were resident at least
 * min_resident; once no pressure was seen for restore_delay, restores what it evicted, in that
 * order, while keep_free + margin stays free. Logs each decision with its numbers. No lock held.
 */
void vr_res_evict_tick(struct vr_residency *r, const struct vr_res_pressure *s);
/* What the policy's thread does now, for status ("polling NVML every 2 s", "off: no NVML"). */
void vr_res_evict_state(struct vr_residency *r, const char *text);

/* The metrics in Prometheus' text format (no timestamps), malloc'd; returns 0 or -errno. */
int vr_res_metrics(struct vr_residency *r, char **out, size_t *len);
/* The checks UID holds now, running or waiting on a shared one (root and the user who mounted:
 * always 0, as they are not limited); UID (uid_t)-1: those of every user other than root together.
 */
unsigned vr_res_checks_held(struct vr_residency *r, uid_t uid);
/* The status JSON, malloc'd; returns 0 or -ENOMEM. */
int vr_res_status(struct vr_residency *r, char **out, size_t *len);
/* The preferred I/O size reported as st_blksize. */
#define VR_IO_SIZE (1u << 20)

#endif
