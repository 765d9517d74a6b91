/* client_cuda.h - inside libvram-client: GPU memory through the CUDA driver, which
 * client_cuda.c opens by dlopen on first need. Not installed; nothing here is exported. */
#ifndef VR_CLIENT_CUDA_H
#define VR_CLIENT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#define VR_CLIENT_HIDDEN __attribute__((visibility("hidden")))

/*
 * Imports COUNT CUDA chunk descriptors (LENS bytes each, TOTAL in all) read-only end to end
 * on the GPU whose UUID is given; *OUT the device address. Returns 0, or -errno with the
 * reason written into WHY (CAP bytes).
 */
VR_CLIENT_HIDDEN int client_cuda_map(const unsigned char uuid[16], const int *fds,
				     const uint64_t *lens, uint32_t count, uint64_t total,
				     void **out, char *why, size_t cap);
/* Unmaps what client_cuda_map mapped at PTR (COUNT chunks of LENS, MAPPED bytes). */
VR_CLIENT_HIDDEN void client_cuda_unmap(void *ptr, const uint64_t *lens, uint32_t count,
					uint64_t mapped);
/* Copies LEN bytes from OFF into the GPU memory mapped at PTR to BUF; 0 or nonzero. */
VR_CLIENT_HIDDEN int client_cuda_read(void *buf, const void *ptr, uint64_t off, size_t len);

#endif
