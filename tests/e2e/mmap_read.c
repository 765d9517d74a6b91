/* mmap_read.c - maps a file MAP_SHARED read-only, as llama.cpp's loader does, and prints the
 * SHA-256 of the mapped bytes; exits 2 if a writable shared mapping of it is granted. */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint8_t digest[VR_DIGEST_SIZE];
	char hex[2 * VR_DIGEST_SIZE + 1];
	struct stat st;
	void *p, *w;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: vr-mmap-read FILE\n");
		return 1;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
		fprintf(stderr, "%s: %s\n", argv[1],
			fd < 0 ? strerror(errno) : "empty or unreadable");
		return 1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mmap MAP_SHARED of %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	vr_sha256(p, (size_t)st.st_size, digest);
	vr_hex(digest, VR_DIGEST_SIZE, hex);
	printf("%s\n", hex);
	w = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	munmap(p, (size_t)st.st_size);
	close(fd);
	if (w != MAP_FAILED) {
		fprintf(stderr, "a writable shared mapping of %s was granted\n", argv[1]);
		return 2;
	}
	return 0;
}
