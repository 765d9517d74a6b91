/* vr_proto.h - the daemon's socket protocol, version 1: messages both sides share (docs/socket.md).
 */
#ifndef VR_PROTO_H
#define VR_PROTO_H

#include <stdint.h>

/*
 * A SOCK_SEQPACKET unix socket: every request and every reply is one
 * message. Integers are in the host's byte order (both ends are on one
 * host). Descriptors travel as SCM_RIGHTS, at most VR_PROTO_FDS_PER_MSG per
 * message: a reply that carries more sends the rest in VR_OP_MORE messages
 * right after it.
 */
#define VR_PROTO_MAGIC	     0x31535256u /* "VRS1" */
#define VR_PROTO_VERSION     1u
#define VR_PROTO_FDS_PER_MSG 250u
#define VR_PROTO_PATH_MAX    4096u	  /* a request's path, without a NUL */
#define VR_PROTO_REPLY_MAX   (512u << 10) /* the largest reply message */

enum vr_proto_op {
	VR_OP_MAP = 1,	  /* path: lease a sealed file's memory (flags: VR_MAP_VERIFY) */
	VR_OP_VERIFY = 2, /* lease: re-check the leased file on the device */
	VR_OP_UNMAP = 3,  /* lease: end it */
	VR_OP_IMPORT = 4, /* path (destination), mode, one descriptor: load and seal it */
	VR_OP_MORE = 5,	  /* reply only: more descriptors of the reply before it */
	VR_OP_REVOKE =
	    6,		 /* path: end every lease on the file (its owner or root); size: how many */
	VR_OP_EVICT = 7, /* path: evict the file, or the files below a folder, to host memory
			  * (flags: VR_EVICT_RESTORE: back to the device); size: how many moved */
};

#define VR_EVICT_RESTORE 1u /* VR_OP_EVICT: restore instead, checked on the device */

#define VR_MAP_VERIFY 1u /* check the digest on the device before handing it out */

struct vr_proto_req {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t flags;
	uint32_t lease; /* VERIFY, UNMAP: the lease a MAP reply named */
	uint32_t mode;	/* IMPORT: permission bits of the new file (the caller's umask applied) */
	uint32_t len;	/* bytes of path that follow */
};

enum vr_proto_kind {
	VR_PROTO_KIND_HOST = 1, /* host memory (the mock): mmap each descriptor read-only */
	VR_PROTO_KIND_CUDA = 2, /* CUDA VMM handles (POSIX fds): import and map read-only */
};

/* The reply to each request; then COUNT uint64 chunk lengths, SEAL_LEN bytes of the signed
 * seal's JSON and MSG_LEN bytes of text (why, on failure). */
struct vr_proto_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	int32_t status; /* 0 or a negative errno */
	uint32_t lease; /* MAP: the new lease's number (from 1, per connection); IMPORT: the new
			 * file's inode number, low half */
	uint32_t kind;	/* MAP: enum vr_proto_kind; IMPORT: the inode number's high half */
	uint32_t count; /* MAP: chunks, each with a descriptor */
	uint64_t size;	/* MAP: the file's size; IMPORT: bytes loaded */
	uint32_t seal_len;
	uint32_t msg_len;
};

/* A VR_OP_MORE message: its descriptors come next in chunk order. */
struct vr_proto_more {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t count;
};

#endif
