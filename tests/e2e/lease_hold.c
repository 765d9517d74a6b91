/* lease_hold.c - holds a map of a sealed file through libvram-client and answers commands read
 * from stdin, one a line, each with one line on stdout:
 *   sum          the SHA-256 of the mapped bytes as hex ("zeros" when every byte is zero)
 *   verify       vr_client_verify's result: "verify RET"
 *   keep         keeps a copy of the mapping (the same memory; a file of one chunk, up to 64
 *                KiB) and unmaps through the library, as a client that ends its lease but
 *                keeps its mapping: "unmap RET"
 *   revoke PATH  vr_client_revoke's result on another connection: "revoke RET N"
 * Exits 0 at the end of stdin. Usage: vr-lease-hold FILE (or "-": no map, revoke only). */
#include "digest.h"
#include "vram_client.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* The bytes in view: the library's mapping, or the copy kept past the unmap. */
static const unsigned char *bytes;
static size_t size;

static void sum(void)
{
	uint8_t digest[VR_DIGEST_SIZE];
	char hex[2 * VR_DIGEST_SIZE + 1];
	size_t i = 0;

	while (i < size && bytes[i] == 0)
		i++;
	if (i == size) {
		printf("zeros\n");
		return;
	}
	vr_sha256(bytes, size, digest);
	vr_hex(digest, VR_DIGEST_SIZE, hex);
	printf("%s\n", hex);
}

int main(int argc, char **argv)
{
	struct vr_client *c = NULL;
	struct vr_mapping *m = NULL;
	char line[4200];

	if (argc != 2) {
		fprintf(stderr, "usage: vr-lease-hold FILE|-\n");
		return 2;
	}
	if (strcmp(argv[1], "-") != 0 &&
	    (vr_client_connect(argv[1], &c) != 0 || vr_client_map(c, argv[1], 0, &m) != 0)) {
		fprintf(stderr, "lease_hold: cannot map %s: %s\n", argv[1],
			c ? vr_client_error(c) : "no connection");
		return 2;
	}
	if (m) {
		bytes = m->ptr;
		size = m->size;
		printf("mapped %zu\n", size);
	}
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "sum") == 0 && bytes) {
			sum();
		} else if (strcmp(line, "verify") == 0 && m) {
			printf("verify %d\n", vr_client_verify(c, m));
		} else if (strcmp(line, "keep") == 0 && m) {
			/* a second mapping of the same pages (one chunk: one mapping) */
			void *copy = mremap((void *)m->ptr, 0, size, MREMAP_MAYMOVE);

			if (copy == MAP_FAILED) {
				printf("keep failed\n");
			} else {
				bytes = copy;
				printf("unmap %d\n", vr_client_unmap(c, m));
				m = NULL;
			}
		} else if (strncmp(line, "revoke ", 7) == 0) {
			struct vr_client *r = NULL;
			unsigned n = 0;
			int ret = vr_client_connect(line + 7, &r);

			if (ret == 0)
				ret = vr_client_revoke(r, line + 7, &n);
			printf("revoke %d %u\n", ret, n);
			vr_client_close(r);
		} else {
			printf("unknown\n");
		}
		fflush(stdout);
	}
	vr_client_close(c);
	return 0;
}
