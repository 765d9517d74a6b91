/* res_private.h - the residency's structures and internal calls, shared by its files only. */
#ifndef VR_RES_PRIVATE_H
#define VR_RES_PRIVATE_H

#include "manifest.h"
#include "residency.h"
#include "seal.h"
#include "text.h"
#include "vnames.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

/*
 * Locks, and what each field below is guarded by:
 *  [T]  the tree lock, r->lock: the tree's shape, node metadata, states,
 *       reference counts and the counters. Held briefly, never across device
 *       work or while waiting for an IO lock.
 *  [IO] the file's IO lock, n->io (a rwlock): its device memory. Writes,
 *       resizes, sealing and freeing hold it exclusively; reads and digests
 *       shared.
 *  [C]  set at creation and constant after.
 * Order: IO before T.
 */

/* Inode numbers of generated entries, derived from their owner's. */
#define INO_SEAL    (1ULL << 62)
#define INO_VERIFY  (1ULL << 61)
#define INO_STATUS  2ULL
#define INO_METRICS 3ULL

enum file_state {
	ST_NONE,	/* a directory, or a file not yet in the tree */
	ST_WRITING,	/* open for writing, not sealed yet */
	ST_SEALED,	/* immutable, seal signed */
	ST_QUARANTINED, /* failed a check: reads fail with EIO */
	ST_REFUSED,	/* not sealed: a publisher's digest names other bytes, or (expect=require)
			 * none covers it; reads fail with EIO, a replacement may follow */
	ST_FAILED,	/* the load failed; removed at the writer's close */
	ST_INCOMPLETE,	/* its last writer left it partial: unsealed, writable to resume */
	ST_REMOVED,	/* out of the tree, device memory freed; handles get ESTALE */
};

/* A byte range [start, end) of a file that was written, not merely reserved. */
struct res_range {
	uint64_t start, end;
};

/* One user.* extended attribute. */
struct res_xattr {
	char *name;
	void *value;
	size_t size;
};

