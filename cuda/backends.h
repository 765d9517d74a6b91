/* backends.h - the backends this build holds and the choice among them (auto, cuda, mock). */
#ifndef VR_BACKENDS_H
#define VR_BACKENDS_H

#include "backend.h"

extern const struct vr_backend_ops vr_mock_ops;
extern const struct vr_backend_ops vr_cuda_ops; /* only in builds with CUDA */

/* The ops named NAME ("mock", "cuda"), or NULL if this build lacks them. */
const struct vr_backend_ops *vr_backend_find(const char *name);
/*
 * Opens the backend CHOICE names: "mock", "cuda" (fails closed: -ENODEV when
 * no usable GPU passes the policy, never a fallback) or "auto" (CUDA if it
 * opens, else the mock with a loud warning). Returns 0 or -errno.
 */
int vr_backend_select(const char *choice, const struct vr_backend_params *p,
		      struct vr_backend *out);

#endif
