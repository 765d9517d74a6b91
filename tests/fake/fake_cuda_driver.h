/* fake_cuda_driver.h - the driver-API test double's hooks into the runtime double, and back. */
#ifndef VR_FAKE_CUDA_DRIVER_H
#define VR_FAKE_CUDA_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda.h>

/* Whether [P, P+N) is covered by VMM mappings end to end. */
bool fake_vmm_is_mapped(const void *p, size_t n);
/* Bytes of VMM handles alive. */
size_t fake_vmm_allocated(void);
/* The device's memory and what the runtime double's cudaMalloc holds (weak defaults). */
size_t fake_total_mem(void);
size_t fake_runtime_allocated(void);
/* Nonzero when the runtime double's injection (vr_fake_cuda_fail) fails this CALL now, or the
 * context is broken (weak default: never). */
int fake_driver_enter(const char *call);

#endif