struct vr_node {
	bool is_dir;			 /* [C] */
	uid_t meta_uid;			 /* [C] who its metadata is counted to: its creator */
	uint64_t meta_bytes;		 /* [T] what it counts there (meta.c) */
	char *target;			 /* [C] a symbolic link's target; NULL otherwise */
	struct res_xattr *xattrs;	 /* [T] */
	size_t nxattrs;			 /* [T] */
	char *name;			 /* [T] a detached node's full path */
	struct vr_node *parent;		 /* [T] NULL once unlinked (and for the root) */
	struct vr_node *children, *next; /* [T] a directory's entries, newest first */
	struct vr_node *prev;		 /* [T] so an entry leaves the list in O(1) */
	/* a directory's name index: INDEX_SIZE buckets of entries chained by HNEXT, so a
	 * lookup costs the same in a directory of 100,000 entries as of 10 */
	struct vr_node **index;		/* [T] NULL: none (yet, or no memory): scan */
	uint32_t index_size, nchildren; /* [T] */
	uint32_t nsubdirs;		/* [T] entries that are directories: its nlink - 2 */
	/* a listing's place: each entry's stamp when it was linked into its directory, from
	 * the directory's counter, so CHILDREN (newest first) runs in falling stamps */
	uint64_t dpos;			     /* [T] */
	uint64_t next_dpos;		     /* [T] a directory's last stamp given */
	struct vr_node *hnext;		     /* [T] */
	uint64_t hash;			     /* [T] of NAME, as linked */
	uint64_t ino;			     /* [C] */
	mode_t mode;			     /* [T] */
	uid_t uid;			     /* [T] */
	gid_t gid;			     /* [T] */
	struct timespec atime, mtime, ctime; /* [T] */
	unsigned refs;			     /* [T] 1 for the tree while linked, 1 per handle */
	/* files */
	pthread_rwlock_t io;
	enum file_state state; /* [T] changed only by res_set_state() */
	int load_err;	       /* [T] why a load failed: a negative errno */
	uint64_t size;	       /* [T], and changed only with IO held exclusively */
	unsigned writers;      /* [T] handles open for writing */
	unsigned leases;       /* [T] live exports (socket maps): no rm or replacement meanwhile */
	struct vr_lease *lease_list; /* [T] those leases, to end them (vr_res_revoke) */
	bool keep_shared; /* [T] leased when the daemon stopped: its memory is left unscrubbed */
	unsigned revoked; /* [T] revoked leases their holders have not released yet */
	bool gated;	  /* [T] revoked: other users' maps wait for its replacement or removal */
	uint64_t client_bytes;	 /* [T] its memory, removed, counted in r->client_bytes for them */
	struct vr_dev_file *dev; /* [IO] */
	uint64_t held;		 /* [T] device bytes dev holds, as of the last resize */
	struct vr_seal *seal;	 /* [T] published with the state ST_SEALED */
	char *seal_json;	 /* [T] the signed seal's text */
	char *check_why;      /* [T] why it is REFUSED, or QUARANTINED against an expected digest */
	bool awaiting_source; /* [T] REFUSED only for want of a source (expect=require) */
	/* [T] the last check of its bytes against what a source lists that a seal's digest cannot
	 * answer (shards, BLAKE2b): the source's serial, its entry, the bytes' fs-verity digest,
	 * and the verdict (why, when they differ) */
	uint64_t bytes_serial;
	const struct vr_manifest_entry *bytes_key;
	uint8_t bytes_fsv[VR_DIGEST_SIZE];
	bool bytes_ok;
	char *bytes_why;
	struct res_source *source; /* [T] what it states, while a sealed model.sig or SHA256SUMS */
	/* loading */
	pid_t load_tgid;	     /* [T] the process loading it; others get ETXTBSY */
	uint64_t gen;		     /* [IO] bumped by every write and resize */
	uint64_t reserved_to;	     /* [IO] fallocate KEEP_SIZE: device memory held past size */
	bool reserve_failed;	     /* [IO] a fallocate failed: an empty result is no load */
	struct res_range *written;   /* [IO] written ranges, sorted and merged */
	size_t nwritten, capwritten; /* [IO] */
	uint64_t sealed_gen;	     /* [IO] the GEN the current seal describes */
	bool killed;		     /* [IO] a closer was killed by a signal (until resumed) */
	bool abandoned;		     /* [IO] KILLED by an import given up, not by a signal */
	/* opened to resume an incomplete load (not with O_TRUNC): until the resume adds bytes
	 * past RESUME_BASE (the bytes written then, lowered by a cut), its closes leave it
	 * incomplete, for RESUME_WHY while GEN is still RESUME_GEN, never sealing the partial
	 * bytes (issue 20). Set under T at the resume, while no writer is open to change GEN
	 * or the written ranges; then RESUMING is written under IO and T, RESUME_BASE under
	 * IO. */
	bool resuming;
	uint64_t resume_gen;
	uint64_t resume_base;
	const char *resume_why; /* [T] */
	/* the plain SHA-256 taken from the writers' buffers while writes come in order, so
	 * sealing needs no read-back: [0, hashed_to) is fed; hash_lost once they did not */
	struct vr_sha256_async *wsha; /* [IO] hashing on its own thread, beside the upload */
	uint64_t hashed_to;	      /* [IO] */
	bool hash_lost;		      /* [IO] */
	uint64_t hash_epoch; /* [IO] counts the WSHAs gone (res_hash_drop): a stage's tickets */
	bool cache_ok;	     /* [T] the kernel's page cache holds only these sealed bytes */
	/* [T] a check at open (verify_on_open) passed and was audited since it was sealed: later
	 * passing checks at open write no record until its state changes or a check fails */
	bool open_audited;
	const char *incomplete_why; /* [T] why, while ST_INCOMPLETE */
	/* [T] the names its memory has in the keeper's store (record.c): 0 when not there */
	uint64_t keep_id;
	uint32_t keep_chunks;
	uint64_t *keep_lens; /* [T] each one's bytes */
	/* eviction (evict.c): while EVICTED, DEV is a file of the host store (cfg.evict_store)
	 * holding its sealed bytes, and HELD is 0; set with IO held exclusively */
	bool evicted;		/* [T] */
	bool evicted_by_policy; /* [T] the policy's to restore */
	uint64_t evict_seq;	/* [T] the order of evictions, for the policy's restores */
	double used_at;		/* [T] its last open or map (CLOCK_MONOTONIC seconds) */
	double resident_since;	/* [T] sealed or restored then */
};

struct vr_handle {
	struct vr_node *node;	 /* [C] NULL for generated text */
	bool writer;		 /* [C] */
	bool dirty;		 /* wrote or resized through this handle (its own calls only) */
	bool cacheable;		 /* [C] opened for reading while sealed: its bytes cannot change */
	bool keep_cache;	 /* [C] and the page cache may be kept from the last such open */
	struct vr_caller opener; /* [C] who opened it (tgid: its process), for audits at release */
	bool killed;		 /* [IO] a close of it came from a process killed by a signal */
	char *text;		 /* [C] generated text */
	size_t len;		 /* [C] */
	struct vr_attr attr;	 /* [C] generated text: the entry's attributes at the open */
	int tail_err;		 /* [C] returned by the read after the text (verify's failure) */
	bool dir_counted;	 /* [C] a directory handle counted to OPENER (res_dirs_take) */
};

/*
 * res_check_moved's threads: RES_BG_CHECKS_MAX at once, at most
 * RES_BG_CHECKS_PER_USER of them one user's, so one user's storm of renames
 * leaves threads for the others (past either, a rename is hashed on its
 * caller's thread). A slot with N == 0 is free.
 */
#define RES_BG_CHECKS_MAX      4
#define RES_BG_CHECKS_PER_USER 2
struct res_bg_user {
	uid_t uid;
	unsigned n;
};
/* Takes a place for UID in table BY of N users where TOTAL_CAP places in all and USER_CAP of
 * UID's allow (and the table has room for a new user): true, counted; false: none. */
bool res_share_take(struct res_bg_user *by, int n, unsigned total_cap, uid_t uid,
		    unsigned user_cap);
