/* audit_private.h - the audit log's state, shared by its writer, chain, state file and limit. */
#ifndef VR_AUDIT_PRIVATE_H
#define VR_AUDIT_PRIVATE_H

#include "audit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

/* One user's refusal records: a token bucket (docs/audit.md, "Refusals"). */
struct audit_bucket {
	bool used;
	uid_t uid;
	uint64_t milli;	   /* tokens, in thousandths of a record */
	uint64_t last_ms;  /* when the bucket was last filled (CLOCK_MONOTONIC) */
	uint64_t dropped;  /* records not written since the last summary */
	uint64_t since_ms; /* when the first of those was dropped */
};

#define AUDIT_BUCKETS 64
/* a chained record ends in this field, then 64 hex digits, '"' and '}' */
#define MAC_FIELD ",\"mac\":\""

struct vr_audit {
	int fd;
	char *path;
	char *state_path; /* PATH.chain: the chain's state, while chained */
	char *state_tmp;  /* PATH.chain.tmp, in STATE_PATH's allocation: the next state */
	pthread_mutex_t lock;
	uint64_t failures; /* under LOCK: records that could not be written */
	/* the hash chain, when an audit key or a state file was given (all under LOCK) */
	bool chained;
	bool state_stale; /* the state file names the record before the last one written */
	uint8_t *key;	  /* K(seq), in locked memory: the key of the next record */
	uint8_t prev[VR_AUDIT_MAC_SIZE]; /* the last record's MAC (zeros before the first) */
	uint64_t seq;			 /* the next record's number */
	/* the refusal limit (under LOCK) */
	uid_t self;
	unsigned burst, per_sec, every_ms;
	struct audit_bucket buckets[AUDIT_BUCKETS];
};

/*
 * Writes record O (the chain's fields and MAC added when chained), A's lock held: the line,
 * then the state file for the next record; both on disk before this returns when CRITICAL.
 * Returns 0 or -errno (counted in A's failures).
 */
int audit_write(struct vr_audit *a, cJSON *o, bool critical);
/* Builds record R as a JSON object (audit.c); NULL when out of memory. */
cJSON *audit_record_object(const struct vr_audit_rec *r);

/*
 * Replaces A's state file with its chain's next seq, prev and key (A's lock held): written
 * whole beside it and renamed over it; with SYNC, on disk (the file and its folder fsync'd)
 * before this returns. Returns 0 or -errno.
 */
int audit_state_save(struct vr_audit *a, bool sync);
/*
 * Reads state file PATH into SEQ, PREV and KEY: -ENOENT when there is none; -EACCES for a
 * file others could read or replace; -EBADMSG for one that is not a state file. Logs why.
 */
int audit_state_load(const char *path, uint64_t *seq, uint8_t prev[VR_AUDIT_MAC_SIZE],
		     uint8_t key[VR_AUDIT_MAC_SIZE]);
/*
 * The last line of A's log into malloc'd *LINE (*LEN bytes, no newline); *LINE NULL for an
 * empty log. Returns 0 or -errno (-EFBIG for a last line over 64 KiB).
 */
int audit_last_line(const struct vr_audit *a, char **line, size_t *len);

/*
 * Splits chained record LINE (LEN bytes, no line ending) into its MAC and the text it
 * covers (malloc'd *TEXT, *TLEN bytes). Returns 0, -EBADMSG with WHY, or -ENOMEM.
 */
int audit_split_mac(const char *line, size_t len, uint8_t mac[VR_AUDIT_MAC_SIZE], char **text,
		    size_t *tlen, char *why, size_t cap);

/* Whether record R counts against its user's refusal limit, A's lock held; false: dropped. */
bool audit_limit_pass(struct vr_audit *a, const struct vr_audit_rec *r);
/* Writes the summary of every user whose suppression ended (ALL: every one), lock held. */
void audit_limit_flush(struct vr_audit *a, bool all);

/* Writes LEN bytes of P to FD whole (again after EINTR and short writes); 0 or -errno. */
int audit_write_all(int fd, const char *p, size_t len);

#endif
