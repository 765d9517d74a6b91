/* fake_cuda_driver.h - the driver-API test double's hooks into the runtime double, and back. */
#ifndef VR_FAKE_CUDA_DRIVER_H
#define VR_FAKE_CUDA_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include <cuda.h>

/* Whether [P, P+N) is covered by VMM mappings end to end. */
bool fake_vmm_is_mapped(const void *p, size_t n);
/* Where the double itself reaches the device bytes [P, P+N): a host view of VMM mappings that
 * cover them end to end with access set (read, or read-write when WRITE); NULL otherwise. */
void *fake_vmm_host(const void *p, size_t n, bool write);
/* Host loads and stores at device addresses fault unless a test peeks (VR_FAKE_CUDA_PEEK=1, or
 * this call): then mappings show on the host with the access set for the device. */
void fake_vmm_peek(bool on);
/* Bytes of VMM memory alive: handles, and chunks whose exported descriptor is still held. */
size_t fake_vmm_allocated(void);
/* The runtime's side of the driver: initialized, and the primary context current on this
 * thread when it has none (what the runtime does before its calls). */
void fake_driver_bind(void);
/* The device's memory and what the runtime double's cudaMalloc holds (weak defaults). */
size_t fake_total_mem(void);
size_t fake_runtime_allocated(void);
/* CUDA_SUCCESS, or the error the runtime double's injection (vr_fake_cuda_fail) gives CALL now:
 * DFLT, an injected code, or the sticky error of a broken context (weak default: none). */
CUresult fake_driver_enter(const char *call, CUresult dflt);
/* Waits for all device work (the runtime double's streams; weak default: none). */
void fake_device_wait(void);

#endif
