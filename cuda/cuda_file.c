/*
 * cuda_file.c - a CUDA file's memory: one reserved VMM range per file with
 * exportable cuMemCreate chunks mapped end to end in it; growth, trim, the
 * scrub of what is cut or freed, and the budget they take from.
 */
#include "cuda_private.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

/*
 * The invariant between a file's reservation, its chunk record and what is
 * mapped: the chunks lie end to end from BASE and cover HELD bytes, all inside
 * the RESERVED range (cuMemMap outside a reservation is refused by the driver,
 * or worse), and the file's SIZE within them. Checked after every change of
 * any of them in debug builds (SIZED: the size is settled too); add_chunk refuses a chunk that
 * would leave the range in every build.
 */
static void check_file(const struct cuda_file *f, bool sized)
{
#ifndef NDEBUG
	uint64_t sum = 0;

	for (uint32_t i = 0; i < f->count; i++)
		sum += f->chunks[i].len;
	assert(vr_dev_extents_ok(sum, f->held, f->reserved, f->base != 0, f->count, f->cap, sized,
				 f->size));
#else
	(void)f;
	(void)sized;
#endif
}

int cuda_file_new(void *ctx, struct vr_dev_file **out)
{
	struct cuda *c = ctx;
	struct cuda_file *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	ret = cuda_select_dev(c);
	if (ret == 0)
		ret = cuda_err(c, cudaEventCreateWithFlags(&f->written, cudaEventDisableTiming),
			       "cudaEventCreate");
	if (ret) {
		free(f);
		return ret;
	}
	*out = &f->hdr;
	return 0;
}

/* Takes LEN bytes of the budget; returns 0 or -ENOSPC. */
static int take_budget(struct cuda *c, uint64_t len)
{
	int ret = 0;

	pthread_mutex_lock(&c->acct);
	if (len > c->budget - c->used)
		ret = -ENOSPC;
	else
		c->used += len;
	pthread_mutex_unlock(&c->acct);
	return ret;
}

static void give_budget(struct cuda *c, uint64_t len)
{
	pthread_mutex_lock(&c->acct);
	c->used -= len;
	pthread_mutex_unlock(&c->acct);
}

static uint64_t round_grain(const struct cuda *c, uint64_t n)
{
	return (n + c->grain - 1) / c->grain * c->grain;
}

/* Maps H's first LEN bytes at P, read-write for this device. */
static int map_rw(struct cuda *c, CUdeviceptr p, uint64_t len, CUmemGenericAllocationHandle h)
{
	int ret = cuda_drv_err(c, c->drv.map(p, len, 0, h, 0), "cuMemMap");

	if (ret == 0) {
		ret = cuda_drv_err(c, c->drv.set_access(p, len, &c->rw, 1), "cuMemSetAccess");
		if (ret)
			c->drv.unmap(p, len);
	}
	return ret;
}

/* Makes F's reservation cover NEED bytes: a larger range with the same chunks mapped into
 * it (no copy), the old one given back. All or nothing. */
static int grow_reservation(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	uint64_t len = f->reserved ? f->reserved : RESERVE_MIN, off = 0;
	CUdeviceptr nb = 0;
	uint32_t i;
	int ret;

	if (need <= f->reserved)
		return 0;
	while (len < need)
		len = len > UINT64_MAX / 2 ? round_grain(c, need) : len * 2;
	ret = cuda_drv_err(c, c->drv.reserve(&nb, len, c->grain, 0, 0), "cuMemAddressReserve");
	if (ret)
		return ret == -ENOSPC ? -ENOMEM : ret;
	for (i = 0; i < f->count && ret == 0; off += f->chunks[i++].len)
		ret = map_rw(c, nb + off, f->chunks[i].len, f->chunks[i].h);
	if (ret == 0 && f->count)
		ret = cuda_wait_written(c, f); /* nothing queued may still use the old addresses */
	if (ret) {
		off = 0;
		for (uint32_t j = 0; j < i; off += f->chunks[j++].len)
			c->drv.unmap(nb + off, f->chunks[j].len);
		c->drv.addr_free(nb, len);
		return ret;
	}
	off = 0;
	for (i = 0; i < f->count; off += f->chunks[i++].len)
		c->drv.unmap(f->base + off, f->chunks[i].len);
	if (f->reserved)
		c->drv.addr_free(f->base, f->reserved);
	f->base = nb;
	f->reserved = len;
	check_file(f, false);
	return 0;
}

