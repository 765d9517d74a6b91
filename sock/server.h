/* server.h - the daemon's unix socket: leases of sealed files' memory, and imports. */
#ifndef VR_SERVER_H
#define VR_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "residency.h"

struct vr_server_config {
	struct vr_residency *res; /* stays the caller's; outlives the server */
	const char *path;	  /* where the socket is bound */
	/* the mount's allow_other: other users may connect (each request is still checked
	 * against the file's modes); without it only the daemon's user and root may */
	bool allow_other;
};

struct vr_server;

/*
 * Binds the socket (a stale one, that nobody answers on, is replaced; a live
 * one or any other file there is refused) and starts serving. Returns 0 or
 * -errno, having logged why.
 */
int vr_server_start(const struct vr_server_config *cfg, struct vr_server **out);
/* Stops serving: every connection is closed and its leases end; removes the socket. NULL is
 * fine. */
void vr_server_stop(struct vr_server *s);

#endif
