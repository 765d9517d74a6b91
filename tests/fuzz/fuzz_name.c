/* fuzz_name.c - libFuzzer target: the name syntax never accepts a bad name. */
#include "name.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int r = vr_name_syntax((const char *)data, size);

	if (r != 0 && r != -EINVAL && r != -ENAMETOOLONG)
		abort();
	if (r == 0) {
		/* an accepted name has none of the refused features */
		if (size == 0 || size > 255 || memchr(data, '/', size) || memchr(data, 0, size))
			abort();
		for (size_t i = 0; i < size; i++)
			if (data[i] < 0x20 || data[i] == 0x7f)
				abort();
		if ((size == 1 && data[0] == '.') || (size == 2 && !memcmp(data, "..", 2)))
			abort();
	}
	return 0;
}
