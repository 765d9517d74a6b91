/* test_audit.c - audit records: one JSON line each, fields present, failures reported. */
#include "audit.h"
#include "check.h"
#include "digest.h"
#include "key.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

/* Reads every line of PATH into LINES (at most MAX); returns how many. */
static int read_lines(const char *path, char lines[][1024], int max)
{
	FILE *f = fopen(path, "r");
	int n = 0;

	while (f && n < max && fgets(lines[n], 1024, f))
		n++;
	if (f)
		fclose(f);
	return n;
}

/* Walks LINES[0..N) along the chain from K0; returns the index of the first bad one, or N. */
static int walk(const uint8_t *k0, char lines[][1024], int n)
{
	struct vr_audit_chain c;
	char why[160];

	vr_audit_chain_init(&c, k0);
	for (int i = 0; i < n; i++)
		if (vr_audit_chain_next(&c, lines[i], strlen(lines[i]), why, sizeof(why)) != 0)
			return i;
	return n;
}

/*
 * The hash chain: it verifies; an edited, dropped, reordered or re-MAC'd record
 * is named; a record MAC'd with a later epoch's key (the key a thief of the
 * running daemon holds) does not pass for an earlier one; a restart continues
 * the chain, and refuses to extend one it cannot verify.
 */
static void test_chain(const char *dir)
{
	static char lines[16][1024], saved[1024];
	char path[300];
	uint8_t secret[32] = {5}, k0[32], later[32];
	struct vr_keyring *k;
	struct vr_audit *a;
	struct vr_audit_rec r = {.event = "vram_sealed", .path = "m/w.bin", .outcome = "ok"};

	snprintf(path, sizeof(path), "%s/chain.log", dir);
	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &k), 0);
	vr_audit_key0(k, k0);
	vr_keyring_free(k);
	CHECK_EQ(vr_audit_open(path, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	for (int i = 0; i < 6; i++) {
		r.pid = i;
		CHECK_EQ(vr_audit_log(a, &r), 0);
	}
	vr_audit_close(a);
	/* a restart continues: records 6 and 7 */
	CHECK_EQ(vr_audit_open(path, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0);
	vr_audit_close(a);
	int n = read_lines(path, lines, 16);

	CHECK_EQ(n, 8);
	CHECK_EQ(walk(k0, lines, n), n);
	CHECK(strstr(lines[7], "\"seq\":7,") != NULL);

	/* edited: one character of record 3's detail */
	memcpy(saved, lines[3], sizeof(saved));
	lines[3][strlen("{\"time\":\"2")] ^= 1;
	CHECK_EQ(walk(k0, lines, n), 3);
	memcpy(lines[3], saved, sizeof(saved));
	/* dropped: record 4 */
	memcpy(lines[4], lines[5], sizeof(saved));
	CHECK_EQ(walk(k0, lines, n - 1), 4);
	/* reordered */
	read_lines(path, lines, 16);
	memcpy(saved, lines[2], sizeof(saved));
	memcpy(lines[2], lines[1], sizeof(saved));
	memcpy(lines[1], saved, sizeof(saved));
	CHECK_EQ(walk(k0, lines, n), 1);
	/* forged with a later epoch's key: record 2 rewritten and MAC'd with K(5) */
	read_lines(path, lines, 16);
	memcpy(later, k0, sizeof(later));
	for (int i = 0; i < 5; i++)
		vr_audit_key_next(later);
	char *mac = strstr(lines[2], ",\"mac\":\"");
	uint8_t m[32];

	CHECK(mac != NULL);
	if (mac) {
		*mac = '}';
		mac[1] = '\0';
		char *ok = strstr(lines[2], "\"outcome\":\"ok\"");

		if (ok)
			memcpy(ok + strlen("\"outcome\":\""), "no", 2); /* the forgery */
		vr_hmac_sha256(later, 32, lines[2], strlen(lines[2]), m);
		size_t len = strlen(lines[2]) - 1;

		len += (size_t)sprintf(lines[2] + len, ",\"mac\":\"");
		vr_hex(m, 32, lines[2] + len);
		strcat(lines[2], "\"}\n");
		CHECK_EQ(walk(k0, lines, n), 2);
	}
	/* another key: nothing verifies */
	secret[0] = 6;
	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &k), 0);
	uint8_t other[32];

	vr_audit_key0(k, other);
	vr_keyring_free(k);
	read_lines(path, lines, 16);
	CHECK_EQ(walk(other, lines, n), 0);
	/* a restart with another key, or over an unchained log, refuses to extend it */
	CHECK_EQ(vr_audit_open(path, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, other), -EBADMSG);
	vr_audit_close(a);
	unlink(path);
	strcat(path, ".chain"); /* the chain's state */
	CHECK_EQ(unlink(path), 0);
}

