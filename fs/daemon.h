/* daemon.h - what the mount holds: fs/startup.c opens and closes it, fs/main.c runs it. */
#ifndef VR_DAEMON_H
#define VR_DAEMON_H

#include "options.h" /* FUSE_USE_VERSION before <fuse.h> */

#include <stdbool.h>
#include <stddef.h>

struct vr_keyring;
struct vr_trust;
struct vr_audit;
struct vr_residency;
struct vr_server;
struct vr_keeper;
struct vr_evict;

/* Everything the mount holds, torn down in reverse order. */
struct daemon {
	struct vr_options opts;
	struct vr_keyring *keys;
	struct vr_trust *trust;
	/* keys SIGHUP replaced, kept until the end: a check may still use them */
	struct vr_trust **retired;
	size_t nretired;
	struct vr_audit *audit;
	struct vr_backend backend;
	struct vr_residency *res;
	struct fuse *fuse;
	bool mounted;	   /* fuse_mount succeeded */
	bool unmounted;	   /* and fuse_unmount was called */
	char *socket_path; /* NULL: socket=none */
	const char *mountpoint;
	struct vr_server *server;
	struct vr_keeper *keeper; /* NULL: no keeper; a restart loses what is resident */
	int stop_signal;	  /* the signal that ended the loop; 0: an unmount */
	struct vr_evict *evict;	  /* the host store and the eviction policy (fs/evict.c) */
};

/* Writes one audit record of the daemon's own (this uid and pid). */
void daemon_audit(struct daemon *d, const char *event, const char *outcome, const char *detail);
/* Opens everything up to and including the mount; returns 0 or -1 having said why. */
int daemon_start(struct daemon *d, struct fuse_args *args, const char *mountpoint);
/* Closes what daemon_start opened, whatever it reached, in reverse order. */
void daemon_stop(struct daemon *d);

#endif
