/* ops.h - the FUSE handlers over core/residency (fs/ops.c). */
#ifndef VR_OPS_H
#define VR_OPS_H

#include "options.h" /* FUSE_USE_VERSION before <fuse.h> */

/* The handlers; fuse_new's private data must be the struct vr_residency they serve. */
extern const struct fuse_operations vr_fuse_ops;

#endif
