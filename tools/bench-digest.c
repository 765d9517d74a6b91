/* bench-digest.c - times the host fs-verity digest of a file on 1..N threads (for tools/bench-digest). */
#include "digest.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct stat st;
	uint8_t d[32];
	char hex[65];

	if (argc != 3) {
		fprintf(stderr, "usage: vr-bench-digest FILE THREADS\n"
				"Prints: seconds sha256:<digest> (file mapped and pre-faulted first)\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
		perror(argv[1]);
		return 1;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct vr_span span = {p, (size_t)st.st_size};
	double t0 = seconds();

	if (vr_fsv_digest_spans(&span, 1, (unsigned)atoi(argv[2]), d) != 0)
		return 1;
	double t1 = seconds();

	vr_hex(d, 32, hex);
	printf("%.4f sha256:%s\n", t1 - t0, hex);
	munmap(p, (size_t)st.st_size);
	close(fd);
	return 0;
}