/* A new chunk of LEN bytes (budget taken by the caller), mapped at F's end, zeroed on UPLOAD. */
static int add_chunk(struct cuda *c, struct cuda_file *f, uint64_t len)
{
	struct cudaPointerAttributes attr;
	CUmemGenericAllocationHandle h;
	int ret;

	if (f->count == f->cap) {
		uint32_t ncap = f->cap ? f->cap * 2 : 4;
		struct chunk *n = realloc(f->chunks, sizeof(*n) * ncap);

		if (!n)
			return -ENOMEM;
		f->chunks = n;
		f->cap = ncap;
	}
	if (len > f->reserved - f->held) {
		vr_log(
		    LOG_ERR,
		    "BUG: cuda: a chunk of %llu bytes at %llu would leave the file's reservation "
		    "of %llu bytes; refused",
		    (unsigned long long)len, (unsigned long long)f->held,
		    (unsigned long long)f->reserved);
		return -EIO;
	}
	ret = cuda_drv_err(c, c->drv.create(&h, len, &c->prop, 0), "cuMemCreate");
	if (ret)
		return ret;
	ret = map_rw(c, f->base + f->held, len, h);
	if (ret == 0) {
		ret = cuda_err(
		    c, cudaPointerGetAttributes(&attr, (void *)(uintptr_t)(f->base + f->held)),
		    "cudaPointerGetAttributes");
		if (!ret && attr.type != cudaMemoryTypeDevice) {
			cuda_policy_violation(c, "an allocation is not device memory");
			ret = -EIO;
		}
		/* new physical memory holds whatever was there: zeros, like a hole */
		if (ret == 0)
			ret = cuda_err(c,
				       cudaMemsetAsync((void *)(uintptr_t)(f->base + f->held), 0,
						       len, c->upload),
				       "cudaMemset");
		if (ret) {
			cuda_wait_written(c, f);
			c->drv.unmap(f->base + f->held, len);
		}
	}
	if (ret) {
		c->drv.release(h);
		return ret;
	}
	f->chunks[f->count].h = h;
	f->chunks[f->count++].len = len;
	f->held += len;
	check_file(f, false);
	return 0;
}

/* Scrubs F's chunks from KEEP on, waits for that (and every upload before it), then unmaps
 * and frees them; returns the scrub's error (memory is freed regardless). A file leased when
 * the daemon stops (keep_shared) is not scrubbed: an importer's handle keeps the physical
 * memory, and its holder the bytes it verified (no probe says who still maps it here). */
static int drop_chunks(struct cuda *c, struct cuda_file *f, uint32_t keep)
{
	uint64_t at = f->held;
	int ret = 0;

	for (uint32_t i = f->count; i-- > keep && !f->hdr.keep_shared;) {
		at -= f->chunks[i].len;
		int e = cuda_err(c,
				 cudaMemsetAsync((void *)(uintptr_t)(f->base + at), 0,
						 f->chunks[i].len, c->upload),
				 "cudaMemset (scrub)");

		if (e && !ret)
			ret = e;
	}
	/* the scrub, and every upload queued before it, must be done before the memory goes */
	int e = f->count > keep ? cuda_wait_written(c, f) : 0;

	if (e && !ret)
		ret = e;
	while (f->count > keep) {
		struct chunk *ch = &f->chunks[--f->count];

		f->held -= ch->len;
		c->drv.unmap(f->base + f->held, ch->len);
		c->drv.release(ch->h);
		give_budget(c, ch->len);
	}
	check_file(f, false);
	return ret;
}

/*
 * Adds chunks until F covers NEED bytes, all or nothing. Each chunk's size is
 * chosen first and the reservation grown to take it: the policy may pick more
 * than NEED (slack for the next writes), which must still lie inside the
 * reservation (issue 20: the mock mapped past it and crashed).
 */
static int grow(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	uint32_t had = f->count;
	int ret = 0;

	while (ret == 0 && f->held < need) {
		uint64_t min, len = vr_dev_chunk_len(f->held, need, CHUNK_MAX, &min);

		/* the slack only when it fits: a nearly full device still gives what is needed */
		if (take_budget(c, len) != 0) {
			len = min;
			ret = take_budget(c, len);
			if (ret)
				break;
		}
		ret = grow_reservation(c, f, f->held + len);
		if (ret == 0)
			ret = add_chunk(c, f, len);
		if (ret)
			give_budget(c, len);
	}
	if (ret)
		drop_chunks(c, f, had);
	else
		ret = cuda_mark_written(c, f);
	return ret;
}

/* Zeroes what F holds past NEED (slack it keeps) on UPLOAD; returns 0 or -errno. */
static int scrub_slack(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	int ret = cuda_err(
	    c, cudaMemsetAsync((void *)(uintptr_t)(f->base + need), 0, f->held - need, c->upload),
	    "cudaMemset (scrub)");

	return ret ? ret : cuda_mark_written(c, f);
}

/*
 * Gives back what F holds past NEED: whole chunks, then the slack of the last
 * one, by moving its used part into an exact chunk (a device-to-device copy
 * of at most CHUNK_MAX bytes, before the seal's digests read it).
 */
