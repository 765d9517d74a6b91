/*
 * cuda_context.c - the CUDA backend's device: open (the GPU, the VRAM-only
 * policy, the driver's VMM calls, the digest scratch, the budget), close,
 * info, and the ops table that the other cuda_*.c files fill.
 */
#include "cuda_private.h"

#include "backends.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CC_MAJOR 6
#define MIN_TOTAL    ((uint64_t)1 << 30)

static void format_uuid(const cudaUUID_t *u, char *out, size_t cap)
{
	const unsigned char *b = (const unsigned char *)u->bytes;

	snprintf(out, cap,
		 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
		 b[14], b[15]);
}

static void cuda_close(void *ctx);

/*
 * Takes the driver's virtual memory calls through the runtime and checks the
 * device can share memory as POSIX descriptors; fills C's allocation
 * properties and granularity. Returns 0, or -ENODEV having said why.
 */
static int open_vmm(struct cuda *c)
{
	static const char *const names[] = {"cuMemCreate",
					    "cuMemRelease",
					    "cuMemAddressReserve",
					    "cuMemAddressFree",
					    "cuMemMap",
					    "cuMemUnmap",
					    "cuMemSetAccess",
					    "cuMemGetAllocationGranularity",
					    "cuMemExportToShareableHandle",
					    "cuMemImportFromShareableHandle",
					    "cuDeviceGetAttribute",
					    "cuGetErrorName"};
	void **slots[] = {
	    (void **)&c->drv.create,	 (void **)&c->drv.release,     (void **)&c->drv.reserve,
	    (void **)&c->drv.addr_free,	 (void **)&c->drv.map,	       (void **)&c->drv.unmap,
	    (void **)&c->drv.set_access, (void **)&c->drv.granularity, (void **)&c->drv.export_fd,
	    (void **)&c->drv.import_fd,	 (void **)&c->drv.attribute,   (void **)&c->drv.error_name};
	int vmm = 0, posix = 0;
	size_t g = 0, gmin = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum cudaDriverEntryPointQueryResult st = cudaDriverEntryPointSymbolNotFound;
		cudaError_t e = cudaGetDriverEntryPointByVersion(names[i], slots[i], 12000,
								 cudaEnableDefault, &st);

		if (e != cudaSuccess || st != cudaDriverEntryPointSuccess || !*slots[i]) {
			vr_log(LOG_ERR,
			       "cuda: the driver lacks %s (%s; a CUDA 12 driver is needed)",
			       names[i], cudaGetErrorName(e));
			return -ENODEV;
		}
	}
	if (c->drv.attribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
			     c->device) != CUDA_SUCCESS ||
	    c->drv.attribute(&posix,
			     CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
			     c->device) != CUDA_SUCCESS ||
	    !vmm || !posix) {
		vr_log(LOG_ERR,
		       "cuda: device %d has no virtual memory management with POSIX "
		       "descriptors (needed to hold files as shareable ranges)",
		       c->device);
		return -ENODEV;
	}
	memset(&c->prop, 0, sizeof(c->prop));
	c->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	c->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	c->prop.location.id = c->device;
	c->prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	memset(&c->rw, 0, sizeof(c->rw));
	c->rw.location = c->prop.location;
	c->rw.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	/* sizes and addresses in units of the recommended granularity, which must be a multiple
	 * of the minimum the driver enforces */
	if (cuda_drv_err(c, c->drv.granularity(&gmin, &c->prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
			 "cuMemGetAllocationGranularity (minimum)") != 0 ||
	    cuda_drv_err(c, c->drv.granularity(&g, &c->prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
			 "cuMemGetAllocationGranularity") != 0 ||
	    g == 0 || gmin == 0 || g % gmin || g % VR_FSV_BLOCK_SIZE || CHUNK_MAX % g ||
	    RESERVE_MIN % g) {
		vr_log(LOG_ERR,
		       "cuda: allocation granularity %zu bytes (minimum %zu) cannot be used", g,
		       gmin);
		return -ENODEV;
	}
	c->grain = g;
	return 0;
}

/*
 * Allocates the digest scratch once, for the largest file FREE_B bytes could
 * hold (about 0.8 % of it): the level buffers, the base-pointer table and the digest,
 * carved from one cudaMalloc. Returns 0 or -errno.
 */
static int alloc_scratch(struct cuda *c, size_t free_b)
{
	struct vr_cuda_scratch *sc = &c->scratch;
	uint64_t level_bytes;
	uint8_t *p;
	int ret;

	vr_cuda_scratch_size(free_b, CHUNK_MAX, &sc->max_blocks, &sc->max_extents, &level_bytes);
	/* rounded to 256 bytes: the kernel reads the level buffers 16 bytes at a time, and a
	 * misaligned vector load is a sticky error (compute-sanitizer found it on an H200) */
	uint64_t table_bytes = (((uint64_t)sc->max_extents + 2) * sizeof(void *) + 255) & ~255ULL;
	uint64_t total = table_bytes + level_bytes + 256;

	ret = cuda_err(c, cudaMalloc(&c->scratch_mem, total), "cudaMalloc (digest scratch)");
	if (ret)
		return ret;
	p = c->scratch_mem;
	sc->ext = (const uint8_t **)p;
	sc->lvl = sc->ext + sc->max_extents;
	sc->out = p + table_bytes;
	sc->a = sc->out + 256; /* 256: keeps the level buffers aligned */
	sc->b = sc->a + sc->max_blocks * VR_DIGEST_SIZE;
	return 0;
}

/* Checks that the GPU P names is there. Returns 0 or -ENODEV, having said why. */
static int find_device(const struct vr_backend_params *p)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);

	if (e != cudaSuccess) {
		int drv_v = 0, rt_v = 0;

		/* which versions met: a runtime newer than the driver cannot open it */
		if (cudaDriverGetVersion(&drv_v) != cudaSuccess)
			drv_v = 0;
		if (cudaRuntimeGetVersion(&rt_v) != cudaSuccess)
			rt_v = 0;
		/* under backend=auto a machine without a GPU is ordinary: said, not as an error */
		vr_log(p->probe ? LOG_INFO : LOG_ERR,
		       "cuda: no GPU usable here: %s (%s); driver API %d, runtime %d",
		       cudaGetErrorName(e), cudaGetErrorString(e), drv_v, rt_v);
		return -ENODEV;
	}
	if (p->device >= count) {
		vr_log(LOG_ERR, "cuda: device=%d but %d GPU(s) present", p->device, count);
		return -ENODEV;
	}
	return 0;
}

