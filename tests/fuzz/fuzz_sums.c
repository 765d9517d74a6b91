/* fuzz_sums.c - libFuzzer target: the SHA256SUMS parser, and what it promises of a result. */
#include "manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX] = "";

	if (vr_sums_parse((const char *)data, size, &m, why) != 0) {
		if (!why[0])
			abort(); /* every refusal says why */
		return 0;
	}
	for (size_t i = 0; i < m->count; i++) {
		const char *n = m->entries[i].name;

		/* sorted, unique, relative, normalized, and found again by name */
		if (i && strcmp(m->entries[i - 1].name, n) >= 0)
			abort();
		if (!n[0] || n[0] == '/' || strncmp(n, "./", 2) == 0 || strstr(n, "//") ||
		    strcmp(n, "..") == 0 || strncmp(n, "../", 3) == 0 || strstr(n, "/../") ||
		    (strlen(n) >= 3 && strcmp(n + strlen(n) - 3, "/..") == 0))
			abort();
		if (vr_manifest_find(m, n) != &m->entries[i])
			abort();
	}
	vr_manifest_free(m);
	return 0;
}
