/*
 * cuda_private.h - what the CUDA backend's files share: the device and file
 * structs, their limits and locking, and the calls between the files.
 */
#ifndef VR_CUDA_PRIVATE_H
#define VR_CUDA_PRIVATE_H

#include "backend.h"
#include "blake3_kernel.h"
#include "fsverity_kernel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda.h>
#include <cuda_runtime.h>

#define CHUNK_MAX   ((uint64_t)1 << 30)	 /* the largest single physical chunk */
#define RESERVE_MIN ((uint64_t)64 << 20) /* address space a file reserves at first */
/*
 * Pinned staging (cuda_stage.c), its geometry from -o staging (backend.h's
 * struct vr_staging; docs/benchmarks.md says how a card run would choose it):
 * a stage is G.slots slots of G.slot bytes on one stream of its own, lent to
 * one writer at a time. The default's 8 MiB pieces make a copy's fixed cost
 * (~10 us) under 1 % at 25 GB/s; four slots keep one being filled, one being
 * hashed and two on the bus. Up to G.stages stages (files loading at once
 * without waiting for one another), made as writers need them and kept: 32
 * MiB of pinned memory each, 512 MiB at most, by default.
 */
/*
 * Locking, narrowed to what is truly shared (backend.h's contract):
 *  - ACCT guards USED against BUDGET; info takes only this, briefly.
 *  - STAGES guards the pool of idle staging buffers: the one resource writers
 *    of different files share, held only to take or give back a stage (never
 *    over a copy). A stage's slots, events and stream are its holder's alone;
 *    each uploads on its own stream, so writers of different files do not
 *    wait for each other's copies.
 *  - Nothing else is locked: a file's extents and its WRITTEN event belong to
 *    the caller, who orders calls on one file. WRITTEN marks the end of the
 *    file's queued work on whichever stream queued it last (WRITTEN_ON); a
 *    stream that queues more for the file first waits for it
 *    (cuda_queue_after). Reads and digests run on the calling thread's own
 *    stream (cudaStreamPerThread) after waiting for the file's WRITTEN event,
 *    so they never hold a lock a writer needs.
 */
/* The driver's virtual memory calls, taken through the runtime (no link against libcuda). */
struct drv {
	CUresult (*create)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
			   unsigned long long);
	CUresult (*release)(CUmemGenericAllocationHandle);
	CUresult (*reserve)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
	CUresult (*addr_free)(CUdeviceptr, size_t);
	CUresult (*map)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
			unsigned long long);
	CUresult (*unmap)(CUdeviceptr, size_t);
	CUresult (*set_access)(CUdeviceptr, size_t, const CUmemAccessDesc *, size_t);
	CUresult (*granularity)(size_t *, const CUmemAllocationProp *,
				CUmemAllocationGranularity_flags);
	CUresult (*export_fd)(void *, CUmemGenericAllocationHandle, CUmemAllocationHandleType,
			      unsigned long long);
	CUresult (*import_fd)(CUmemGenericAllocationHandle *, void *, CUmemAllocationHandleType);
	CUresult (*attribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*error_name)(CUresult, const char **);
};

struct cuda {
	int device;
	struct drv drv;		  /* constant after open */
	CUmemAllocationProp prop; /* device memory, exportable as a POSIX descriptor */
	CUmemAccessDesc rw;	  /* this device reads and writes it */
	uint64_t grain;		  /* the allocation granularity */
	atomic_bool failed; /* a sticky error broke the context: nothing more until a restart */
	struct vr_device_info info; /* constant after open */
	struct vr_audit *audit;
	pthread_mutex_t acct;
	uint64_t budget, used; /* under ACCT (the budget falls when another process takes memory) */
	uint64_t budget_max;   /* the budget at open, constant */
	uint64_t headroom;     /* what the budget leaves free on the device, constant */
	cudaStream_t upload;   /* the file's memsets, scrubs and remaps */
	pthread_mutex_t stages;
	pthread_cond_t stage_back;		       /* a stage was given back */
	struct cuda_stage *idle;		       /* under STAGES */
	struct vr_staging g;			       /* the staging's geometry, constant */
	struct cuda_stage *all[VR_STAGING_STAGES_MAX]; /* under STAGES: for the close */
	unsigned nstages, max_stages, growing;	       /* under STAGES */
	pthread_mutex_t scratch_lock;		       /* one digest at a time uses the scratch */
	struct vr_cuda_scratch scratch;		       /* under SCRATCH_LOCK; allocated at open */
	void *scratch_mem;			       /* the one allocation behind it */
};