/*
 * audit-verify's reader of one record, given what is not a record of the chain: each is
 * refused (-EBADMSG) and named for what is wrong, never read past or taken as fine; and a
 * good record with a CRLF ending (a log copied through Windows) still verifies.
 */
static void chain_rejects(const char *dir)
{
#define HEX64  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"
	static const struct {
		const char *line, *why;
	} bad[] = {
	    {"", "no \"mac\" last"},
	    {"{\"seq\":0}\n", "no \"mac\" last"},
	    {"{\"seq\":0,\"mac\":\"" HEX64 "\"} \n", "no \"mac\" last"},
	    {"{\"seq\":0,\"mac\":\"" HEX64 "x\"}\n", "no \"mac\" last"},
	    {"{\"seq\":0,\"mac\":"
	     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"}",
	     "no \"mac\" last"},
	    {"not json at all,\"mac\":\"" HEX64 "\"}\n", "no seq"},
	    {"[1,2,\"mac\":\"" HEX64 "\"}\n", "no seq"},
	    {"{\"seq\":\"0\",\"mac\":\"" HEX64 "\"}\n", "no seq"},
	    {"{\"seq\":-1,\"mac\":\"" HEX64 "\"}\n", "no seq"},
	    {"{\"seq\":0.5,\"mac\":\"" HEX64 "\"}\n", "no seq"},
	    {"{\"seq\":0,\"mac\":\"" HEX64 "\"}\n", "does not follow"},
	    {"{\"seq\":0,\"prev\":\"xyz\",\"mac\":\"" HEX64 "\"}\n", "does not follow"},
	    {"{\"seq\":0,\"prev\":\"" HEX64 "\",\"mac\":\"" HEX64 "\"}\n", "does not follow"},
	    {"{\"seq\":0,\"prev\":\"" ZERO64 "\",\"mac\":\"" HEX64 "\"}\n", "MAC does not verify"},
	};
	uint8_t secret[32] = {3}, k0[32];
	struct vr_keyring *k;
	struct vr_audit_chain c;
	struct vr_audit *a;
	struct vr_audit_rec r = {.event = "vram_sealed", .path = "m/w.bin", .outcome = "ok"};
	char why[160], path[300], line[2048];

	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &k), 0);
	vr_audit_key0(k, k0);
	vr_keyring_free(k);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		vr_audit_chain_init(&c, k0);
		CHECK_EQ(
		    vr_audit_chain_next(&c, bad[i].line, strlen(bad[i].line), why, sizeof(why)),
		    -EBADMSG);
		if (!strstr(why, bad[i].why)) {
			fprintf(stderr, "record %zu: '%s', expected '%s'\n", i, why, bad[i].why);
			CHECK(0);
		}
	}
	/* a good first record, with a CRLF ending */
	snprintf(path, sizeof(path), "%s/crlf.log", dir);
	CHECK_EQ(vr_audit_open(path, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0);
	vr_audit_close(a);
	FILE *f = fopen(path, "r");

	CHECK(f && fgets(line, sizeof(line) - 1, f));
	if (f)
		fclose(f);
	size_t n = strlen(line);

	CHECK(n > 1 && line[n - 1] == '\n');
	line[n - 1] = '\r';
	line[n] = '\n';
	line[n + 1] = '\0';
	vr_audit_chain_init(&c, k0);
	CHECK_EQ(vr_audit_chain_next(&c, line, n + 1, why, sizeof(why)), 0);
	unlink(path);
#undef HEX64
#undef ZERO64
}

