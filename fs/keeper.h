/* keeper.h - device memory and the tree's record held by a keeper across restarts of the daemon:
 * systemd's descriptor store, or vram-keeper speaking its protocol (docs/operations.md). */
#ifndef VR_KEEPER_H
#define VR_KEEPER_H

#include "backend.h"
#include "residency.h"

#include <stdbool.h>

struct vr_keeper;
struct vr_audit;

/*
 * Decides whether this start has a keeper: NOTIFY_SOCKET with FDSTORE= above 0 (systemd 254 and
 * later set it from FileDescriptorStoreMax=; vram-keeper sets it), or MODE "on" (older systemd),
 * never with "off"; and says which, or why not, in the log. *OUT is NULL when there is none.
 * SECRET_GIVEN: the master secret comes from a file (an ephemeral one could not check the
 * record after a restart). Returns 0, or -1 having said why (keep=on that cannot be).
 */
int vr_keeper_open(const char *mode, struct vr_backend *b, bool secret_given,
		   struct vr_keeper **out);
/* The residency's calls into K (store, drop, changed). */
const struct vr_res_keeper *vr_keeper_hooks(struct vr_keeper *k);
/*
 * Rebuilds R from what the keeper handed this start (LISTEN_FDS): the newest record, each file
 * checked on the device (vr_res_restore), then lets go of what it does not use. Logs and
 * audits what came back. Returns 0 (also when nothing was handed over) or -ENOMEM.
 */
int vr_keeper_restore(struct vr_keeper *k, struct vr_residency *r, struct vr_audit *a);
/* Starts the thread that writes a new record after each change. Returns 0 or -errno. */
int vr_keeper_start(struct vr_keeper *k);
/*
 * Stops that thread. KEEP (the daemon stops on a signal, to be restarted): the record is written
 * one last time and R told to leave the keeper's files there (vr_res_keep_at_stop); otherwise (an
 * unmount) the record is let go, and R's files are as they are freed.
 */
void vr_keeper_stop(struct vr_keeper *k, struct vr_residency *r, bool keep);
/* Closes what is left; after the residency is freed. NULL is fine. */
void vr_keeper_free(struct vr_keeper *k);

#endif
