/* replay.c - runs a fuzz target over every file of a corpus folder, so gcc builds test it too. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int files = 0;

	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			f = fopen(path, "rb");
			if (!f)
				continue;
			uint8_t *buf = malloc(1 << 20);
			size_t n = fread(buf, 1, 1 << 20, f);

			fclose(f);
			LLVMFuzzerTestOneInput(buf, n);
			free(buf);
			files++;
		}
		closedir(d);
	}
	/* a target that aborts never gets here */
	printf("%d passed, 0 failed\n", files);
	return files > 0 ? 0 : 1;
}