int main(void)
{
	char dir[] = "/tmp/vr-audit-XXXXXX", path[300], line[4096];
	uint8_t digest[32];
	struct vr_audit *a;
	struct stat st;
	FILE *f;
	int lines = 0;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/audit.log", dir);
	memset(digest, 0xab, sizeof(digest));
	CHECK_EQ(vr_audit_open(path, &a), 0);
	struct vr_audit_rec r = {.event = "vram_sealed",
				 .path = "llama/w.bin",
				 .uid = 7,
				 .pid = 42,
				 .outcome = "ok",
				 .digest = digest};

	CHECK_EQ(vr_audit_log(a, &r), 0);
	r.event = "seal_verification_failed";
	r.outcome = "failed";
	r.detail = "digest mismatch \"quoted\"\n";
	CHECK_EQ(vr_audit_log(a, &r), 0);
	r.event = "no_such_event";
	CHECK_EQ(vr_audit_log(a, &r), -EINVAL);
	r.event = "daemon_started";
	r.path = NULL;
	r.digest = NULL;
	CHECK_EQ(vr_audit_log(a, &r), 0);
	vr_audit_close(a);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);

	f = fopen(path, "r");
	CHECK(f != NULL);
	while (f && fgets(line, sizeof(line), f)) {
		cJSON *o = cJSON_Parse(line);

		CHECK(o != NULL);
		CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "time")));
		CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "event")));
		CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "uid")));
		CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "pid")));
		CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "outcome")));
		if (lines == 0) {
			CHECK_STR(cJSON_GetObjectItem(o, "path")->valuestring, "llama/w.bin");
			CHECK_STR(cJSON_GetObjectItem(o, "digest")->valuestring,
				  "sha256:abababababababab");
		}
		if (lines == 1)
			CHECK_STR(cJSON_GetObjectItem(o, "detail")->valuestring,
				  "digest mismatch \"quoted\"\n");
		if (lines == 2)
			CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "path")));
		cJSON_Delete(o);
		lines++;
	}
	if (f)
		fclose(f);
	CHECK_EQ(lines, 3);

	/*
	 * A log that fills up mid-record (RLIMIT_FSIZE plays the full disk: the
	 * write is cut short, then fails): the error comes back, never dropped, the
	 * partial record is cut away, and the failure is counted.
	 */
	struct rlimit old, lim;

	CHECK_EQ(vr_audit_open(path, &a), 0);
	signal(SIGXFSZ, SIG_IGN);
	CHECK_EQ(stat(path, &st), 0);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size + 40; /* room for part of a record */
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r.event = "policy_violation";
	CHECK_EQ(vr_audit_log(a, &r), -EFBIG);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
	CHECK_EQ(vr_audit_failures(a), 1);
	struct stat after;

	CHECK_EQ(stat(path, &after), 0);
	CHECK_EQ(after.st_size, st.st_size); /* no partial line left */
	r.event = "daemon_stopped";
	CHECK_EQ(vr_audit_log(a, &r), 0); /* and the next record is a whole line */
	vr_audit_close(a);
	f = fopen(path, "r");
	lines = 0;
	while (f && fgets(line, sizeof(line), f)) {
		cJSON *o = cJSON_Parse(line);

		CHECK(o != NULL);
		cJSON_Delete(o);
		lines++;
	}
	if (f)
		fclose(f);
	CHECK_EQ(lines, 4);

	/* what the log must not be: a link, a device, loose, in a folder others may write to */
	char link[600], loose[600], open_dir[600], inside[700];

	snprintf(link, sizeof(link), "%s/link.log", dir);
	CHECK_EQ(symlink(path, link), 0);
	CHECK_EQ(vr_audit_open(link, &a), -ELOOP);
	CHECK_EQ(vr_audit_open("/dev/null", &a), -EINVAL);
	snprintf(loose, sizeof(loose), "%s/loose.log", dir);
	close(open(loose, O_CREAT | O_WRONLY, 0666));
	chmod(loose, 0666);
	CHECK_EQ(vr_audit_open(loose, &a), -EACCES);
	snprintf(open_dir, sizeof(open_dir), "%s/open", dir);
	CHECK_EQ(mkdir(open_dir, 0777), 0);
	chmod(open_dir, 0777);
	snprintf(inside, sizeof(inside), "%s/audit.log", open_dir);
	CHECK_EQ(vr_audit_open(inside, &a), -EACCES);
	chmod(open_dir, 01777); /* sticky, as /tmp: others cannot replace our file */
	CHECK_EQ(vr_audit_open(inside, &a), 0);
	vr_audit_close(a);
	unlink(inside);
	rmdir(open_dir);
	unlink(loose);
	unlink(link);
	CHECK_EQ(vr_audit_open("/nonexistent/dir/audit.log", &a), -ENOENT);
	/* the unchained log above cannot be continued as a chain */
	uint8_t zero[32] = {0};

	CHECK_EQ(vr_audit_open(path, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, zero), -EBADMSG);
	vr_audit_close(a);
	test_chain(dir);
	chain_rejects(dir);
	unlink(path);
	rmdir(dir);
	return check_summary();
}
