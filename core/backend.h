/* backend.h - the device interface: one ops table and a context; mock and CUDA implement it. */
#ifndef VR_BACKEND_H
#define VR_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vr_audit;

struct vr_device_info {
	char backend[16]; /* "mock" or "cuda" */
	int index;
	char name[256];
	char uuid[128];
	int cc_major, cc_minor; /* compute capability; 0.0 for the mock */
	uint64_t total_bytes;	/* what files may use in all */
	uint64_t free_bytes;	/* what is left of that */
	bool integrated;	/* shares host memory */
};

/* Where a fault is injected (mock only): the Nth call of a kind fails. */
enum vr_fault_op { VR_FAULT_ALLOC, VR_FAULT_WRITE, VR_FAULT_READ, VR_FAULT_DIGEST, VR_FAULT_OPS };

struct vr_backend_params {
	int device;	   /* device=N */
	uint64_t capacity; /* mock: capacity=SIZE; 0 means the default (1 GiB) */
	const char
	    *mock_vram; /* mock: file whose shared mapping is device memory; NULL: anonymous */
	struct vr_audit *audit; /* where policy violations are recorded; may be NULL */
	/* mock fault injection: the fail_at[op]-th call of OP (from 1) fails with -fail_errno[op]
	 */
	unsigned fail_at[VR_FAULT_OPS];
	int fail_errno[VR_FAULT_OPS];
};

/* One file's device memory: a list of fixed-size extents, owned by the backend. */
struct vr_dev_file;

struct vr_backend_ops {
	const char *name;
	int (*open)(const struct vr_backend_params *p, void **ctx);
	void (*close)(void *ctx);
	int (*info)(void *ctx, struct vr_device_info *out);
	int (*file_new)(void *ctx, struct vr_dev_file **out);
	/* grows with zeroed extents (no copy of what is there) or shrinks, scrubbing the cut tail
	 */
	int (*resize)(void *ctx, struct vr_dev_file *f, uint64_t size);
	int (*write)(void *ctx, struct vr_dev_file *f, uint64_t off, const void *buf, size_t len);
	int (*read)(void *ctx, struct vr_dev_file *f, uint64_t off, void *buf, size_t len);
	/* fs-verity digest where the bytes live, and plain SHA-256 when SHA is not NULL */
	int (*digest)(void *ctx, struct vr_dev_file *f, uint8_t *sha, uint8_t fsv[32]);
	uint64_t (*held)(void *ctx, const struct vr_dev_file *f);
	/* scrubs (zeroes) and frees; returns the scrub's error, but frees regardless */
	int (*file_free)(void *ctx, struct vr_dev_file *f);
};

struct vr_backend {
	const struct vr_backend_ops *ops;
	void *ctx;
};

/* Opens a backend through OPS; returns 0 or the backend's -errno. */
int vr_backend_open(const struct vr_backend_ops *ops, const struct vr_backend_params *p,
		    struct vr_backend *out);
/* Closes; a zeroed struct is fine. */
void vr_backend_close(struct vr_backend *b);
/* Device name, UUID, capacity; returns 0 or -errno. */
int vr_backend_info(struct vr_backend *b, struct vr_device_info *out);
/* A new empty file allocation; returns 0, -ENOMEM. */
int vr_dev_file_new(struct vr_backend *b, struct vr_dev_file **out);
/* Resizes the allocation to SIZE bytes; returns 0, -ENOSPC, -ENOMEM or -EIO. */
int vr_dev_resize(struct vr_backend *b, struct vr_dev_file *f, uint64_t size);
/* Copies LEN bytes to the device at OFF (inside the current size); returns 0, -EINVAL or -EIO. */
int vr_dev_write(struct vr_backend *b, struct vr_dev_file *f, uint64_t off, const void *buf,
		 size_t len);
/* Copies LEN bytes from the device at OFF; returns 0, -EINVAL or -EIO. */
int vr_dev_read(struct vr_backend *b, struct vr_dev_file *f, uint64_t off, void *buf, size_t len);
/* Digests of the file's SIZE bytes (its current size); SHA may be NULL. Returns 0 or -errno. */
int vr_dev_digest(struct vr_backend *b, struct vr_dev_file *f, uint8_t *sha, uint8_t fsv[32]);
/* Device bytes the file holds (whole extents). */
uint64_t vr_dev_held(struct vr_backend *b, const struct vr_dev_file *f);
/* Scrubs and frees; NULL is fine. Returns 0 or the scrub's -errno (memory is freed anyway). */
int vr_dev_file_free(struct vr_backend *b, struct vr_dev_file *f);

#endif
