/* fuzz_sums.c - libFuzzer target: the SHA256SUMS parser, and what it promises of a result. */
#include "manifest.h"
#include "manifest_names.h"

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
	check_manifest_names(m);
	vr_manifest_free(m);
	return 0;
}