/*
 * The VRAM-only policy: file bytes never in host-shared, managed or mapped
 * memory. Returns 0, or -ENODEV having audited why the device is refused.
 */
static int check_policy(struct cuda *c, const struct cudaDeviceProp *prop)
{
	char why[512];

	why[0] = '\0';
	if (prop->integrated)
		snprintf(why, sizeof(why), "%s is integrated (shares host memory)", prop->name);
	else if (prop->major < MIN_CC_MAJOR)
		snprintf(why, sizeof(why), "%s has compute capability %d.%d, below 6.0", prop->name,
			 prop->major, prop->minor);
	else if ((uint64_t)prop->totalGlobalMem < MIN_TOTAL)
		snprintf(why, sizeof(why), "%s has %zu bytes of memory, below 1 GiB", prop->name,
			 prop->totalGlobalMem);
	if (why[0]) {
		cuda_policy_violation(c, why);
		return -ENODEV;
	}
	return 0;
}

/*
 * Allocates the digest scratch, then sets the budget from the memory free
 * after it, less headroom. Returns 0 or -errno.
 */
static int set_budget(struct cuda *c)
{
	size_t free_b, total_b;
	int ret;

	ret = cuda_err(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
	if (ret)
		return ret;
	ret = alloc_scratch(c, free_b);
	if (ret)
		return ret;
	ret = cuda_err(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
	if (ret)
		return ret;
	/* headroom for digest scratch (0.8% of a file) and other users of the GPU */
	c->headroom = (uint64_t)total_b / 50 > MIN_TOTAL ? (uint64_t)total_b / 50 : MIN_TOTAL;
	c->budget = free_b > c->headroom ? (uint64_t)free_b - c->headroom : 0;
	c->budget_max = c->budget;
	return 0;
}

/*
 * After a refusal for want of memory: the budget becomes what the files hold
 * plus what the device has free now, less the headroom (another process may
 * have taken memory since open), never more than at open. Returns 1 when it grew, 0 when
 * not, or -errno.
 */
int cuda_refresh_budget(struct cuda *c)
{
	size_t free_b = 0, total_b = 0;
	int ret = cuda_err(c, cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo (budget)");

	if (ret)
		return ret;
	pthread_mutex_lock(&c->acct);
	uint64_t room = free_b > c->headroom ? (uint64_t)free_b - c->headroom : 0;
	uint64_t was = c->budget, now;

	now = c->used + room < c->budget_max ? c->used + room : c->budget_max;
	c->budget = now;
	pthread_mutex_unlock(&c->acct);
	if (now != was)
		vr_log(LOG_INFO,
		       "cuda: budget now %llu bytes (was %llu): %zu bytes free on device %d",
		       (unsigned long long)now, (unsigned long long)was, free_b, c->device);
	return now > was;
}

/* Fills what info reports of the device, constant from here on. */
static void fill_info(struct cuda *c, const struct cudaDeviceProp *prop)
{
	strcpy(c->info.backend, "cuda");
	c->info.index = c->device;
	snprintf(c->info.name, sizeof(c->info.name), "%s", prop->name);
	format_uuid(&prop->uuid, c->info.uuid, sizeof(c->info.uuid));
	c->info.cc_major = prop->major;
	c->info.cc_minor = prop->minor;
	c->info.integrated = false;
}

/*
 * Opens device P->device: finds it, checks the policy and the driver's VMM
 * calls, takes the digest scratch and the budget, then the pool of pinned staging.
 * Anything that fails undoes what was done (cuda_close).
 */
static int cuda_open(const struct vr_backend_params *p, void **ctx)
{
	struct cudaDeviceProp prop;
	struct cuda *c;
	int ret;

	ret = find_device(p);
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = vr_backend_staging(p, &c->g);
	if (ret) {
		free(c);
		return ret;
	}
	c->device = p->device;
	c->audit = p->audit;
	pthread_mutex_init(&c->acct, NULL);
	pthread_mutex_init(&c->stages, NULL);
	pthread_cond_init(&c->stage_back, NULL);
	pthread_mutex_init(&c->scratch_lock, NULL);
	ret = cuda_select_dev(c);
	if (ret)
		goto fail;
	ret = cuda_err(c, cudaGetDeviceProperties(&prop, c->device), "cudaGetDeviceProperties");
	if (ret)
		goto fail;
	ret = check_policy(c, &prop);
	if (ret)
		goto fail;
	ret = open_vmm(c);
	if (ret)
		goto fail;
	ret = set_budget(c);
	if (ret)
		goto fail;
	fill_info(c, &prop);
	ret = cuda_stages_open(c);
	if (ret)
		goto fail;
	int drv_v = 0, rt_v = 0;

	/* the versions, for reports: a runtime newer than the driver is the usual open failure */
	cuda_err(c, cudaDriverGetVersion(&drv_v), "cudaDriverGetVersion");
	cuda_err(c, cudaRuntimeGetVersion(&rt_v), "cudaRuntimeGetVersion");
	vr_log(LOG_INFO,
	       "cuda: device %d %s (%s), cc %d.%d, %llu bytes usable; driver API %d.%d, runtime "
	       "%d.%d, granularity %llu; staging %zu KiB x %u slots x %u stages",
	       c->device, prop.name, c->info.uuid, prop.major, prop.minor,
	       (unsigned long long)c->budget, drv_v / 1000, drv_v % 1000 / 10, rt_v / 1000,
	       rt_v % 1000 / 10, (unsigned long long)c->grain, c->g.slot >> 10, c->g.slots,
	       c->g.stages);
	*ctx = c;
	return 0;
fail:
	cuda_close(c);
	return ret ? ret : -ENODEV;
}

static void cuda_close(void *ctx)
{
	struct cuda *c = ctx;

	if (cuda_select_dev(c) == 0) {
		cuda_stages_close(c);
		if (c->scratch_mem)
			cudaFree(c->scratch_mem);
	}
	pthread_mutex_destroy(&c->acct);
	pthread_mutex_destroy(&c->stages);
	pthread_cond_destroy(&c->stage_back);
	pthread_mutex_destroy(&c->scratch_lock);
	free(c);
}

static int cuda_info(void *ctx, struct vr_device_info *out)
{
	struct cuda *c = ctx;

	*out = c->info;
	out->failed = atomic_load(&c->failed);
	pthread_mutex_lock(&c->acct);
	out->total_bytes = c->budget;
	out->free_bytes = c->budget - c->used;
	pthread_mutex_unlock(&c->acct);
	return 0;
}

const struct vr_backend_ops vr_cuda_ops = {
    .name = "cuda",
    .open = cuda_open,
    .close = cuda_close,
    .info = cuda_info,
    .file_new = cuda_file_new,
    .resize = cuda_resize,
    .write = cuda_write,
    .read = cuda_read,
    .fsverity = cuda_fsverity,
    .blake3 = cuda_blake3,
    .held = cuda_held,
    .export = cuda_export,
    .keep = cuda_export,
    .adopt = cuda_adopt,
    .stage_new = cuda_stage_new,
    .stage_slot = cuda_stage_slot,
    .stage_write = cuda_stage_write,
    .stage_free = cuda_stage_free,
    .file_free = cuda_file_free,
};