/* Takes a thread for UID's check where the limits allow: true, counted in BY; false: none. */
bool res_bg_admit(struct res_bg_user by[RES_BG_CHECKS_MAX], uid_t uid);
/* Gives back UID's thread. */
void res_bg_leave(struct res_bg_user by[RES_BG_CHECKS_MAX], uid_t uid);
/* The same over a table of N. */
void res_bg_leave_n(struct res_bg_user *by, int n, uid_t uid);

struct vr_residency {
	pthread_mutex_t lock; /* the tree lock: res_lock(), res_unlock(), res_wait() */
	/* debug builds: the thread holding LOCK (0: none), for res_held() */
	_Atomic unsigned long lock_owner;
	struct vr_res_config cfg;				  /* [C] */
	struct vr_device_info dev;				  /* [C] the device at mount */
	struct vr_node *root;					  /* [C] */
	uint64_t next_ino;					  /* [T] */
	uint64_t files, sealed, quarantined, incomplete, refused; /* [T] res_set_state() alone */
	uint64_t leases, exports;				  /* [T] live, and ever made */
	struct res_metrics *metrics;				  /* [T] counters since mount */
	struct res_verify_run *runs; /* [T] verifies running now, each shared by its joiners */
	unsigned bg_checks;	     /* [T] res_check_moved's checks running (threads or not) */
	pthread_cond_t bg_done;	     /* signalled as the last of them ends */
	struct res_bg_user bg_by[RES_BG_CHECKS_MAX]; /* [T] their threads, by user */
	/* stages held by loads (stage.c), by user: one user (not root) holds a quarter of the
	 * staging's stages at most, so loads stalled on a slow source (a user's own FUSE file
	 * that never answers) leave stages for everyone else */
	struct res_bg_user stage_by[VR_STAGING_STAGES_MAX]; /* [T] */
	pthread_cond_t stage_back;			    /* a stage of STAGE_BY was closed */
	/* metadata's host memory per user (meta.c) */
	struct res_meta_user *meta; /* [T] */
	size_t nmeta, capmeta;	    /* [T] */
	uint64_t meta_bytes;	    /* [T] all users' */
	int protected_regular;	    /* [T] fs.protected_regular + 1 imports apply; 0: not read */
	/* [T] removed files' memory held by revoked leases' holders, where the backend cannot see
	 * it (CUDA): counted used until they release the leases */
	uint64_t client_bytes;
	/* [T] the checks users other than root hold now, runs and joiners (checks.c): at most
	 * VR_VERIFY_PER_UID a user, VR_RES_CHECKS_OTHERS in all, so distinct users fit */
	struct res_check_slot {
		uid_t uid;
		unsigned held; /* 0: a free entry */
	} slots[VR_RES_CHECKS_OTHERS];
	unsigned slots_held; /* [T] their sum */
	bool keeping;	     /* [T] stopping to be restarted: the keeper's files stay there */
	struct vr_res_restored restored; /* [T] what the last restore brought back */
	struct res_evictions {
		uint64_t files, bytes;		     /* evicted now */
		uint64_t seq;			     /* the last evict_seq given */
		uint64_t evicted, restored, refused; /* since the mount: moves, and failed ones */
		double last_pressure;		     /* the policy last saw pressure then */
		bool stuck_said;		     /* "nothing may go" said for this pressure */
		char policy_state[160]; /* vr_res_evict_state(): what the policy does */
	} ev;				/* [T] */
};

/*
 * The tree lock, taken and dropped only through these, so a debug build can
 * check that a function annotated [T] runs with it held: res_held(r) asserts
 * that the calling thread is its owner, and res_io_held(n) that file N's IO
 * lock is held exclusively (by someone: a rwlock keeps no owner). A wrong
 * lock is a test failure, not a comment. Release builds (NDEBUG) check
 * nothing and the wrappers are the plain calls.
 */
static inline unsigned long res_self(void)
{
	return (unsigned long)pthread_self();
}

static inline void res_lock(struct vr_residency *r)
{
	pthread_mutex_lock(&r->lock);
#ifndef NDEBUG
	atomic_store_explicit(&r->lock_owner, res_self(), memory_order_relaxed);
#endif
}

static inline void res_unlock(struct vr_residency *r)
{
#ifndef NDEBUG
	atomic_store_explicit(&r->lock_owner, 0, memory_order_relaxed);
#endif
	pthread_mutex_unlock(&r->lock);
}

/* pthread_cond_wait() on the tree lock: it is dropped while waiting */
static inline void res_wait(struct vr_residency *r, pthread_cond_t *cond)
{
#ifndef NDEBUG
	atomic_store_explicit(&r->lock_owner, 0, memory_order_relaxed);
#endif
	pthread_cond_wait(cond, &r->lock);
#ifndef NDEBUG
	atomic_store_explicit(&r->lock_owner, res_self(), memory_order_relaxed);
#endif
}

#ifndef NDEBUG
#define res_held(r)                                                                                \
	assert(atomic_load_explicit(&(r)->lock_owner, memory_order_relaxed) == res_self() &&       \
	       "the tree lock is held")
#else
#define res_held(r) ((void)(r))
#endif

