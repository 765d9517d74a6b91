/* evict.h - eviction's side of the daemon: the host store evicted files wait in, and the
 * policy thread that polls NVML (docs/operations.md, "Sharing the GPU"). */
#ifndef VR_FS_EVICT_H
#define VR_FS_EVICT_H

#include <stdbool.h>

struct vr_device_info;
struct vr_res_config;
struct vr_residency;

/* The -o options, as given (NULL: not given). */
struct vr_evict_opts {
	char *mode;	     /* evict=off|nvml */
	char *keep_free;     /* evict_free=SIZE|N% */
	char *margin;	     /* evict_margin=SIZE|N% */
	char *interval;	     /* evict_interval=SECONDS */
	char *min_resident;  /* evict_min_resident=SECONDS */
	char *restore_delay; /* evict_restore_delay=SECONDS */
	char *host_max;	     /* evict_host_max=SIZE (0: no eviction) */
	char *dir;	     /* evict_dir=DIR: evicted bytes in files there */
	char *restore;	     /* restore=auto|manual */
};

struct vr_evict;

/* Whether the options are well formed, before anything opens; returns 0 or -2 having said why
 * on standard error. */
int vr_evict_opts_check(const struct vr_evict_opts *o);
/*
 * Opens the host store (unless evict_host_max=0) and fills CFG's evict_store, restore_manual
 * and evict policy, its percentages taken of DEV's memory. RESTORING: a keeper hands back what
 * an earlier daemon kept (evicted files' host memory among it), so evict_dir's files stay for
 * the restore. Returns 0 or -1 having said why.
 */
int vr_evict_open(const struct vr_evict_opts *o, const struct vr_device_info *dev, bool restoring,
		  struct vr_evict **out, struct vr_res_config *cfg);
/* Starts the policy's thread over R (evict=nvml): without NVML, says so once and runs none.
 * Returns 0 or -1 (no thread could start). NULL is fine. */
int vr_evict_start(struct vr_evict *e, struct vr_residency *r);
/* Stops the thread; before vr_res_free. NULL is fine. */
void vr_evict_stop(struct vr_evict *e);
/* Closes the store; after vr_res_free (which frees the evicted files). NULL is fine. */
void vr_evict_free(struct vr_evict *e);
/* Prints the options' part of --help. */
void vr_evict_help(void);
/* Frees the option strings. */
void vr_evict_opts_free(struct vr_evict_opts *o);

#endif
