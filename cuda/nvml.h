/* nvml.h - the device's memory as NVML sees it (libnvidia-ml loaded at run time), for the
 * eviction policy. */
#ifndef VR_NVML_H
#define VR_NVML_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * One NVML session on one device. Not locked: one caller at a time (a sample reuses the
 * session's process buffers); distinct sessions may be used from distinct threads.
 */
struct vr_nvml;

struct vr_gpu_sample {
	uint64_t total;	       /* nvmlDeviceGetMemoryInfo_v2: the device's memory */
	uint64_t free;	       /* of it, free (v2: the driver's reserve not counted as free) */
	uint64_t others_bytes; /* device memory used by processes other than SELF (compute and
				* graphics, each pid counted once); amounts NVML does not give are
				* not counted */
	unsigned others;       /* how many such processes */
	unsigned unknown;      /* of them, those whose amount NVML does not give */
};

/* Opens NVML for the device whose UUID is UUID (CUDA's "GPU-…" text) or, when UUID is NULL or
 * does not start with "GPU-", device INDEX. WHY (CAP bytes) says what failed, for one log line.
 * Returns 0, -ENOENT (no libnvidia-ml, or a symbol missing), -ENODEV (no such device), -ENOMEM
 * or -EIO (NVML failed: its nvmlErrorString in WHY). */
int vr_nvml_open(const char *uuid, int index, struct vr_nvml **out, char *why, size_t cap);
/* One sample of the device's memory and of the processes on it other than SELF; returns 0,
 * -ENOMEM or -EIO (WHY says why). */
int vr_nvml_sample(struct vr_nvml *n, pid_t self, struct vr_gpu_sample *out, char *why, size_t cap);
/* Shuts NVML down and unloads it; NULL is fine. */
void vr_nvml_close(struct vr_nvml *n);

#endif
