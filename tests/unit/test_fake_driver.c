/*
 * test_fake_driver.c - the CUDA driver double (tests/fake/fake_cuda_driver.c) refuses what the
 * driver refuses: each check here is a call the double once accepted (issue 24), so a test of
 * the CUDA backend or the client on it cannot pass where the card would fail.
 */
#include "check.h"
#include "fake_cuda_driver.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define G ((size_t)2 << 20)

static CUmemAllocationProp prop(void)
{
	CUmemAllocationProp p = {0};

	p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p.location.id = 0;
	p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
	return p;
}

static CUmemGenericAllocationHandle make(size_t size)
{
	CUmemAllocationProp p = prop();
	CUmemGenericAllocationHandle h = 0;

	CHECK_EQ(cuMemCreate(&h, size, &p, 0), CUDA_SUCCESS);
	return h;
}

static CUmemAccessDesc access_for(int dev, CUmemAccess_flags flags)
{
	CUmemAccessDesc d = {{CU_MEM_LOCATION_TYPE_DEVICE, dev}, flags};

	return d;
}

/* Whether a host load at P kills a child process with SIGSEGV. */
static bool host_load_faults(const volatile uint8_t *p)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		_exit(p[0] == 0x42 ? 0 : 3);
	}
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	       WTERMSIG(status) == SIGSEGV;
}

/* Offsets, partial maps, overlaps anywhere in the range, flags, alignments. */
static void mapping_rules(void)
{
	CUdeviceptr base = 0, odd = 0;
	CUmemGenericAllocationHandle small = make(G), big = make(3 * G);

	CHECK_EQ(cuMemAddressReserve(&base, 8 * G, 0, 0, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, 2 * G, G, big, 0), CUDA_ERROR_INVALID_VALUE);	    /* an offset */
	CHECK_EQ(cuMemMap(base, 2 * G, 0, big, 0), CUDA_ERROR_INVALID_VALUE);	    /* part of it */
	CHECK_EQ(cuMemMap(base, 3 * G, 0, big, 1), CUDA_ERROR_INVALID_VALUE);	    /* flags */
	CHECK_EQ(cuMemMap(base + 8 * G, G, 0, small, 0), CUDA_ERROR_INVALID_VALUE); /* outside */
	/* something mapped in the middle of the range, its ends free */
	CHECK_EQ(cuMemMap(base + G, G, 0, small, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, 3 * G, 0, big, 0), CUDA_ERROR_INVALID_VALUE);
	CHECK_EQ(cuMemAddressFree(base, 8 * G), CUDA_ERROR_INVALID_VALUE); /* still mapped */
	CHECK_EQ(cuMemUnmap(base + G, G), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, 3 * G, 0, big, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemUnmap(base, 3 * G), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressFree(base, 4 * G), CUDA_ERROR_INVALID_VALUE); /* another size */
	CHECK_EQ(cuMemAddressFree(base, 8 * G), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressReserve(&odd, 6 * G, 3 * G, 0, 0), CUDA_ERROR_INVALID_VALUE);
	CHECK_EQ(cuMemAddressReserve(&odd, 6 * G, 0, 0, 1), CUDA_ERROR_INVALID_VALUE);
	CHECK_EQ(cuMemAddressReserve(&odd, 6 * G, 4 * G, 0, 0), CUDA_SUCCESS);
	CHECK_EQ(odd % (4 * G), 0);
	CHECK_EQ(cuMemAddressFree(odd, 6 * G), CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(small), CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(big), CUDA_SUCCESS);
}

