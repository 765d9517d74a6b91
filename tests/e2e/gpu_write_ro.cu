/* gpu_write_ro.cu - maps a sealed file from a GPU mount through libvram-client and tries to
 * store into it from a kernel: prints "refused: <error>" (exit 0) when the read-only mapping
 * stops the store, "WROTE" (exit 1) when it went through. */
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
	cudaError_t e = cudaDeviceSynchronize();

	if (e == cudaSuccess)
		e = cudaGetLastError();
	if (e == cudaSuccess) {
		printf("WROTE\n");
		return 1;
	}
	printf("refused: %s\n", cudaGetErrorName(e));
	return 0; /* the context is broken now: nothing else runs in it */
}
