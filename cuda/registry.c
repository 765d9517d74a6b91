/* registry.c - the backends this build holds and the choice among them (auto, cuda, mock). */
#include "backends.h"
#include "log.h"

#include <errno.h>
#include <string.h>

const struct vr_backend_ops *vr_backend_find(const char *name)
{
	if (strcmp(name, "mock") == 0)
		return &vr_mock_ops;
#ifdef VR_HAVE_CUDA
	if (strcmp(name, "cuda") == 0)
		return &vr_cuda_ops;
#endif
	return NULL;
}

int vr_backend_select(const char *choice, const struct vr_backend_params *p, struct vr_backend *out)
{
	if (strcmp(choice, "mock") == 0)
		return vr_backend_open(&vr_mock_ops, p, out);
	if (strcmp(choice, "cuda") != 0 && strcmp(choice, "auto") != 0) {
		vr_log(LOG_ERR, "unknown backend '%s' (use auto, cuda or mock)", choice);
		return -EINVAL;
	}
#ifdef VR_HAVE_CUDA
	if (strcmp(choice, "cuda") == 0)
		return vr_backend_open(&vr_cuda_ops, p, out);
	struct vr_backend_params probe = *p;

	probe.probe = true;
	int ret = vr_backend_open(&vr_cuda_ops, &probe, out);

	if (ret == 0)
		return 0;
	vr_log(LOG_WARNING, "backend=auto: no usable GPU (%s)", strerror(-ret));
#else
	if (strcmp(choice, "cuda") == 0) {
		vr_log(LOG_ERR, "backend=cuda: this build has no CUDA backend (nvcc was not found "
				"at build time)");
		return -ENODEV;
	}
#endif
	vr_log(LOG_WARNING, "*** backend=auto: using the MOCK backend: file bytes live in HOST "
			    "memory, NOT on a GPU ***");
	return vr_backend_open(&vr_mock_ops, p, out);
}