static int trim(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	uint32_t keep = 0;
	uint64_t end = 0;
	int ret;

	while (keep < f->count && end < need)
		end += f->chunks[keep++].len;
	ret = drop_chunks(c, f, keep);
	if (ret || f->held <= need || f->count == 0)
		return ret;
	struct chunk *last = &f->chunks[f->count - 1];
	uint64_t start = f->held - last->len, used = need - start;
	CUmemGenericAllocationHandle h;
	CUdeviceptr tmp = 0;

	/* into a fresh chunk at a scratch address, then into the old one's place */
	ret = cuda_drv_err(c, c->drv.create(&h, used, &c->prop, 0), "cuMemCreate (trim)");
	if (ret)
		return scrub_slack(c, f, need); /* keeping the slack is no error */
	if (cuda_drv_err(c, c->drv.reserve(&tmp, used, c->grain, 0, 0), "cuMemAddressReserve") !=
	    0) {
		c->drv.release(h);
		return scrub_slack(c, f, need);
	}
	ret = map_rw(c, tmp, used, h);
	if (ret == 0)
		ret = cuda_err(c,
			       cudaMemcpyAsync((void *)(uintptr_t)tmp,
					       (const void *)(uintptr_t)(f->base + start), used,
					       cudaMemcpyDeviceToDevice, c->upload),
			       "cudaMemcpyAsync (trim)");
	if (ret == 0)
		ret = cuda_err(
		    c,
		    cudaMemsetAsync((void *)(uintptr_t)(f->base + start), 0, last->len, c->upload),
		    "cudaMemset (scrub)");
	if (ret == 0)
		ret = cuda_wait_written(c, f);
	if (ret == 0)
		c->drv.unmap(tmp, used);
	c->drv.addr_free(tmp, used);
	if (ret) {
		c->drv.release(h);
		return ret;
	}
	c->drv.unmap(f->base + start, last->len);
	c->drv.release(last->h);
	ret = map_rw(c, f->base + start, used, h);
	if (ret) {
		/* the bytes are in H alone now: without a mapping the file is lost */
		c->drv.release(h);
		give_budget(c, last->len);
		f->count--;
		f->held = start;
		/* its bytes past START are gone: the size must not reach past what is mapped */
		if (f->size > f->held)
			f->size = f->held;
		check_file(f, false);
		return -EIO;
	}
	give_budget(c, last->len - used);
	last->h = h;
	last->len = used;
	f->held = need;
	check_file(f, false);
	return 0;
}

int cuda_resize(void *ctx, struct vr_dev_file *file, uint64_t size)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	uint64_t need;
	int ret;

	if (size > UINT64_MAX - c->grain || (need = round_grain(c, size)) > c->budget)
		return -ENOSPC;
	if (atomic_load(&c->failed))
		return -EIO;
	/* growing inside what is held: its tail is zero already, no device work at all */
	if (size >= f->size && need == f->held) {
		f->size = size;
		return 0;
	}
	ret = cuda_select_dev(c);
	if (ret)
		return ret;
	if (need > f->held) {
		ret = grow(c, f, need);
		if (ret)
			return ret;
	}
	/* a cut is scrubbed, bytes past the new end reading as zero if the file regrows: here
	 * what stays held, in trim what is given back or kept as slack */
	if (size < f->size && size < need) {
		uint64_t to = f->size < need ? f->size : need;

		ret = cuda_err(
		    c,
		    cudaMemsetAsync((void *)(uintptr_t)(f->base + size), 0, to - size, c->upload),
		    "cudaMemset (scrub)");
		if (ret == 0)
			ret = cuda_mark_written(c, f);
	}
	/* a resize to the same size fits the memory to the file (the load is done) */
	if (ret == 0 && size <= f->size && need < f->held)
		ret = trim(c, f, need);
	if (ret == 0)
		f->size = size;
	check_file(f, true);
	return ret;
}

uint64_t cuda_held(void *ctx, const struct vr_dev_file *file)
{
	(void)ctx;
	return ((const struct cuda_file *)file)->held;
}

int cuda_file_free(void *ctx, struct vr_dev_file *file)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	int ret = cuda_select_dev(c);

	/* scrubbed and freed whatever the resize says: nothing of it may stay mapped */
	if (ret == 0)
		ret = drop_chunks(c, f, 0);
	else
		while (f->count) {
			f->held -= f->chunks[--f->count].len;
			c->drv.unmap(f->base + f->held, f->chunks[f->count].len);
			c->drv.release(f->chunks[f->count].h);
			give_budget(c, f->chunks[f->count].len);
		}
	if (f->reserved)
		c->drv.addr_free(f->base, f->reserved);
	/* the drop waited for the file's last upload work: the event is idle */
	cudaEventDestroy(f->written);
	free(f->chunks);
	free(f);
	return ret;
}
