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

/* Maps H (LEN bytes, the whole allocation, at offset 0 as the driver requires) at P, read-write
 * for this device. */
static int map_rw(struct cuda *c, CUdeviceptr p, uint64_t len, CUmemGenericAllocationHandle h)
{
	int ret = cuda_drv_err(c, c->drv.map(p, len, 0, h, 0), "cuMemMap");

	if (ret == 0) {
		ret = cuda_drv_err(c, c->drv.set_access(p, len, &c->rw, 1), "cuMemSetAccess");
		if (ret)
			cuda_drv_err(c, c->drv.unmap(p, len), "cuMemUnmap (undo)");
	}
	return ret;
}

/* Unmaps N chunks CH mapped end to end from P; logs any refusal (nothing to undo). */
static void unmap_all(struct cuda *c, CUdeviceptr p, const struct chunk *ch, uint32_t n)
{
	for (uint32_t i = 0; i < n; p += ch[i++].len)
		cuda_drv_err(c, c->drv.unmap(p, ch[i].len), "cuMemUnmap");
}

/*
 * Maps N chunks CH end to end from P, then opens them read-write with one
 * cuMemSetAccess over the whole range (the driver may wait for device work
 * at each: one call, not one per chunk). All or nothing.
 */
static int map_all(struct cuda *c, CUdeviceptr p, const struct chunk *ch, uint32_t n)
{
	uint64_t off = 0;
	uint32_t i;
	int ret = 0;

	for (i = 0; i < n; off += ch[i++].len) {
		ret = cuda_drv_err(c, c->drv.map(p + off, ch[i].len, 0, ch[i].h, 0), "cuMemMap");
		if (ret)
			break;
	}
	if (ret == 0 && off)
		ret = cuda_drv_err(c, c->drv.set_access(p, off, &c->rw, 1), "cuMemSetAccess");
	if (ret)
		unmap_all(c, p, ch, i); /* the I chunks before the refusal, or all N */
	return ret;
}

/* Makes F's reservation cover NEED bytes: a larger range with the same chunks mapped into
 * it (no copy), the old one given back. All or nothing. */