#ifndef NDEBUG
/* Whether N's IO lock is held exclusively: a shared try fails only then. */
static inline bool res_io_exclusive(struct vr_node *n)
{
	if (pthread_rwlock_tryrdlock(&n->io) != 0)
		return true;
	pthread_rwlock_unlock(&n->io);
	return false;
}
#define res_io_held(n) assert(res_io_exclusive(n) && "the file's IO lock is held exclusively")
#else
#define res_io_held(n) ((void)(n))
#endif

struct res_vname;

/* What metrics counts since the mount (report.c writes it out). [T] */
#define RES_VERIFY_BUCKETS 11
struct res_metrics {
	uint64_t loads, seals, quarantines;
	uint64_t verified, verify_failed, verify_errors; /* checks passed, differed, not run */
	uint64_t verify_le[RES_VERIFY_BUCKETS];		 /* checks taking <= each bound */
	double verify_seconds;				 /* their sum */
};
extern const double res_verify_bounds[RES_VERIFY_BUCKETS];
/* Counts one check that took SECONDS with result RET (0, -EBADMSG or -EACCES: failed; other:
 * not run). [T] */
void res_count_check(struct vr_residency *r, int ret, double seconds);
int res_metrics_text(struct vr_residency *r, char **text, size_t *len);

/* What a path names. */
struct res_lookup {
	enum vr_kind kind;
	struct vr_node *node;	     /* the node, or for a generated entry its owner */
	const struct res_vname *gen; /* the generated entry, when kind is one */
	struct vr_node *parent;	     /* directory holding the last component */
	const char *last;	     /* last component (within the path) */
	size_t last_len;
};

/* tree.c: nodes, references, lookup, attributes, states */
void res_now(struct timespec *ts);
struct vr_node *res_child(const struct vr_node *dir, const char *name);
/* A new node of C's, its metadata counted to C (-EDQUOT past the limit). Returns 0 or -errno. [T]
 */
int res_node_new(struct vr_residency *r, const char *name, bool is_dir, mode_t mode,
		 const struct vr_caller *c, struct vr_node **out);
/* Frees N, uncounting its metadata ([T] then) unless R is NULL (the whole tree going). */
void res_node_destroy(struct vr_residency *r, struct vr_node *n);

/* meta.c: metadata's host memory per user. A folder or a link counts RES_META_NODE (a link its
 * target too), a file RES_META_NODE + RES_META_SEAL, an attribute RES_META_XATTR with its name and
 * value; the counts go to the entry's creator. */
#define RES_META_NODE 1024
/* what a file counts more: its seal (two paths of up to 4 KiB each) and the seal's text */
#define RES_META_SEAL  (sizeof(struct vr_seal) + 1024)
#define RES_META_XATTR 64
uint64_t res_meta_limit(const struct vr_residency *r);
/* Counts BYTES more to N's creator: -EDQUOT past the limit (not for root or the mount's owner),
 * -ENOMEM. [T] */
int res_meta_add(struct vr_residency *r, struct vr_node *n, uint64_t bytes);
/* Counts BYTES less (at most what N counts). [T] */
void res_meta_sub(struct vr_residency *r, struct vr_node *n, uint64_t bytes);
void res_meta_free(struct vr_residency *r);
/* Directory handles a user other than root or the mount's owner may hold open at once: libfuse
 * keeps a buffer of the kernel's request size (up to 1 MiB) for each until it is closed. */
#define RES_DIRS_PER_USER 64
/* Seals one rename of a folder by a user other than root or the mount's owner may re-sign
 * (about 50 ms under the tree lock on this 2-core machine): EXDEV beyond, so mv copies. */
#define RES_RENAME_SEALS_MAX 1024
/* Counts one more open directory handle of UID's: -EMFILE past the limit. [T] */
int res_dirs_take(struct vr_residency *r, uid_t uid);
void res_dirs_give(struct vr_residency *r, uid_t uid);
void res_node_put(struct vr_residency *r, struct vr_node *n);
int res_node_path(const struct vr_node *n, char *buf, size_t cap);
size_t res_path_len(const struct vr_node *dir);
size_t res_depth(const struct vr_node *dir);
/* Whether P has all of BITS (4 read, 2 write, 1 search) on N, by its mode as open(2) decides;
 * and whether P could open N for reading: search on every directory above it, read on it. [T] */
bool res_may(const struct vr_node *n, const struct vr_peer *p, unsigned bits);
bool res_may_read(const struct vr_node *n, const struct vr_peer *p);
/*
 * What symbolic link LINK leads to inside the tree, following links on the
 * way (at most 40, as the kernel): *OUT, a file or a directory. With P, as P
 * would: -EACCES at a directory on the way P may not search. [T] Returns 0,
 * -ENOENT (nothing there), -ENOTDIR (also a target ending in '/' that leads to
 * a file), -ELOOP or -EACCES.
 */
int res_follow(struct vr_residency *r, const struct vr_node *link, const struct vr_peer *p,
	       struct vr_node **out);
void res_link_child(struct vr_node *dir, struct vr_node *n);
void res_unlink_child(struct vr_node *n);
void res_touch_dir(struct vr_residency *r, struct vr_node *dir);
int res_resolve(struct vr_residency *r, const char *path, struct res_lookup *l);
/* The same as P would: -EACCES at the first directory on the way P may not search, before
 * anything below it is looked at (as open(2) answers). [T] */
