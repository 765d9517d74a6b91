/*
 * cuda_errors.c - the CUDA backend's errors: CUDA and driver errors as
 * errnos, logged; the sticky ones that mark the device failed; the policy's
 * refusals, audited; selecting the device, which a failed one refuses.
 */
#include "cuda_private.h"

#include "audit.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* Errors after which the CUDA context is unusable: every later call fails too. */
static bool sticky(cudaError_t e)
{
	switch (e) {
	case cudaErrorIllegalAddress:
	case cudaErrorLaunchFailure:
	case cudaErrorHardwareStackError:
	case cudaErrorIllegalInstruction:
	case cudaErrorMisalignedAddress:
	case cudaErrorInvalidAddressSpace:
	case cudaErrorInvalidPc:
	case cudaErrorECCUncorrectable:
	case cudaErrorAssert:
	case cudaErrorLaunchTimeout:
		return true;
	default:
		return false;
	}
}

static void device_failed(struct cuda *c, const char *err, const char *what);

/*
 * Maps a CUDA error to an errno, logging its name; the one place that does.
 * A sticky error marks the device failed (C may be NULL before it exists).
 */
int cuda_err(struct cuda *c, cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	vr_log(LOG_ERR, "cuda: %s failed: %s (%s)", what, cudaGetErrorName(e),
	       cudaGetErrorString(e));
	if (c && sticky(e))
		device_failed(c, cudaGetErrorName(e), what);
	switch (e) {
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
	case cudaErrorDevicesUnavailable:
		return -ENODEV;
	default:
		return -EIO;
	}
}

/* The driver's sticky errors, named: after one the context is unusable, whichever call met it
 * (a VMM call can return one that a kernel of any file left behind). */
static const char *drv_sticky(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS:
		return "CUDA_ERROR_ILLEGAL_ADDRESS";
	case CUDA_ERROR_LAUNCH_FAILED:
		return "CUDA_ERROR_LAUNCH_FAILED";
	case CUDA_ERROR_ECC_UNCORRECTABLE:
		return "CUDA_ERROR_ECC_UNCORRECTABLE";
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
		return "CUDA_ERROR_HARDWARE_STACK_ERROR";
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
		return "CUDA_ERROR_ILLEGAL_INSTRUCTION";
	case CUDA_ERROR_MISALIGNED_ADDRESS:
		return "CUDA_ERROR_MISALIGNED_ADDRESS";
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
		return "CUDA_ERROR_INVALID_ADDRESS_SPACE";
	case CUDA_ERROR_INVALID_PC:
		return "CUDA_ERROR_INVALID_PC";
	case CUDA_ERROR_ASSERT:
		return "CUDA_ERROR_ASSERT";
	case CUDA_ERROR_LAUNCH_TIMEOUT:
		return "CUDA_ERROR_LAUNCH_TIMEOUT";
	case CUDA_ERROR_NVLINK_UNCORRECTABLE:
		return "CUDA_ERROR_NVLINK_UNCORRECTABLE";
	default:
		return NULL;
	}
}

/* A driver error as an errno, logged; out of memory is ENOSPC (the device is full); a sticky
 * one marks the device failed. */
int cuda_drv_err(struct cuda *c, CUresult r, const char *what)
{
	const char *name = NULL, *st = drv_sticky(r);

	if (r == CUDA_SUCCESS)
		return 0;
	if (!c->drv.error_name || c->drv.error_name(r, &name) != CUDA_SUCCESS || !name)
		name = st ? st : "an unknown driver error";
	vr_log(LOG_ERR, "cuda: %s failed: %s (%d)", what, name, (int)r);
	if (st) {
		device_failed(c, st, what);
		return -EIO;
	}
	switch (r) {
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOSPC;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

/*
 * Marks the device failed after the sticky error named ERR: loads are refused and checks
 * say they could not run (nothing is quarantined for it); status shows it.
 * Audited once.
 */
static void device_failed(struct cuda *c, const char *err, const char *what)
{
	char why[256];

	if (atomic_exchange(&c->failed, true))
		return;
	snprintf(why, sizeof(why),
		 "%s: %s: the GPU context is unusable; loads are refused and checks cannot run "
		 "until the daemon restarts",
		 what, err);
	vr_log(LOG_ERR, "cuda: device %d failed: %s", c->device, why);
	if (c->audit) {
		struct vr_audit_rec rec = {.event = "device_failed",
					   .uid = getuid(),
					   .pid = getpid(),
					   .outcome = "failed",
					   .detail = why};

		vr_audit_log(c->audit, &rec);
	}
}

void cuda_policy_violation(struct cuda *c, const char *why)
{
	struct vr_audit_rec rec = {.event = "policy_violation",
				   .uid = getuid(),
				   .pid = getpid(),
				   .outcome = "denied",
				   .detail = why};

	vr_log(LOG_ERR, "cuda: device %d refused by the VRAM-only policy: %s", c->device, why);
	if (c->audit)
		vr_audit_log(c->audit, &rec);
}

/* cudaSetDevice is per thread: every entry point selects the device first, and a failed
 * device refuses here. */
int cuda_select_dev(struct cuda *c)
{
	if (atomic_load(&c->failed))
		return -EIO;
	return cuda_err(c, cudaSetDevice(c->device), "cudaSetDevice");
}