/* Allocation properties, export types, devices, granularities. */
static void property_rules(void)
{
	CUmemAllocationProp p = prop();
	CUmemGenericAllocationHandle h;
	CUdeviceptr base = 0;
	size_t gmin = 0, grec = 0;
	int fd = -1, one = 1;

	CHECK_EQ(cuMemCreate(&h, G, &p, 1), CUDA_ERROR_INVALID_VALUE); /* flags */
	p.location.id = 1;
	CHECK_EQ(cuMemCreate(&h, G, &p, 0), CUDA_ERROR_INVALID_VALUE); /* no device 1 */
	p = prop();
	p.win32HandleMetaData = &one;
	CHECK_EQ(cuMemCreate(&h, G, &p, 0), CUDA_ERROR_INVALID_VALUE); /* Windows metadata */
	p = prop();
	p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
	CHECK_EQ(cuMemCreate(&h, G, &p, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
		 CUDA_ERROR_INVALID_VALUE); /* not created to be shared */
	CHECK_EQ(cuMemRelease(h), CUDA_SUCCESS);
	h = make(G);
	CHECK_EQ(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 1),
		 CUDA_ERROR_INVALID_VALUE); /* flags */
	CHECK_EQ(cuMemAddressReserve(&base, G, 0, 0, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, G, 0, h, 0), CUDA_SUCCESS);
	CUmemAccessDesc d1 = access_for(1, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);

	CHECK_EQ(cuMemSetAccess(base, G, &d1, 1), CUDA_ERROR_INVALID_VALUE); /* no device 1 */
	CHECK_EQ(cuMemUnmap(base, G), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressFree(base, G), CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(h), CUDA_SUCCESS);
	/* the two granularities are two answers (VR_FAKE_CUDA_REC_GRAIN, set by main) */
	p = prop();
	CHECK_EQ(cuMemGetAllocationGranularity(&gmin, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
		 CUDA_SUCCESS);
	CHECK_EQ(cuMemGetAllocationGranularity(&grec, &p, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
		 CUDA_SUCCESS);
	CHECK_EQ(gmin, G);
	CHECK_EQ(grec, 2 * G);
}

/* A copy needs a live context current on the calling thread; the host cannot touch device
 * addresses unless the test peeks. */
static void context_and_host_rules(void)
{
	CUmemGenericAllocationHandle h = make(G);
	CUmemAccessDesc rw = access_for(0, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
	CUdeviceptr base = 0;
	CUcontext ctx = NULL, cur = (CUcontext)1;
	uint8_t byte = 0;

	CHECK_EQ(cuMemAddressReserve(&base, G, 0, 0, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemMap(base, G, 0, h, 0), CUDA_SUCCESS);
	CHECK_EQ(cuMemSetAccess(base, G, &rw, 1), CUDA_SUCCESS);
	CHECK_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur == NULL);
	CHECK_EQ(cuMemcpyDtoH(&byte, base, 1), CUDA_ERROR_INVALID_CONTEXT);
	CHECK_EQ(cuCtxPushCurrent(ctx), CUDA_ERROR_INVALID_CONTEXT);
	CHECK_EQ(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
	CHECK_EQ(cuCtxPushCurrent(ctx), CUDA_SUCCESS);
	CHECK_EQ(cuMemcpyDtoH(&byte, base, 1), CUDA_SUCCESS);
	CHECK_EQ(byte, 0x5c); /* new memory holds junk */
	CHECK_EQ(cuCtxPopCurrent(&cur), CUDA_SUCCESS);
	CHECK(cur == ctx);
	CHECK_EQ(cuCtxPopCurrent(&cur), CUDA_ERROR_INVALID_CONTEXT); /* nothing left */
	CHECK_EQ(cuMemcpyDtoH(&byte, base, 1), CUDA_ERROR_INVALID_CONTEXT);
	CHECK_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
	CHECK_EQ(cuCtxPushCurrent(ctx), CUDA_ERROR_INVALID_CONTEXT); /* released: gone */
	/* device memory is not host memory, until a test peeks at it */
	CHECK(host_load_faults((const uint8_t *)(uintptr_t)base));
	fake_vmm_peek(true);
	CHECK(!host_load_faults((const uint8_t *)(uintptr_t)base));
	fake_vmm_peek(false);
	CHECK_EQ(cuMemUnmap(base, G), CUDA_SUCCESS);
	CHECK_EQ(cuMemAddressFree(base, G), CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(h), CUDA_SUCCESS);
}

/* Memory whose descriptor is still held stays used after the exporter lets it go. */
static void export_holds_memory(void)
{
	size_t before = fake_vmm_allocated();
	CUmemGenericAllocationHandle h = make(4 * G);
	int fd = -1;

	CHECK_EQ(cuMemExportToShareableHandle(&fd, h, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
		 CUDA_SUCCESS);
	CHECK_EQ(cuMemRelease(h), CUDA_SUCCESS);
	CHECK_EQ(fake_vmm_allocated(), before + 4 * G); /* the descriptor holds it */
	close(fd);
	CHECK_EQ(fake_vmm_allocated(), before);
}

int main(void)
{
	int n = -1;

	setenv("VR_FAKE_CUDA_REC_GRAIN", "4194304", 1);
	CHECK_EQ(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED); /* before cuInit */
	CHECK_EQ(cuMemGetAllocationGranularity(&(size_t){0}, &(CUmemAllocationProp){0},
					       CU_MEM_ALLOC_GRANULARITY_MINIMUM),
		 CUDA_ERROR_NOT_INITIALIZED);
	CHECK_EQ(cuInit(1), CUDA_ERROR_INVALID_VALUE);
	CHECK_EQ(cuInit(0), CUDA_SUCCESS);
	CHECK_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
	CHECK_EQ(n, 1);
	mapping_rules();
	property_rules();
	context_and_host_rules();
	export_holds_memory();
	return check_summary();
}
