/* map_write.c - maps a sealed file through libvram-client and stores into the mapping from the
 * host (host memory: the mock, or the CUDA test double): the store must fault (SIGSEGV); exits
 * 1 after "WROTE" if it went through. */
#include "vram_client.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	struct vr_client *c;
	struct vr_mapping *m;

	if (argc != 2 || vr_client_connect(argv[1], &c) != 0 ||
	    vr_client_map(c, argv[1], 0, &m) != 0 || m->size == 0) {
		fprintf(stderr, "map_write: cannot map %s\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	((volatile unsigned char *)m->ptr)[0] ^= 0xff;
	printf("WROTE\n");
	return 1;
}