int res_resolve_as(struct vr_residency *r, const char *path, const struct vr_peer *p,
		   struct res_lookup *l);
void res_attr_of_node(const struct vr_node *n, struct vr_attr *a);
void res_attr_of_text(uint64_t ino, const struct vr_node *like, size_t size, struct vr_attr *a,
		      enum vr_kind kind);
void res_set_state(struct vr_residency *r, struct vr_node *n, enum file_state st);
struct vr_handle *res_handle_new(struct vr_node *n);
int res_text_handle(char *text, size_t len, int tail_err, struct vr_handle **out);
void res_release_device(struct vr_residency *r, struct vr_node *n, const char *path,
			const struct vr_caller *c);
void res_detach_file(struct vr_residency *r, struct vr_node *n);
void res_scrub_removed(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c);
int res_audit_must(struct vr_residency *r, const char *event, const char *path,
		   const struct vr_caller *c, const char *outcome, const uint8_t *digest,
		   const char *detail);
void res_audit(struct vr_residency *r, const char *event, const char *path,
	       const struct vr_caller *c, const char *outcome, const uint8_t *digest,
	       const char *detail);
void res_refused(const char *op, const char *path, int err);

/* vnames.c: the generated entries */
int res_vname_find(struct vr_node *dir, bool at_root, const char *name, size_t len,
		   struct res_lookup *l);
void res_vname_attr(const struct res_lookup *l, struct vr_attr *a);
/* A listing's cookies: 1 and 2 are "." and "..", then the directory's generated entries, then
 * each entry (stamp << 4) and what is generated beside it (+ 1 + its index). */
#define RES_COOKIE_FIRST 3
#define RES_COOKIE_SHIFT 4
int res_vname_list(struct vr_residency *r, struct vr_node *dir, uint64_t after,
		   int (*fill)(void *ctx, const char *name, const struct vr_attr *a,
			       uint64_t cookie),
		   void *ctx);
int res_vname_open(struct vr_residency *r, const struct res_lookup *l, const struct vr_caller *c,
		   struct vr_handle **out);

/* tree.c: the parent of a path to create, its new name checked; the last name copied */
int res_resolve_new(struct vr_residency *r, const char *path, bool is_file, struct res_lookup *l);
void res_last_name(const struct res_lookup *l, char out[256]);

/* expect_rename.c: a rename's seals, re-signed for the new place before anything moves */
struct res_restage;
struct res_restage_list {
	struct res_restage *v;
	size_t n, cap;
};
/*
 * Stages a new seal for every sealed file at or below N as if N were named
 * NAME in PARENT (the tree is left as it is), each checked against the sources
 * that would cover it there. [T] Returns 0 or -ENOMEM; L is freed by
 * res_restage_free() either way.
 */
int res_restage_at(struct vr_residency *r, struct vr_node *n, struct vr_node *parent, char *name,
		   struct res_restage_list *l);
/* Once N moved: puts the staged seals in place (allocating nothing) and audits each. [T] */
void res_restage_commit(struct vr_residency *r, struct res_restage_list *l,
			const struct vr_caller *c);
void res_restage_free(struct res_restage_list *l);
/* Re-reads the sources at or below N after N moved. No lock held. */
void res_reload_sources(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c);
/* expect_apply.c: after N moved, the files at or below it whose seals lack a digest a source
 * there states (shards, BLAKE2b, BLAKE3; SHA-256 under sha256=off) are hashed and checked (a
 * mismatch quarantined, audited) on a thread of their own, RES_BG_CHECKS_MAX at once (then on
 * the caller's). No lock held. */
void res_check_moved(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c);
/* Waits for those threads to end (the residency is being freed). */
void res_bg_drain(struct vr_residency *r);

/* export.c: leases */
/* The device's info as vr_backend_info(), with the memory of removed files that revoked
 * leases' holders still hold counted used where the backend cannot see it. */
int res_device_info(struct vr_residency *r, struct vr_device_info *out);
/* -EBUSY (logged and audited) when file N is leased, else 0: OP ("rm", ...) must not free or
 * replace memory a process has mapped. [T] */
int res_leased(struct vr_residency *r, const struct vr_node *n, const char *op, const char *path,
	       const struct vr_caller *c);

/* load.c: the writer's half of opening (drops the tree lock, held on entry) */
/* load.c: creates file PATH (its folder found and writable: the caller's check) on *DEV (taken:
 * NULL after), its relative path into REL; returns 0 or -errno. [T] */
int res_create_held(struct vr_residency *r, const char *path, mode_t mode,
		    const struct vr_caller *c, struct vr_dev_file **dev, char rel[VR_SEAL_PATH_MAX],
		    struct vr_handle **out);
int res_open_writer(struct vr_residency *r, struct vr_node *n, int flags, const struct vr_caller *c,
		    struct vr_handle **out);
/* load.c: the bytes of N actually written (not only reserved), and why N is not complete
 * (NULL: complete) [IO] */
