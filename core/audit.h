/* audit.h - the append-only JSON-lines audit log: one record per decision. */
#ifndef VR_AUDIT_H
#define VR_AUDIT_H

#include <stdint.h>
#include <sys/types.h>

struct vr_audit;

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
 * Appends one JSON line with the time. seal_verification_failed and
 * policy_violation are fsync'd before this returns. Returns 0, -EINVAL for an
 * unknown event, or the -errno of the failed write or fsync.
 */
int vr_audit_log(struct vr_audit *a, const struct vr_audit_rec *r);
/* How many records could not be written (a full disk, say); 0 for NULL. */
uint64_t vr_audit_failures(struct vr_audit *a);
/* Whether EVENT is fsync'd before vr_audit_log returns. */
int vr_audit_is_critical(const char *event);

#endif
