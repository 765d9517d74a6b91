/* fuzz_oms.c - libFuzzer target: the OMS bundle parser and verifier, trusting the reference
 * vector's key (tests/data/oms), so its model.sig in the corpus reaches the statement. */
#include "manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "-----BEGIN PUBLIC KEY-----\n"
			  "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEsu6rZGBTjxtvRWPMixT+3HyndV0J0Ybt\n"
			  "aHZUcO4DEK+OJHO/4e32bb/fbJKSpRgcBsIpKLcVijUomyFOERbd7u+BTPSUjGZD\n"
			  "Qq6J7lTvp/EAXQGOKxW9RP0MGX3qAkvi\n"
			  "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vr_trust *trust;
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX] = "";
	struct sha256_ctx c;
	uint8_t d[32];

	if (!trust && vr_trust_from_pem(key, strlen(key), &trust, why) != 0)
		abort();
	if (vr_oms_verify((const char *)data, size, trust, &m, why) != 0) {
		if (!why[0])
			abort(); /* every refusal says why */
		return 0;
	}
	/* accepted: signed by the trusted key, and the subject covers exactly these resources */
	if (strcmp(m->key_hint, vr_trust_hint(trust, 0)) != 0)
		abort();
	sha256_init(&c);
	for (size_t i = 0; i < m->count; i++) {
		if (i && strcmp(m->entries[i - 1].name, m->entries[i].name) >= 0)
			abort();
		sha256_update(&c, 32, m->entries[i].digest);
	}
	sha256_digest(&c, 32, d);
	if (memcmp(d, m->subject, 32) != 0)
		abort();
	vr_manifest_free(m);
	return 0;
}
