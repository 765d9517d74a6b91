/* server_private.h - what the socket's files share: a connection, the server, replies. */
#ifndef VR_SERVER_PRIVATE_H
#define VR_SERVER_PRIVATE_H

#include "server.h"
#include "vr_proto.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_CONNS	    1024 /* in all */
#define MAX_CONNS_PER_UID   64	 /* for a user other than root */
#define MAX_GROUPS	    256
#define MAX_LEASES_PER_CONN 1024u /* live leases one connection holds */
#define MAX_LEASES_PER_UID  4096u /* and one user other than root, over all connections */

struct conn {
	struct vr_server *srv;
	int fd;
	struct vr_peer peer;
	gid_t groups[MAX_GROUPS];
	struct vr_lease **leases; /* index + 1 is the lease's number; NULL once ended */
	uint32_t nleases;
	/* leases live now: written by the connection's thread, read by others' (the per-user
	 * limit) under srv->lock */
	_Atomic uint32_t live;
	struct conn *next; /* [srv->lock] */
};

struct vr_server {
	struct vr_server_config cfg;
	char *path;
	int listen_fd;
	int stop_pipe[2];
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled when a connection's thread ends */
	struct conn *conns;  /* [lock] */
	unsigned nconns;     /* [lock] */
	bool stopping;	     /* [lock] */
};

/* Replies with STATUS and, on failure, the text WHY (SIZE: an import's bytes). */
int srv_reply_status(struct conn *c, uint16_t op, int status, const char *why, uint64_t size);
/* An import's reply: STATUS (WHY on failure), the bytes loaded, the new file's inode number. */
int srv_reply_import(struct conn *c, int status, const char *why, uint64_t loaded, uint64_t ino);
/* strerror(-ERR) into BUF. */
const char *srv_errno_why(int err, char *buf, size_t cap);
/* import.c: an import request: the descriptor SRC read into a new sealed file at PATH. */
int srv_import(struct conn *c, const struct vr_proto_req *q, const char *path, int src);

#endif