uint64_t res_written_total(const struct vr_node *n);
const char *res_incomplete_reason(const struct vr_node *n);
/* load.c: records a failed load (ERR): the file is removed at the writer's close. [IO] */
void res_load_failed(struct vr_residency *r, struct vr_node *n, int err, const struct vr_caller *c);
/* load.c: stops and frees N's in-line hash (its bytes lent by a stage no longer in use). IO
 * held exclusively. */
void res_hash_drop(struct vr_node *n);

/*
 * stage.c: pinned staging the device lends a writer (vr_res_stage_open). A
 * slot's bytes may be on the hash thread's queue after its write returned
 * (hashed in place): LENT says which hasher (by N's HASH_EPOCH) has which
 * piece of which slot, so the slot is handed out again only after it.
 */
#define RES_STAGE_LENT 16
struct vr_res_stage {
	struct vr_dev_stage *dev;
	uid_t uid; /* whose: counted in the residency's STAGE_BY until closed */
	void *cur; /* the slot handed out last */
	size_t cap;
	struct {
		const void *buf;
		uint64_t ticket, epoch;
	} lent[RES_STAGE_LENT];
};
/* Notes that SLOT's bytes are the hasher's piece TICKET. IO held exclusively. */
void res_stage_lend(struct vr_node *n, struct vr_res_stage *s, const void *slot, uint64_t ticket);

/* close.c: the writer's half of vr_res_release() */
void res_release_writer(struct vr_residency *r, struct vr_handle *h);

/* verify.c: checks */
/* Checks a user other than root holds at once, runs and joiners alike (checks.c). */
#define VR_VERIFY_PER_UID 2
struct res_verify_run;
/*
 * Re-checks sealed file N now (signature, then its digest on the device), as
 * verify does: a mismatch quarantines and audits. WHY gets the reason of a
 * failure. Returns 0, -EBADMSG (differs), -EACCES (a source above it fails),
 * -EAGAIN (not sealed), -ENOENT (removed) or a device's -errno (not checked).
 * AT_OPEN: the check of an open (verify_on_open), whose pass is audited once per sealed
 * state (n->open_audited). N referenced by the caller; no lock held.
 */
int res_check_node(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		   bool at_open, char *why, size_t cap);
/* The verify report of DIR (referenced), checking every file below it the caller may read,
 * now, unshared: res_verify_text's worker. */
int res_run_verify(struct vr_residency *r, struct vr_node *dir, const struct vr_caller *c,
		   char **text, size_t *len, int *tail_err);

/* checks.c: checks shared while they run, and held to the limits */
/*
 * The verify report of DIR: shared with a verify of DIR by the same user and group running
 * now, else run (res_run_verify). Counted in the caller's limits: -EAGAIN at once past them.
 */
int res_verify_text(struct vr_residency *r, struct vr_node *dir, const struct vr_caller *c,
		    char **text, size_t *len, int *tail_err);
/*
 * res_check_node for the socket: shared with a check of N already running (its result is
 * this caller's), and counted in the caller's limits with the verifies (-EAGAIN, WHY saying
 * so, when a user other than root holds VR_VERIFY_PER_UID checks already, or users other
 * than root VR_RES_CHECKS_OTHERS).
 */
int res_check_shared(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		     char *why, size_t cap);
/* The same for an open with verify_on_open (PATH: N's, for the log): 0, -EAGAIN past the
 * limits (said in the log), or the check's error. */
int res_check_open(struct vr_residency *r, struct vr_node *n, const char *path,
		   const struct vr_caller *c);

/* report.c: texts */
/* expect.c: expected digests (sources: model.sig, SHA256SUMS, checksums.blake3) */
/* What a sealed source file states. */
struct res_source {
	enum vr_manifest_kind kind;
	struct vr_manifest *m; /* NULL: refused, WHY says why */
	char why[VR_WHY_MAX];
	uint64_t serial; /* unique to this reading of the source (a node's bytes verdict) */
};
/* What the sources covering a file's path say of it. */
struct res_expect {
	bool covered;		       /* a source names it (with these bytes, when given) */
	bool mismatch;		       /* a source names it with other bytes */
	bool ignored;		       /* a signature says it is not part of the model */
	bool oms_scope;		       /* a valid signature's directory is above it */
	bool oms_covered;	       /* ... and one names it (with these bytes, when given) */
	const struct vr_node *oms_src; /* the nearest valid signature above it */
	bool refused_scope;	       /* a refused source's directory is above it */
	const struct vr_node *scope;   /* the nearest valid source above it */
	const struct vr_node *src;     /* the source that differs, else the nearest that names it */
	const uint8_t *want;	       /* the digest SRC states */
	bool want_blake3; /* ... a BLAKE3 (SRC is a checksums.blake3), else a SHA-256 */
	/* a checksums.blake3 that may vouch for it names it, and its BLAKE3 is not known yet
	 * (not given): that source is left out until it is */
	bool need_blake3;
	/* a source that may vouch for it names it with a SHA-256, and its SHA-256 is not known
	 * (not given: sealed under sha256=off): counted as covering it until the caller takes
	 * the SHA-256 and asks again. A BLAKE3, shards or BLAKE2b source needs none */
	bool need_sha256;
	/* a source whose owner may not vouch for this file names other bytes: reported by
	 * verify, never acted on */
	const struct vr_node *disputed;
	/* a source that may vouch for it lists what only its bytes can answer (shards,
	 * BLAKE2b), and no verdict for these bytes is known: BYTES_SRC's BYTES_ENTRY is to be
	 * checked (res_bytes_*), then asked again */
	bool need_bytes;
	const struct vr_node *bytes_src;
	const struct vr_manifest_entry *bytes_entry;
	/* SRC's verdict came from the bytes (WANT is NULL); BYTES_WHY: what differs */
	bool want_bytes;
	char bytes_why[VR_WHY_MAX];
};

