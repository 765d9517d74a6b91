/* audit.h - the append-only JSON-lines audit log: one record per decision. */
#ifndef VR_AUDIT_H
#define VR_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct vr_audit;
struct vr_keyring;

/* The hash chain (docs/audit.md): every record carries seq, prev and mac. */
#define VR_AUDIT_MAC_SIZE    32
#define VR_AUDIT_CHAIN_LABEL "vram-residency/v1 audit chain"
#define VR_AUDIT_NEXT_LABEL  "vram-residency/v1 audit next key"

/* Caller text (a path, a reason) a record carries at most: the rest is cut, with a marker. */
#define VR_AUDIT_TEXT_MAX 512
/* Refusal records per user other than root and the daemon's: this many at once, then this
 * many a second; the rest are counted in an audit_suppressed record. */
#define VR_AUDIT_BURST	    64
#define VR_AUDIT_PER_SEC    10
#define VR_AUDIT_SUMMARY_MS 60000 /* a summary at least this often while dropping */

/* One record. PATH, DIGEST and DETAIL may be NULL; DETAIL never holds secret bytes. */
struct vr_audit_rec {
	const char *event; /* one of the events in docs/audit.md */
	const char *path;  /* relative to the mount root */
	uid_t uid;
	pid_t pid;
	const char *outcome;   /* "ok", "denied", "failed" */
	const uint8_t *digest; /* 32-byte fs-verity digest; its first 8 bytes are logged */
	const char *detail;    /* why, in words */
};

/*
 * Opens (creating, mode 0600) PATH for appending. Refuses a symbolic link
 * (-ELOOP), anything but a regular file owned by this user and writable by it
 * alone, and a folder others may write to (-EACCES), saying how to fix it.
 * Returns 0 or -errno.
 */
int vr_audit_open(const char *path, struct vr_audit **out);
/* Closes; NULL is fine. */
void vr_audit_close(struct vr_audit *a);
/*
 * Appends one JSON line with the time. The critical events (vr_audit_is_critical) are
 * fsync'd before this returns. A refusal (outcome "denied") of a user other than root and
 * the daemon's own is written only within the user's limit (vr_audit_set_limit); past it,
 * it is counted, and an audit_suppressed record with the count is written once the user is
 * within the limit again (or at close). Returns 0 (also for a record counted, not written),
 * -EINVAL for an unknown event, or the -errno of the failed write or fsync.
 */
int vr_audit_log(struct vr_audit *a, const struct vr_audit_rec *r);
/* K(0) of the chain from the audit key file's keyring. */
void vr_audit_key0(const struct vr_keyring *k, uint8_t out[VR_AUDIT_MAC_SIZE]);
/* K(i+1) = HMAC-SHA256(K(i), VR_AUDIT_NEXT_LABEL), in place; the old key is wiped. */
void vr_audit_key_next(uint8_t key[VR_AUDIT_MAC_SIZE]);
/* Sets the refusal limit: BURST records at once, then PER_SEC a second, and a summary at
 * least every EVERY_MS while a user's suppression goes on (tests; the defaults: above). */
void vr_audit_set_limit(struct vr_audit *a, unsigned burst, unsigned per_sec, unsigned every_ms);
/*
 * Chains the log from now on, with K0: a log that already holds records must
 * be a chain that verifies under K0 (it is continued after its last record),
 * else -EBADMSG, logged with the line. A state file (PATH.chain) that exists
 * must hold K0's key for its position and agree with the log (below), else
 * -EBADMSG; it is written (again) before this returns. Returns 0 or -errno.
 */
int vr_audit_chain_start(struct vr_audit *a, const uint8_t k0[VR_AUDIT_MAC_SIZE]);
/*
 * Without the first key: continues the chain from the state file PATH.chain, which holds
 * the next record's seq, the last MAC and the next key, replaced after every record. The
 * log's last record must be the one the state follows, or the one after it (written just
 * before a crash: it is checked with the state's key and the state moves past it); an
 * empty log (rotated away) continues the chain too. Returns 0 (chained), 1 (no state file
 * and a log that is not chained: records go on unchained), -EBADMSG for a log and state
 * that disagree or a chained log without its state, or another -errno; logged with why.
 */
int vr_audit_chain_resume(struct vr_audit *a);

/* A reader's walk along a chain (vram-seal audit-verify, and the daemon at start). */
struct vr_audit_chain {
	uint8_t key[VR_AUDIT_MAC_SIZE];
	uint8_t prev[VR_AUDIT_MAC_SIZE];
	uint64_t seq; /* the next record's expected number */
	bool started;
	uint64_t started_at; /* the first record's seq: not 0 when a file begins mid-chain */
};
void vr_audit_chain_init(struct vr_audit_chain *c, const uint8_t k0[VR_AUDIT_MAC_SIZE]);
/*
 * Checks the next line of a chain (LEN bytes, a trailing newline allowed): seq
 * follows, prev is the last MAC, and its MAC verifies with this record's key;
 * then moves on. Returns 0, -EBADMSG with WHY (CAP bytes) saying what is wrong,
 * or -ENOMEM.
 */
int vr_audit_chain_next(struct vr_audit_chain *c, const char *line, size_t len, char *why,
			size_t cap);

/*
 * Opens the log's path again (after logrotate moved the file away), with the
 * same safety checks; records go on in the new file, the chain continuing.
 * On failure the old file stays in use. Returns 0 or -errno.
 */
int vr_audit_reopen(struct vr_audit *a);

/* How many records could not be written (a full disk, say); 0 for NULL. */
uint64_t vr_audit_failures(struct vr_audit *a);
/* Whether EVENT is fsync'd before vr_audit_log returns. */
int vr_audit_is_critical(const char *event);

#endif
