/* fuzz_oms.c - libFuzzer target: the OMS bundle parser and verifier, trusting the reference
 * vector's key and its certificate chain's root (tests/data/oms), so both model.sig files in the
 * corpus reach the statement (the certificate one until its chain expires in 2035). */
#include "manifest.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "-----BEGIN PUBLIC KEY-----\n"
			  "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEsu6rZGBTjxtvRWPMixT+3HyndV0J0Ybt\n"
			  "aHZUcO4DEK+OJHO/4e32bb/fbJKSpRgcBsIpKLcVijUomyFOERbd7u+BTPSUjGZD\n"
			  "Qq6J7lTvp/EAXQGOKxW9RP0MGX3qAkvi\n"
			  "-----END PUBLIC KEY-----\n";

/* tests/data/oms/certificate-ca-cert.pem */
static const char root[] = "-----BEGIN CERTIFICATE-----\n"
			   "MIID9DCCAlygAwIBAgIUMqXRfD5TlsabbQzC0slV583dfHowDQYJKoZIhvcNAQEL\n"
			   "BQAwEjEQMA4GA1UEAxMHcm9vdC1jYTAeFw0yNTA1MDIyMzM2MjhaFw0zNTA0MzAy\n"
			   "MzM2MjhaMBIxEDAOBgNVBAMTB3Jvb3QtY2EwggGiMA0GCSqGSIb3DQEBAQUAA4IB\n"
			   "jwAwggGKAoIBgQC/xiBPWRmrpY4j9XZCaED6T6/uObidGuCGAsjAEusms7M7qvTP\n"
			   "pStAW7IfZlx+50fUwbiSuBbZRhvX8rBjh9ta9zKioK0pFydrNWOeWXBG0EDiRYiz\n"
			   "lf7kH28H3Fp9M0wE1oNSCwb90yB6YIUnTUMuylgJtsvWe/dZMDu4mPgyTUk9ufyE\n"
			   "phTwLPew73USo6RPDn7IJdoEhh5/zlCGv5BewAzXfUN+OLk5tfZGU4CHcNHE98/N\n"
			   "DHTdGAtXJ50OZz9GcIa/kMTlzI3xOVylD5p//wXowbHcGKjwlVvIEmen5Hz30pxA\n"
			   "TkMYxg2QRmH/AX2vKktTp4NDdvstNA16e4UwHPaQDnE5pINXLnixsLMMTZcbnSzY\n"
			   "hMCVDFXSbhv5dzZ671iopWaNQQloNephR71+PtGpGomcwJ0/UNjxoHu+iFOdXx6q\n"
			   "poYUj/IGZNZ5S7OEr5SrHzCutckLIIdSjZSQDxS7nqXjRJY0P2kY2zcLDGBzq/It\n"
			   "5NjO/ZC62d1KWVMCAwEAAaNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E\n"
			   "BAMCAgQwHQYDVR0OBBYEFBBCw8dXtjNLnmpoacShTy1l742lMA0GCSqGSIb3DQEB\n"
			   "CwUAA4IBgQAcFEsJPeo7UhTcbX2cHVssGj3MUmcVZ6Ta+ysiYpz2q3sVtdeeK51D\n"
			   "nD2g8hzP53rmd6+XOgqcjPkFJR2387sDdwptfVQincoSo6KFa7CZ76w8zJfBGNBp\n"
			   "/rb2wygAM7/HRG6TfgD/wrgqfUBZ+VgNIzAbpSRvqRYrSeEfh1oJpeZA0OOgpldX\n"
			   "CGCGJbNWQIhX/J608mg2g2CiVO5ALT0d2VMjffymAL7rXx71UoZaOXlGbkB7Ykg7\n"
			   "Y1DgLBNGJ7IOpHMYCHggx3haKXs3Hk9bMGLJI5YRVi8b4lyksdOwvxLKqHLBIRbg\n"
			   "FQOYTT34nUwWv8uvA7X1tlSVVUtLMG+couscKcorQI6nuY44KqkwwK0v+fSmHyh7\n"
			   "UZOSTNdeWSMdMCJi+HLbbFcanW8WyHQ9qACmq2YIjMs6QH+xrKQkn7ARbpnrZnhq\n"
			   "F11pOL1EvJG/qooceoDcJDm4I1HNwd4UYmWOIJ+oaGBw3r8OA2mPKQ7r8yVE+SuX\n"
			   "fLFGLv//rKc=\n"
			   "-----END CERTIFICATE-----\n";

/* M's shards for entry E are as model_signing cuts a file: from 0, contiguous, shard_size each
 * but the last */
static bool cut_ok(const struct vr_manifest *m, const struct vr_manifest_entry *e)
{
	uint64_t at = 0;

	if (!m->shard_size)
		return e->shards == NULL;
	if (!e->nshards)
		return false;
	for (size_t k = 0; k < e->nshards; k++) {
		uint64_t len = e->shards[k].end - e->shards[k].start;

		if (e->shards[k].start != at || len == 0 || len > m->shard_size ||
		    (k + 1 < e->nshards && len != m->shard_size))
			return false;
		at = e->shards[k].end;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vr_trust *trust;
	struct vr_manifest *m = NULL;
	char why[VR_WHY_MAX] = "";

	if (!trust) {
		char both[sizeof(key) + sizeof(root)];

		snprintf(both, sizeof(both), "%s%s", key, root);
		if (vr_trust_from_pem(both, strlen(both), &trust, why) != 0)
			abort();
	}
	if (vr_oms_verify((const char *)data, size, trust, &m, why) != 0) {
		if (!why[0])
			abort(); /* every refusal says why */
		return 0;
	}
	/* accepted: signed by the trusted key (or a chain to the root), the entries sorted and
	 * unique, shards cut as model_signing cuts them (the subject's check is the verifier's:
	 * over the listed order, which the manifest does not keep) */
	if (!m->cert_signed && strcmp(m->key_hint, vr_trust_hint(trust, 0)) != 0)
		abort();
	for (size_t i = 0; i < m->count; i++) {
		if (i && strcmp(m->entries[i - 1].name, m->entries[i].name) >= 0)
			abort();
		if (!cut_ok(m, &m->entries[i]))
			abort();
	}
	vr_manifest_free(m);
	return 0;
}
