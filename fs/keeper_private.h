/* keeper_private.h - what fs/keeper.c (the store kept in step) and fs/keeper_restore.c (what
 * a start takes back) share. */
#ifndef VR_KEEPER_PRIVATE_H
#define VR_KEEPER_PRIVATE_H

#include "keeper.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#define CHUNK_NAME  "vr-c-%016" PRIx64 "-%" PRIu32 /* a file's chunk: its keep id, its index */
#define RECORD_NAME "vr-r-%" PRIu64		   /* the tree's record, by generation */
#define RECORD_MAX  ((off_t)1 << 30)
#define COALESCE_NS 20000000L /* changes within 20 ms make one record */
/*
 * The most chunk descriptors kept: a restart hands them back with their names in one
 * environment string (LISTEN_FDNAMES, at most 128 KiB in Linux), ~27 bytes each. Users other
 * than root and the mount's owner keep at most half of them together and an eighth each, so
 * none can fill the store against the others (a file past a share is resident but not kept).
 */
#define KEEP_MAX    4000
#define OTHERS_PART 2
#define ONE_PART    8
#define USERS_MAX   64

/* A descriptor handed over at this start, by name. */
struct handed {
	char *name;
	int fd; /* -1 once taken or closed */
};

struct vr_keeper {
	int sock; /* connected to NOTIFY_SOCKET */
	struct vr_backend *backend;
	struct vr_res_keeper hooks;
	struct vr_residency *r;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards the four below; taken under the tree lock, never above */
	pthread_cond_t wake;
	bool dirty, stop;
	bool urgent;		/* a settle waits: no coalescing */
	uint64_t changes;	/* changes made so far */
	uint64_t kept_changes;	/* of them, what the record the keeper holds includes */
	pthread_cond_t settled; /* kept_changes moved */
	uint64_t gen;		/* the generation of the record the keeper holds now (0: none) */
	bool warned;		/* a send failed; said once until one succeeds */
	struct handed *handed;
	size_t nhanded;
	/* under LOCK: chunk descriptors kept, all and per user (other than root and the owner) */
	unsigned cap, held, others;
	struct {
		uid_t uid;
		unsigned held;
	} users[USERS_MAX];
};

/* keeper.c: counts N more descriptors of OWNER's in the store: 0, or -ENOSPC / -EDQUOT when
 * they do not fit (FORCE: counted anyway, for what a restart took back) */
int keeper_account(struct vr_keeper *k, uid_t owner, unsigned n, bool force);
/* keeper.c: asks the keeper to let go of every descriptor named NAME */
void keeper_remove_name(struct vr_keeper *k, const char *name);
/* keeper_restore.c: lets go of every handed descriptor not taken, in the keeper's store too
 * (but the record of generation KEEP_GEN, which the next one replaces) */
void keeper_let_go(struct vr_keeper *k, uint64_t keep_gen);

#endif
