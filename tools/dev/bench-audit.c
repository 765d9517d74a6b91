/* bench-audit.c - audit records a second, unchained and chained (the chain's state replaced
 * after each), of ordinary records and of critical ones (fsync'd, and the state with them).
 * Usage: vr-bench-audit DIR [N]; DIR on the disk the log will use. Not a test. */
#include "audit.h"
#include "key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes N records of EVENT to a new log in DIR, chained with K0 unless NULL; prints the
 * rate. Returns 0 or 1. */
static int run(const char *dir, int n, const uint8_t *k0, const char *event, const char *what)
{
	struct vr_audit_rec r = {.event = event,
				 .path = "models/llama/model-00001-of-00004.safetensors",
				 .uid = 1000,
				 .pid = 4242,
				 .outcome = "ok"};
	char path[4096], state[4200];
	struct vr_audit *a;
	double t;

	snprintf(path, sizeof(path), "%s/bench-audit.log", dir);
	snprintf(state, sizeof(state), "%s.chain", path);
	unlink(path);
	unlink(state);
	if (vr_audit_open(path, &a) != 0 || (k0 && vr_audit_chain_start(a, k0) != 0))
		return 1;
	t = seconds();
	for (int i = 0; i < n; i++)
		if (vr_audit_log(a, &r) != 0)
			return 1;
	t = seconds() - t;
	vr_audit_close(a);
	printf("%-28s %6d records in %7.3f s: %9.0f records/s\n", what, n, t, n / t);
	unlink(path);
	unlink(state);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t secret[32] = {1}, k0[32];
	struct vr_keyring *k;
	int n = argc > 2 ? atoi(argv[2]) : 2000;

	if (argc < 2 || n <= 0) {
		fprintf(stderr, "usage: %s DIR [N]\n", argv[0]);
		return 2;
	}
	if (vr_keyring_from_bytes(secret, sizeof(secret), &k) != 0)
		return 1;
	vr_audit_key0(k, k0);
	vr_keyring_free(k);
	return run(argv[1], n, NULL, "seal_verified", "unchained") ||
	       run(argv[1], n, k0, "seal_verified", "chained") ||
	       run(argv[1], n / 10, NULL, "policy_violation", "unchained, critical (fsync)") ||
	       run(argv[1], n / 10, k0, "policy_violation", "chained, critical (fsync)");
}
