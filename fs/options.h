/* options.h - the daemon's command line: our -o options, checked before anything is mounted. */
#ifndef VR_OPTIONS_H
#define VR_OPTIONS_H

#include <stdbool.h>

#include "backend.h"
#include "evict.h"

/* libfuse 3.12 and later: the loop's thread count is set through fuse_loop_config */
#ifdef VR_FUSE_LOOP_CONFIG
#define FUSE_USE_VERSION 312
#else
#define FUSE_USE_VERSION 31
#endif
#include <fuse.h>

/*
 * The loop's worker threads (-o max_threads=N, libfuse 3.12 and later): each check of a user
 * other than root holds one while it runs or waits, and they hold VR_RES_CHECKS_OTHERS at
 * most, so the default leaves as many again for everyone else (root's stat, ls, reads), and
 * no count leaving fewer than VR_FUSE_RESERVE is taken. Older libfuse starts a thread for
 * every request that finds none idle (no maximum), so it needs none.
 */
#define VR_FUSE_RESERVE	    4
#define VR_FUSE_THREADS	    16
#define VR_FUSE_THREADS_MAX 1024

#define VR_DEFAULT_AUDIT "/var/log/vram-residency/audit.log"

struct vr_options {
	char *backend;	     /* auto|cuda|mock */
	char *secret;	     /* master secret file; NULL: an ephemeral one */
	char *audit;	     /* audit log */
	char *capacity;	     /* mock size */
	char *mock_vram;     /* mock backing file */
	char *mock_fault;    /* OP:N[:ERR][+...], for tests */
	char *reserve;	     /* the mock's reserve=0|1 */
	char *staging;	     /* staging=SLOTxCOUNTxSTAGES (backend.h's struct vr_staging) */
	char *trust;	     /* PEM file or directory of keys trusted to sign models */
	char *expect;	     /* check|require */
	char *sha256;	     /* on|off */
	char *device_digest; /* fsverity|blake3|both */
	char *audit_key;     /* the audit chain's key file */
	char *socket;	     /* the socket's path; "none": no socket; NULL: MOUNTPOINT.sock */
	char *metrics_file;  /* where the metrics are written every metrics_interval s; NULL: not */
	char *log;	     /* the daemon's messages, also to this file; NULL: stderr/syslog */
	char *keep;	     /* auto|on|off: device memory kept by a keeper across restarts */
	int metrics_interval;
	char *meta_limit;	   /* each user's metadata memory; NULL: the default */
	uint64_t meta_limit_bytes; /* ... parsed; 0: the default */
	int device;
	int verify_on_open;
	int max_threads; /* the loop's worker threads; 0: not given (VR_FUSE_THREADS) */
	int list_generated;
	int immutable;
	struct vr_evict_opts evict; /* evict=, evict_*=, restore= (fs/evict.c) */
	bool show_help, show_version;
	/* the backend-specific options above, passed through (vr_options_backend_params) */
	struct vr_backend_opt bopts[5];
};

/* Parses and removes our options from ARGS; returns 0, -2 for a usage error (a bad value) or
 * -1 (out of memory), having said why. */
int vr_options_parse(struct fuse_args *args, struct vr_options *o);
/* device_digest=V as VR_DEVICE_DIGEST_* bits (NULL: the default, fs-verity); 0: not a value */
unsigned vr_device_digest_bits(const char *v);
/* Whether libfuse takes the options left in ARGS (checked on a copy, nothing mounted): 0, -2
 * for a usage error (an unknown option: libfuse names it) or -1 (out of memory). */
int vr_options_check_fuse(const struct fuse_args *args);
/* Prints the version lines (--version). */
void vr_options_version(void);
/* Fills backend parameters from the options (P points into O); returns 0 or -1 (having said
 * why). */
int vr_options_backend_params(struct vr_options *o, struct vr_backend_params *p);
/* Prints the usage, the daemon's own options and the libfuse options that apply. */
void vr_options_help(const char *prog);
/* Frees the strings. */
void vr_options_free(struct vr_options *o);

#endif