static int grow_reservation(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	uint64_t len = f->reserved ? f->reserved : RESERVE_MIN;
	CUdeviceptr nb = 0;
	int ret;

	if (need <= f->reserved)
		return 0;
	while (len < need)
		len = len > UINT64_MAX / 2 ? round_grain(c, need) : len * 2;
	ret = cuda_drv_err(c, c->drv.reserve(&nb, len, c->grain, 0, 0), "cuMemAddressReserve");
	if (ret)
		return ret == -ENOSPC ? -ENOMEM : ret;
	ret = map_all(c, nb, f->chunks, f->count);
	bool mapped = ret == 0;

	if (ret == 0 && f->count)
		ret = cuda_wait_written(c, f); /* nothing queued may still use the old addresses */
	if (ret) {
		if (f->count && mapped)
			unmap_all(c, nb, f->chunks, f->count);
		cuda_drv_err(c, c->drv.addr_free(nb, len), "cuMemAddressFree (undo)");
		return ret;
	}
	unmap_all(c, f->base, f->chunks, f->count);
	if (f->reserved)
		cuda_drv_err(c, c->drv.addr_free(f->base, f->reserved), "cuMemAddressFree");
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
	/* the scrub follows the file's uploads queued on a stage's stream */
	int ret = f->count > keep ? cuda_queue_after(c, f, c->upload) : 0;

	for (uint32_t i = f->count; i-- > keep && !f->hdr.keep_shared && !f->hdr.kept;) {
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

/* Takes LEN bytes of the budget and maps a new chunk of them at F's end; all or nothing. */
static int add_len(struct cuda *c, struct cuda_file *f, uint64_t len)
{
	int ret = take_budget(c, len);

	if (ret)
		return ret;
	ret = grow_reservation(c, f, f->held + len);
	if (ret == 0)
		ret = add_chunk(c, f, len);
	if (ret)
		give_budget(c, len);
	return ret;
}

/*
 * Adds chunks until F covers NEED bytes, all or nothing. Each chunk's size is
 * chosen first and the reservation grown to take it: the policy may pick more
 * than NEED (slack for the next writes), which must still lie inside the
 * reservation (issue 20: the mock mapped past it and crashed). The slack is
 * dropped when the budget or the driver refuses it (another process took
 * memory: the budget is read again from the device), so a nearly full device
 * still gives what is needed.
 */
static int grow(struct cuda *c, struct cuda_file *f, uint64_t need)
{
	uint32_t had = f->count;
	int ret = 0;

	while (ret == 0 && f->held < need) {
		uint64_t min, len = vr_dev_chunk_len(f->held, need, CHUNK_MAX, &min);

		ret = add_len(c, f, len);
		/* refused (the budget, or the driver: another process took memory): the budget
		 * is read again from the device; then the least that serves, when that is less
		 * or the budget grew back */
		if (ret == -ENOSPC) {
			int grew = cuda_refresh_budget(c);

			if (len > min || grew > 0)
				ret = add_len(c, f, min);
		}
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
 * Moves the used USED bytes of F's last chunk into chunk H of exactly that
 * size: a new reservation gets the kept chunks and H mapped end to end, the
 * bytes are copied into H (a device-to-device copy of at most CHUNK_MAX
 * bytes, before the seal's digests read it) and the old tail scrubbed; only
 * then is the old layout dropped. The file is mapped at every moment: on any
 * failure the new layout goes and the old one stays whole.
 */
static int swap_tail(struct cuda *c, struct cuda_file *f, CUmemGenericAllocationHandle h,
		     uint64_t used)
{
	struct chunk *last = &f->chunks[f->count - 1], old = *last;
	uint64_t start = f->held - last->len;
	CUdeviceptr nb = 0;
	int ret;

	ret = cuda_drv_err(c, c->drv.reserve(&nb, f->reserved, c->grain, 0, 0),
			   "cuMemAddressReserve (trim)");
	if (ret)
		return ret;
	*last = (struct chunk){h, used};
	ret = map_all(c, nb, f->chunks, f->count);
	*last = old;
	if (ret == 0) {
		ret = cuda_err(c,
			       cudaMemcpyAsync((void *)(uintptr_t)(nb + start),
					       (const void *)(uintptr_t)(f->base + start), used,
					       cudaMemcpyDeviceToDevice, c->upload),
			       "cudaMemcpyAsync (trim)");
		if (ret == 0)
			ret = cuda_err(c,
				       cudaMemsetAsync((void *)(uintptr_t)(f->base + start), 0,
						       old.len, c->upload),
				       "cudaMemset (scrub)");
		/* both ranges stay mapped until the copy and the scrub are done, failed or not */
		int e = cuda_wait_written(c, f);

		ret = ret ? ret : e;
		*last = (struct chunk){h, used};
		if (ret)
			unmap_all(c, nb, f->chunks, f->count);
		*last = old;
	}
	if (ret) {
		cuda_drv_err(c, c->drv.addr_free(nb, f->reserved), "cuMemAddressFree (undo)");
		return ret;
	}
	/* the new layout holds the bytes: now the old one goes */
	unmap_all(c, f->base, f->chunks, f->count);
	cuda_drv_err(c, c->drv.addr_free(f->base, f->reserved), "cuMemAddressFree");
	cuda_drv_err(c, c->drv.release(old.h), "cuMemRelease");
	give_budget(c, old.len - used);
	*last = (struct chunk){h, used};
	f->base = nb;
	f->held = start + used;
	check_file(f, false);
	return 0;
}

/*
 * Gives back what F holds past NEED: whole chunks, then the slack of the last
 * one, by moving its used part into an exact chunk (swap_tail). A refusal on
 * the way keeps the slack, scrubbed: the file stays whole, and that is no error
 * unless the device failed.
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
	uint64_t used = need - (f->held - f->chunks[f->count - 1].len);
	CUmemGenericAllocationHandle h;

	ret = cuda_drv_err(c, c->drv.create(&h, used, &c->prop, 0), "cuMemCreate (trim)");
	if (ret == 0) {
		ret = swap_tail(c, f, h, used);
		if (ret)
			cuda_drv_err(c, c->drv.release(h), "cuMemRelease (undo)");
	}
	if (ret && atomic_load(&c->failed))
		return ret;
	return ret ? scrub_slack(c, f, need) : 0;
}

int cuda_resize(void *ctx, struct vr_dev_file *file, uint64_t size)
{
	struct cuda_file *f = cf(file);
	struct cuda *c = ctx;
	uint64_t need;
	int ret;

	if (size > UINT64_MAX - c->grain || (need = round_grain(c, size)) > c->budget_max)
		return -ENOSPC;
	if (atomic_load(&c->failed))
		return -EIO;
	/* growing inside what is held: its tail is zero already, no device work at all */
	if (size >= f->size && need == f->held) {
		f->size = size;
		return 0;
	}
	ret = cuda_select_dev(c);
	/* memsets and scrubs on UPLOAD follow the file's staged uploads */
	if (ret == 0)
		ret = cuda_queue_after(c, f, c->upload);
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

/* Releases F's first N imported chunks and its reservation, and frees it (an adoption failed). */
static void unadopt(struct cuda *c, struct cuda_file *f, uint32_t n, bool mapped)
{
	if (mapped)
		unmap_all(c, f->base, f->chunks, n);
	for (uint32_t i = 0; i < n; i++)
		c->drv.release(f->chunks[i].h);
	if (f->reserved)
		c->drv.addr_free(f->base, f->reserved);
	cudaEventDestroy(f->written);
	free(f->chunks);
	free(f);
}

/*
 * A file of SIZE bytes over the chunks FROM names (POSIX descriptors of VMM allocations, as
 * cuda_export gave them to a keeper before a restart): imported, mapped end to end in a new
 * reservation, read-write for this device, their bytes counted in the budget. The descriptors
 * stay the caller's (the driver keeps its own reference). All or nothing.
 */
int cuda_adopt(void *ctx, struct vr_dev_export *from, uint64_t size, struct vr_dev_file **out)
{
	struct cuda *c = ctx;
	struct vr_dev_file *file;
	struct cuda_file *f;
	uint64_t sum = 0;
	uint32_t i;
	int ret;

	if (from->kind != VR_EXPORT_CUDA_FD || (size == 0) != (from->count == 0))
		return -EINVAL;
	for (i = 0; i < from->count; i++) {
		if (from->lens[i] == 0 || from->lens[i] % c->grain)
			return -EINVAL;
		sum += from->lens[i];
	}
	if (sum < size || (from->count && sum - from->lens[from->count - 1] >= size))
		return -EINVAL;
	ret = cuda_file_new(ctx, &file);
	if (ret)
		return ret;
	f = cf(file);
	f->chunks = calloc(from->count ? from->count : 1, sizeof(*f->chunks));
	ret = f->chunks ? 0 : -ENOMEM;
	for (i = 0; i < from->count && ret == 0; i++) {
		ret = cuda_drv_err(c,
				   c->drv.import_fd(&f->chunks[i].h, (void *)(intptr_t)from->fds[i],
						    CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR),
				   "cuMemImportFromShareableHandle");
		if (ret)
			break;
		f->chunks[i].len = from->lens[i];
		f->count = i + 1;
	}
	if (ret == 0 && sum)
		ret =
		    cuda_drv_err(c, c->drv.reserve(&f->base, sum, 0, 0, 0), "cuMemAddressReserve");
	if (ret == 0)
		f->reserved = sum;
	if (ret == 0 && sum && (ret = map_all(c, f->base, f->chunks, f->count)) == 0) {
		ret = take_budget(c, sum);
		if (ret)
			unmap_all(c, f->base, f->chunks, f->count);
	}
	if (ret) {
		unadopt(c, f, f->count, false);
		return ret;
	}
	f->cap = f->count;
	f->held = sum;
	f->size = size;
	check_file(f, true);
	*out = file;
	return 0;
}
