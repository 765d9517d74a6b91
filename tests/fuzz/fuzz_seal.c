/* fuzz_seal.c - libFuzzer target: the strict seal parser, and a re-encode of what it accepts. */
#include "seal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vr_seal *s = malloc(sizeof(*s)), *back = malloc(sizeof(*back));
	const char *why = NULL;
	char *json;

	if (s && back && vr_seal_parse((const char *)data, size, s, &why) == 0) {
		/* what parses must re-encode and parse back to the same seal */
		if (vr_seal_to_json(s, &json) != 0)
			abort();
		if (vr_seal_parse(json, strlen(json), back, &why) != 0 ||
		    memcmp(s, back, sizeof(*s)) != 0)
			abort();
		free(json);
	} else if (s && back && why == NULL) {
		abort(); /* every refusal says why */
	}
	free(s);
	free(back);
	return 0;
}