/* expect_bytes.c: a file's bytes against a source's shards or BLAKE2b, on the host */

/* What one check of a file's bytes needs, copied from its source under the tree lock. */
struct res_bytes_job {
	uint64_t serial;		     /* the source's */
	const struct vr_manifest_entry *key; /* its entry, as a node's verdict names it */
	struct vr_manifest m;		     /* its hash and shard_size only */
	struct vr_manifest_entry e;	     /* the entry, its shards copied */
	uint8_t fsv[VR_DIGEST_SIZE];	     /* the bytes' fs-verity digest (their seal's) */
};
/* Copies what E needs checked for bytes whose fs-verity digest is FSV into J; 0 or -ENOMEM
 * (J then holds nothing to free). [T] */
int res_bytes_job_take(const struct res_expect *e, const uint8_t *fsv, struct res_bytes_job *j);
/* The same for source S's entry EN. [T] */
int res_bytes_job_of(const struct res_source *s, const struct vr_manifest_entry *en,
		     const uint8_t *fsv, struct res_bytes_job *j);
/* A listed name that is a link, to a sealed file, under a statement only bytes answer: the
 * link's verdict is kept on LINK (its bytes_* fields), keyed by TARGET's fs-verity digest. */
struct res_link_job {
	struct vr_node *link, *target; /* referenced */
	struct res_bytes_job j;
};
struct res_link_jobs {
	struct res_link_job *v;
	size_t n, cap;
};
/* The links verify's lines for DIR will follow as P, whose targets' bytes a shards or BLAKE2b
 * statement lists: into JOBS (expect_lines.c). [T] */
void res_expect_link_jobs(struct vr_residency *r, const struct vr_node *dir,
			  const struct vr_peer *p, struct res_link_jobs *jobs);
/* Hashes each job's target from its device bytes (its IO lock shared, the tree lock not held)
 * and keeps the verdict on its link; frees JOBS. No lock held. */
void res_link_jobs_run(struct vr_residency *r, struct res_link_jobs *jobs);
void res_bytes_job_free(struct res_bytes_job *j);
/* Checks N's device bytes against J and records the verdict in N (the tree lock taken for
 * that alone). IO held, tree lock not. Returns 0 (a verdict recorded) or the -errno of the
 * read (nothing recorded). */
int res_bytes_run(struct vr_residency *r, struct vr_node *n, const struct res_bytes_job *j);
/* Takes the verdicts N's seal S still needs (every check from the bytes again when FRESH),
 * for the sources covering N now. IO held, tree lock not. Returns 0 or -errno. */
int res_bytes_settle(struct vr_residency *r, struct vr_node *n, bool fresh);
struct res_expect_counts {
	uint64_t sources, sources_refused, checked;
};
void res_source_free(struct res_source *s);
/* A refused source saying "out of memory", of KIND, for when none could be allocated. */
struct res_source *res_source_oom(enum vr_manifest_kind kind);
/* Sources one directory may hold: model.sig, SHA256SUMS, checksums.blake3. */
#define RES_SOURCES_MAX 3
/* The live sources in directory D (sealed model.sig, SHA256SUMS, checksums.blake3), in that
 * order; returns how many. [T] */
int res_sources_in(const struct vr_node *d, const struct vr_node *out[RES_SOURCES_MAX]);
/* Whether source SRC, in folder D, may vouch for N: SRC is root's or D's owner's, or N is
 * SRC's owner's (res_expect_of). [T] */
bool res_may_vouch(const struct vr_node *src, const struct vr_node *d, const struct vr_node *n);
bool res_is_source_name(const char *name);
/*
 * What covers file N, its bytes having SHA-256 SHA and BLAKE3 B3 (either NULL:
 * not known yet; a checksums.blake3 naming N while B3 is NULL sets
 * NEED_BLAKE3). A source vouches only for files its owner could have written:
 * its owner's files, or any file when the source is root's or its folder
 * owner's; any other source is left out, save that its naming other bytes
 * sets DISPUTED. [T]
 */
/* Whether sealed N's seal lacks a digest a source that may vouch for it now states (it was
 * renamed under the source, or the source arrived, and the check that takes it has not ended):
 * an open then checks it first, whatever verify_on_open says. [T] */
bool res_expect_unchecked(const struct vr_node *n);
void res_expect_of(const struct vr_node *n, const uint8_t *sha, const uint8_t *b3,
		   struct res_expect *e);
/* The same for N's seal S: its SHA-256 and BLAKE3 where it has them. [T] */
void res_expect_of_seal(const struct vr_node *n, const struct vr_seal *s, struct res_expect *e);
/* res_expect_of_seal, but every source that lists shards or a BLAKE2b naming N asks for its
 * bytes (NEED_BYTES) whatever verdict N keeps: verify's check from the bytes. [T] */
