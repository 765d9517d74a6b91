/* fuzz_b3sums.c - libFuzzer target: the checksums.blake3 parser, what it promises of a result,
 * and that it accepts nothing the SHA256SUMS parser (the more forgiving) reads otherwise. */
#include "manifest.h"
#include "manifest_names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* B (checksums.blake3) and S (the same text as a SHA256SUMS) list the same names and digests. */
static void same_as_sums(const struct vr_manifest *b, const struct vr_manifest *s)
{
	if (!s || s->count != b->count)
		abort();
	for (size_t i = 0; i < b->count; i++)
		if (strcmp(b->entries[i].name, s->entries[i].name) != 0 ||
		    memcmp(b->entries[i].digest, s->entries[i].digest, VR_DIGEST_SIZE) != 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vr_manifest *m = NULL, *s = NULL;
	char why[VR_WHY_MAX] = "";

	if (vr_b3sums_parse((const char *)data, size, &m, why) != 0) {
		if (!why[0])
			abort(); /* every refusal says why */
		return 0;
	}
	if (m->kind != VR_MANIFEST_B3SUMS || !m->allow_symlinks)
		abort();
	check_manifest_names(m);
	if (vr_sums_parse((const char *)data, size, &s, why) == 0)
		same_as_sums(m, s);
	else if (strcmp(why, "out of memory") != 0)
		abort(); /* b3sum's format is sha256sum's, stricter */
	vr_manifest_free(s);
	vr_manifest_free(m);
	return 0;
}