struct chunk {
	CUmemGenericAllocationHandle h;
	uint64_t len;
};

/*
 * A file's bytes: one reserved virtual range (BASE, RESERVED bytes) with
 * physical chunks mapped end to end from its start (HELD bytes), so the
 * digest kernel gets one base pointer and a chunk can be exported alone.
 * Growth maps new chunks (sizes growing with the file, up to CHUNK_MAX) and
 * never copies; an outgrown reservation is replaced by a larger one with the
 * same chunks mapped into it.
 */
struct cuda_file {
	struct vr_dev_file hdr; /* first: the file knows its device */
	uint64_t size;
	CUdeviceptr base;
	uint64_t reserved, held;
	struct chunk *chunks;
	uint32_t count, cap;
	/* recorded after the file's last queued copy, memset or scrub, on WRITTEN_ON */
	cudaEvent_t written;
	cudaStream_t written_on;
};

/* Pinned staging lent to one writer (backend.h's struct vr_dev_stage). */
struct cuda_stage {
	struct vr_dev_stage hdr; /* first */
	cudaStream_t stream;
	int nslots;
	size_t slot_bytes;
	void *slot[VR_STAGING_SLOTS_MAX];
	cudaEvent_t done[VR_STAGING_SLOTS_MAX]; /* recorded after the slot's last upload */
	bool busy[VR_STAGING_SLOTS_MAX];	/* DONE is pending */
	int next;				/* the slot stage_slot gives next */
	int cur;				/* the slot it gave last; -1: none */
	struct cuda_stage *idle_next;		/* under the pool's STAGES */
};

static inline struct cuda_file *cf(struct vr_dev_file *f)
{
	return (struct cuda_file *)f;
}

/* cuda_errors.c: errors as errnos, the failed state, the policy's audit */
int cuda_err(struct cuda *c, cudaError_t e, const char *what);
int cuda_drv_err(struct cuda *c, CUresult r, const char *what);
void cuda_policy_violation(struct cuda *c, const char *why);
int cuda_select_dev(struct cuda *c);

/* cuda_context.c: the budget read again from the device after a refusal (1: it grew) */
int cuda_refresh_budget(struct cuda *c);

/* cuda_stage.c: the pool of pinned staging, lent to writers, and the writes through it */
int cuda_stages_open(struct cuda *c);
void cuda_stages_close(struct cuda *c);
int cuda_stage_new(void *ctx, struct vr_dev_file *file, struct vr_dev_stage **out);
int cuda_stage_slot(void *ctx, struct vr_dev_stage *stage, void **buf, size_t *cap);
int cuda_stage_write(void *ctx, struct vr_dev_stage *stage, uint64_t off, size_t len);
int cuda_stage_free(void *ctx, struct vr_dev_stage *stage);
int cuda_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf, size_t len);

/* cuda_io.c: the order of a file's upload work, reads and digests */
int cuda_queue_after(struct cuda *c, struct cuda_file *f, cudaStream_t s);
int cuda_mark_written(struct cuda *c, struct cuda_file *f);
int cuda_wait_written(struct cuda *c, struct cuda_file *f);
int cuda_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len);
int cuda_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32]);
int cuda_blake3(void *ctx, struct vr_dev_file *file, uint8_t out[32]);

/* cuda_file.c: a file's VMM range and its chunks */
int cuda_file_new(void *ctx, struct vr_dev_file **out);
int cuda_resize(void *ctx, struct vr_dev_file *file, uint64_t size);
uint64_t cuda_held(void *ctx, const struct vr_dev_file *file);
int cuda_file_free(void *ctx, struct vr_dev_file *file);

/* cuda_file.c: a file made again from chunks a keeper held across a restart */
int cuda_adopt(void *ctx, struct vr_dev_export *from, uint64_t size, struct vr_dev_file **out);
/* cuda_export.c: a file's chunks as descriptors for another process */
int cuda_export(void *ctx, struct vr_dev_file *file, struct vr_dev_export *out);

#endif