void res_expect_bytes_of(const struct vr_node *n, const struct vr_seal *s, struct res_expect *e);
/* Whether N lies under a valid source that neither names nor ignores it; under a signature,
 * whether the signature does not name it (another source's naming it does not count). [T] */
bool res_expect_unexpected(const struct vr_node *n, const struct res_expect *e);
/*
 * Checks N's bytes (S->sha256) against the expected digests covering its
 * path, then signs S for that path recording the source that names it, and
 * makes it N's seal text. Returns 0, -EBADMSG (a source names other bytes:
 * nothing is signed, E says which) or an error of signing or printing, when S
 * and N's seal text are as they were. [T]
 */
int res_place_seal(struct vr_residency *r, struct vr_node *n, struct vr_seal *s,
		   struct res_expect *e);
/* res_place_seal's first half: S signed for N's place and printed into *JSON, N untouched. */
int res_seal_prepare(struct vr_residency *r, const struct vr_node *n, struct vr_seal *s,
		     struct res_expect *e, char **json);
/* Sets the fields of S that follow N's place: its path and the source E found (no
 * allocation); 0 or -ENAMETOOLONG. */
int res_seal_place_fields(const struct vr_node *n, struct vr_seal *s, const struct res_expect *e);
/* "sha256 (or blake3) differs from <source>" and the audit detail with both digests' prefixes
 * (the one seal S has). [T] */
void res_expect_why(const struct res_expect *e, char *buf, size_t cap);
void res_expect_detail(const struct res_expect *e, const struct vr_seal *s, char *buf, size_t cap);
void res_set_check_why(struct vr_node *n, const char *why);
/*
 * N was just sealed: if it is named model.sig, SHA256SUMS or checksums.blake3, reads and checks
 * it (a signature against cfg.trust) and applies it to the files already
 * sealed below its directory: a mismatch is quarantined, a match re-signed
 * as checked. Logs and audits. IO held (either way) by the caller.
 */
void res_source_load(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c);
/* Why the source N was refused, or NULL. [T] */
const char *res_source_refusal(const struct vr_node *n);
/* verify's MISSING lines for the sources above and below DIR that P may read, and FAILED for
 * refused sources above it (why, where P may read it); counts failures into *FAILED. [T] */
void res_expect_lines(struct vr_residency *r, const struct vr_node *dir, const struct vr_peer *p,
		      struct vr_text *t, unsigned *failed);
void res_expect_counts(struct vr_residency *r, struct res_expect_counts *k);
int res_seal_text(struct vr_residency *r, struct vr_node *file, char **text, size_t *len);
int res_status_text(struct vr_residency *r, char **text, size_t *len);

/* load.c: a new file node of C's, its entry and seal counted to C up front (-EDQUOT now). [T] */
int res_new_file_node(struct vr_residency *r, const char *name, mode_t mode,
		      const struct vr_caller *c, struct vr_node **out);

/* record.c: the keeper's store in step with the tree */
/* The tree changed: the keeper writes a new record. [T] */
void res_changed(struct vr_residency *r);
/* N was just sealed: its memory goes to the keeper. IO held exclusively, T not. */
void res_keep_sealed(struct vr_residency *r, struct vr_node *n, const char *path);
/* Frees file N's memory at the daemon's stop: scrubbed and audited, but left unscrubbed to a
 * lessee (keep_shared) or, when the daemon stops to be restarted, to the keeper. */
void res_free_at_stop(struct vr_residency *r, struct vr_node *n);
/* N's memory is freed: the keeper lets it go. [T] or the last reference. */
void res_keep_drop(struct vr_residency *r, struct vr_node *n);

/* evict.c: sealed files to host memory and back (docs/operations.md, "Sharing the GPU") */
/* CLOCK_MONOTONIC in seconds. */
double res_mono(void);
/*
 * Moves sealed file N's bytes to the host store and frees its device memory, keeping its seal;
 * PINS: references the caller holds beside the tree's. REASON goes to the log and the audit.
 * No lock held. Returns 0, -EALREADY (evicted already), -EBUSY (open or mapped), -EINVAL (not
 * sealed), -ENOSPC (the store is full), -EOPNOTSUPP or -errno, WHY (CAP bytes) saying why.
 */
int res_evict_node(struct vr_residency *r, struct vr_node *n, unsigned pins,
		   const struct vr_caller *c, const char *reason, bool policy, char *why,
		   size_t cap);
/* Moves evicted N back to the device and checks it there against its seal: a mismatch is
 * quarantined (-EIO). No lock held. Returns 0 (also when it is not evicted), -ENOSPC, -EIO or
 * -errno, WHY saying why. */
int res_restore_node(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c,
		     const char *reason, char *why, size_t cap);
/* Before N (referenced by the caller, so nothing evicts it after) is read or mapped: restores it
 * when evicted, or -EAGAIN under restore=manual; notes its use for the policy. No lock held. */
int res_make_resident(struct vr_residency *r, struct vr_node *n, const struct vr_caller *c);

#endif
