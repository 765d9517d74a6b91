/* gpu_write_ro.cu - maps a sealed file from a GPU mount through libvram-client and tries to
 * store into it from a kernel. The kernel must launch (no device, no kernel image for this
 * card or the wrong device are failures, exit 3), and the store must be refused with exactly
 * the illegal-address error: then it prints "refused: cudaErrorIllegalAddress" (exit 0). A
 * store that went through prints "WROTE" (exit 1); any other error is printed (exit 4). */
#include "vram_client.h"

#include <cuda_runtime.h>
#include <stdio.h>

__global__ void store(unsigned char *p)
{
	p[0] ^= 0xff;
}

int main(int argc, char **argv)
{
	struct vr_client *c;
	struct vr_mapping *m;

	if (argc != 2 || vr_client_connect(argv[1], &c) != 0 ||
	    vr_client_map(c, argv[1], 0, &m) != 0 || m->kind != VR_CLIENT_CUDA || m->size == 0) {
		fprintf(stderr, "gpu_write_ro: cannot map %s from GPU memory\n",
			argc > 1 ? argv[1] : "");
		return 2;
	}
	store<<<1, 1>>>((unsigned char *)m->ptr);
	cudaError_t e = cudaGetLastError();

	if (e != cudaSuccess) {
		printf("the kernel did not launch: %s (%s)\n", cudaGetErrorName(e),
		       cudaGetErrorString(e));
		return 3;
	}
	e = cudaDeviceSynchronize();
	if (e == cudaSuccess) {
		printf("WROTE\n");
		return 1;
	}
	if (e != cudaErrorIllegalAddress) {
		printf("not refused as expected: %s (%s)\n", cudaGetErrorName(e),
		       cudaGetErrorString(e));
		return 4;
	}
	printf("refused: %s\n", cudaGetErrorName(e));
	return 0; /* the context is broken now: nothing else runs in it */
}
