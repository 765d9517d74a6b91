/* test_audit_state.c - the audit chain's state file (a restart without the first key, a stop
 * between a record and its state, a state and log that disagree) and the refusal limit. */
#include "audit.h"
#include "check.h"
#include "key.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char dir[] = "/tmp/vr-audit-state-XXXXXX";
static char logp[300], state[310];
static uint8_t k0[32];

/* Copies file FROM to TO (mode 0600); returns 0 or -1. */
static int copy(const char *from, const char *to)
{
	char buf[1 << 16];
	FILE *in = fopen(from, "r");
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
	size_t n;

	while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	return in && out ? 0 : -1;
}

/* Checks every line of the files FILES (N of them, in order) along the chain from K0;
 * returns how many records verify before the first that does not (-1 for a file missing). */
static int walk_files(const char *const *files, int n)
{
	static char line[1 << 16];
	struct vr_audit_chain c;
	char why[160];
	int good = 0;

	vr_audit_chain_init(&c, k0);
	for (int i = 0; i < n; i++) {
		FILE *f = fopen(files[i], "r");

		if (!f)
			return -1;
		while (fgets(line, sizeof(line), f)) {
			if (vr_audit_chain_next(&c, line, strlen(line), why, sizeof(why)) != 0) {
				fprintf(stderr, "walk: %s\n", why);
				fclose(f);
				return good;
			}
			good++;
		}
		fclose(f);
	}
	return good;
}

static int walk(void)
{
	const char *files[] = {logp};

	return walk_files(files, 1);
}

/* How many lines of the log contain TEXT. */
static int count(const char *text)
{
	static char line[1 << 16];
	FILE *f = fopen(logp, "r");
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, text) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* Writes N records to an open log A. */
static void records(struct vr_audit *a, int n)
{
	struct vr_audit_rec r = {.event = "vram_sealed", .path = "m/w.bin", .outcome = "ok"};

	for (int i = 0; i < n; i++)
		CHECK_EQ(vr_audit_log(a, &r), 0);
}

/* Opens the log, continues its chain without the first key, writes N records, closes;
 * returns what vr_audit_chain_resume said. */
static int resume_and_log(int n)
{
	struct vr_audit *a;
	int ret;

	if (vr_audit_open(logp, &a) != 0)
		return -999;
	ret = vr_audit_chain_resume(a);
	if (ret == 0)
		records(a, n);
	vr_audit_close(a);
	return ret;
}

/*
 * A first start with the key writes the state (mode 0600); restarts without the key go on
 * from it; a stop between a record and its state is recovered; a state behind or ahead of
 * the log, one missing under a chained log, a damaged one, a loose one, and another key's
 * are refused; a rotated-away log goes on in the new file.
 */
static void test_state(void)
{
	char saved[320], full[320], rotated[320];
	struct vr_audit *a;
	struct stat st;

	snprintf(saved, sizeof(saved), "%s/saved.chain", dir);
	snprintf(full, sizeof(full), "%s/full.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/rotated.log", dir);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	records(a, 3);
	vr_audit_close(a);
	CHECK_EQ(stat(state, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	/* round trip: no key, the chain goes on, and the first key verifies it all */
	CHECK_EQ(resume_and_log(2), 0);
	CHECK_EQ(resume_and_log(2), 0);
	CHECK_EQ(walk(), 7);
	CHECK_EQ(count("\"seq\":6,"), 1);

	/* a stop after a record, before its state: the state is one behind; the restart checks
	 * that record with the state's key and moves past it */
	CHECK_EQ(copy(state, saved), 0);
	CHECK_EQ(resume_and_log(1), 0);
	CHECK_EQ(copy(saved, state), 0);
	CHECK_EQ(resume_and_log(1), 0);
	CHECK_EQ(walk(), 9);
	CHECK_EQ(count("\"seq\":8,"), 1);
	/* the same with the key given too */
	CHECK_EQ(copy(state, saved), 0);
	CHECK_EQ(resume_and_log(1), 0);
	CHECK_EQ(copy(saved, state), 0);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	records(a, 1);
	vr_audit_close(a);
	CHECK_EQ(walk(), 11);

	/* a state two records behind (an older one put back): refused, with or without the key */
	CHECK_EQ(copy(state, saved), 0);
	CHECK_EQ(resume_and_log(2), 0);
	CHECK_EQ(copy(state, full), 0);
	CHECK_EQ(copy(saved, state), 0);
	CHECK_EQ(resume_and_log(1), -EBADMSG);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), -EBADMSG);
	vr_audit_close(a);
	CHECK_EQ(copy(full, state), 0);
	CHECK_EQ(walk(), 13); /* nothing was written by the refused starts */

	/* the log's last record cut off: the state is ahead, refused both ways */
	CHECK_EQ(copy(logp, full), 0);
	CHECK_EQ(truncate(logp, 0), 0);
	{
		FILE *in = fopen(full, "r"), *out = fopen(logp, "w");
		static char line[1 << 16];

		for (int i = 0; in && out && fgets(line, sizeof(line), in); i++)
			if (i < 12)
				fputs(line, out);
		if (in)
			fclose(in);
		if (out)
			fclose(out);
	}
	CHECK_EQ(resume_and_log(1), -EBADMSG);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), -EBADMSG);
	vr_audit_close(a);
	CHECK_EQ(copy(full, logp), 0);

	/* no state under a chained log: refused without the key; the key writes it again */
	CHECK_EQ(rename(state, saved), 0);
	CHECK_EQ(resume_and_log(1), -EBADMSG);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	vr_audit_close(a);
	CHECK_EQ(resume_and_log(1), 0);
	CHECK_EQ(walk(), 14);

	/* another key's state, with this key: refused */
	uint8_t secret[32] = {9}, other[32];
	struct vr_keyring *k;

	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &k), 0);
	vr_audit_key0(k, other);
	vr_keyring_free(k);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, other), -EBADMSG);
	vr_audit_close(a);

	/* a loose state (others could read the key) and a damaged one: refused */
	CHECK_EQ(chmod(state, 0644), 0);
	CHECK_EQ(resume_and_log(1), -EACCES);
	CHECK_EQ(chmod(state, 0600), 0);
	CHECK_EQ(copy(state, saved), 0);
	{
		FILE *f = fopen(state, "r+");

		if (f) {
			fseek(f, 50, SEEK_SET);
			fputc('!', f);
			fclose(f);
		}
	}
	CHECK_EQ(resume_and_log(1), -EBADMSG);
	CHECK_EQ(copy(saved, state), 0);
	/* a state that is a link: refused, not followed */
	CHECK_EQ(rename(state, saved), 0);
	CHECK_EQ(symlink(saved, state), 0);
	CHECK_EQ(resume_and_log(1), -ELOOP);
	CHECK_EQ(unlink(state), 0);
	CHECK_EQ(rename(saved, state), 0);

	/* rotated away: the new, empty log goes on from the state; both files are one chain */
	CHECK_EQ(rename(logp, rotated), 0);
	CHECK_EQ(resume_and_log(2), 0);
	const char *both[] = {rotated, logp};

	CHECK_EQ(walk_files(both, 2), 16);
	unlink(rotated);
	unlink(saved);
	unlink(full);
}

/* An unchained log and no state: records go on unchained (1), and no state is written. */
static void test_unchained(void)
{
	struct vr_audit *a;
	struct stat st;

	unlink(logp);
	unlink(state);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	records(a, 1);
	vr_audit_close(a);
	CHECK_EQ(resume_and_log(0), 1);
	CHECK(stat(state, &st) != 0);
	CHECK_EQ(count("\"mac\""), 0);
	unlink(logp);
}

/* The chain's key is in locked memory: VmLck grows by a page when a log is opened. */
static long locked_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void test_locked(void)
{
	struct vr_audit *a;
	long before = locked_kb();

	CHECK_EQ(vr_audit_open(logp, &a), 0);
	/* others may be refused the lock (a warning, not a failure); AddressSanitizer makes
	 * mlock a no-op */
	if (geteuid() == 0 && !UNDER_ASAN)
		CHECK(locked_kb() >= before + 4);
	vr_audit_close(a);
	CHECK_EQ(locked_kb(), before);
	unlink(logp);
}

/* Writes N refusal records of UID. */
static void refusals(struct vr_audit *a, uid_t uid, int n)
{
	struct vr_audit_rec r = {
	    .event = "vram_export_refused", .path = "x", .uid = uid, .outcome = "denied"};

	for (int i = 0; i < n; i++)
		CHECK_EQ(vr_audit_log(a, &r), 0);
}

/* The sum of "dropped" over the audit_suppressed records of uids FROM to TO. */
static double dropped(unsigned from, unsigned to)
{
	static char line[1 << 16];
	FILE *f = fopen(logp, "r");
	double n = 0;

	while (f && fgets(line, sizeof(line), f)) {
		cJSON *o = cJSON_Parse(line);
		const cJSON *uid = cJSON_GetObjectItem(o, "uid"),
			    *d = cJSON_GetObjectItem(o, "dropped");

		if (cJSON_IsNumber(uid) && cJSON_IsNumber(d) && uid->valuedouble >= from &&
		    uid->valuedouble <= to)
			n += d->valuedouble;
		cJSON_Delete(o);
	}
	if (f)
		fclose(f);
	return n;
}

/* Writes root's records (any record sums up the suppressions that ended) until the
 * audit_suppressed records of UID count WANT dropped (5,000 tries); returns that sum. */
static double poll_dropped(struct vr_audit *a, unsigned uid, double want)
{
	struct vr_audit_rec r = {.event = "seal_verified", .path = "p", .outcome = "ok"};
	struct timespec ms = {0, 1000000};

	for (int i = 0; i < 5000 && dropped(uid, uid) < want; i++) {
		nanosleep(&ms, NULL);
		vr_audit_log(a, &r);
	}
	return dropped(uid, uid);
}

#define SUPPRESSED(uid) "\"event\":\"audit_suppressed\",\"path\":null,\"uid\":" uid ","
#define REFUSED(uid)	"\"event\":\"vram_export_refused\",\"path\":\"x\",\"uid\":" uid ","

/*
 * Refusals past a user's limit are counted, not written; root's are all written, and so is
 * what is not a refusal; the count comes in an audit_suppressed record when the user is
 * within the limit again, when the suppression has gone on long enough, when a user's slot
 * is needed for another, or at close; the chain verifies across what was dropped.
 */
static void test_limit(void)
{
	struct vr_audit_rec ok = {.event = "vram_sealed", .uid = 1000, .outcome = "ok"};
	struct vr_audit *a;

	unlink(state);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	vr_audit_set_limit(a, 3, 0, 1000000);
	refusals(a, 1000, 10);
	refusals(a, 0, 5);
	CHECK_EQ(vr_audit_log(a, &ok), 0);
	CHECK_EQ(count(REFUSED("1000")), 3);
	CHECK_EQ(count(REFUSED("0")), 5);
	CHECK_EQ(count("\"event\":\"vram_sealed\""), 1);
	CHECK_EQ(count(SUPPRESSED("1000")), 0);

	/* within the limit again (the bucket full): summed up with the next record */
	vr_audit_set_limit(a, 2, 1, 1000000); /* 5 quick ones: 2 written; full again in 2 s */
	refusals(a, 1001, 5);
	CHECK_EQ(count(REFUSED("1001")), 2);
	CHECK_EQ(count(SUPPRESSED("1001")), 0);
	CHECK_EQ(poll_dropped(a, 1001, 3), 3);
	CHECK_EQ(count(SUPPRESSED("1001")), 1);

	/* a suppression that goes on: summed up every EVERY_MS all the same */
	vr_audit_set_limit(a, 1, 0, 1);
	refusals(a, 1002, 3);
	CHECK_EQ(count(REFUSED("1002")), 1);
	CHECK_EQ(poll_dropped(a, 1002, 2), 2);

	/* more users than slots: the longest idle with drops is summed up to make room */
	vr_audit_set_limit(a, 1, 0, 1000000);
	for (unsigned uid = 2000; uid < 2065; uid++)
		refusals(a, uid, 2);
	CHECK(dropped(2000, 2064) >= 1);
	vr_audit_close(a);
	/* at close, the rest */
	CHECK_EQ(count(SUPPRESSED("1000")), 1);
	CHECK_EQ(dropped(1000, 1000), 7);
	CHECK_EQ(dropped(2000, 2064), 65);
	CHECK(walk() > 100);
	CHECK_EQ(walk(), count("\"mac\""));
	/* what decides something is fsync'd; a peer's refusal is not */
	CHECK(vr_audit_is_critical("policy_violation"));
	CHECK(vr_audit_is_critical("seal_verification_failed"));
	CHECK(!vr_audit_is_critical("vram_export_refused"));
	CHECK(!vr_audit_is_critical("audit_suppressed"));
	unlink(logp);
	unlink(state);
}

/* A caller's text is cut at VR_AUDIT_TEXT_MAX bytes, where a character begins, with a
 * marker saying how much is missing. */
static void test_text_cap(void)
{
	static char path[2001], detail[700], want[700];
	struct vr_audit *a;

	memset(path, 'a', 2000);
	memset(detail, 'b', 511);
	memcpy(detail + 511, "\xc3\xa9", 2); /* é across the cut */
	memset(detail + 513, 'c', 100);
	struct vr_audit_rec r = {
	    .event = "vram_export_refused", .path = path, .outcome = "denied", .detail = detail};

	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0);
	vr_audit_close(a);
	snprintf(want, sizeof(want), "\"path\":\"%.512s...[1488 more bytes]\"", path);
	CHECK_EQ(count(want), 1);
	snprintf(want, sizeof(want), "\"detail\":\"%.511s...[102 more bytes]\"", detail);
	CHECK_EQ(count(want), 1);
	CHECK_EQ(count("\\\\x"), 0);
	unlink(logp);
}

/*
 * What a start or a record cannot use: a state that is a folder (refused at start; a record
 * whose state cannot be replaced is still written once, then refused until it can be), a
 * state over an unchained last record, a log whose last line is too long to read back.
 */
static void test_faults(void)
{
	struct vr_audit_rec r = {.event = "vram_sealed", .path = "m/w.bin", .outcome = "ok"};
	struct vr_audit *a;

	unlink(logp);
	unlink(state);
	CHECK_EQ(vr_audit_open(logp, &a), 0);
	CHECK_EQ(vr_audit_chain_start(a, k0), 0);
	records(a, 1);
	/* the state's place taken by a folder: this record is written, the state cannot follow */
	CHECK_EQ(unlink(state), 0);
	CHECK_EQ(mkdir(state, 0700), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0);
	CHECK(vr_audit_log(a, &r) < 0); /* refused: the state would fall two behind */
	CHECK_EQ(vr_audit_failures(a), 1);
	CHECK_EQ(rmdir(state), 0);
	CHECK_EQ(vr_audit_log(a, &r), 0); /* the state is written first, then the record */
	vr_audit_close(a);
	CHECK_EQ(walk(), 3);
	CHECK_EQ(resume_and_log(1), 0);
	CHECK_EQ(walk(), 4);
	/* a folder as the state at start */
	char saved[320];

	snprintf(saved, sizeof(saved), "%s/saved.chain", dir);
	CHECK_EQ(rename(state, saved), 0);
	CHECK_EQ(mkdir(state, 0700), 0);
	CHECK_EQ(resume_and_log(1), -EINVAL);
	CHECK_EQ(rmdir(state), 0);
	CHECK_EQ(rename(saved, state), 0);
	/* an unchained record after the chain's last: refused */
	FILE *f = fopen(logp, "a");

	if (f) {
		fputs("{\"event\":\"vram_sealed\"}\n", f);
		fclose(f);
	}
	CHECK_EQ(resume_and_log(1), -EBADMSG);
	/* a last line longer than what is read back */
	f = fopen(logp, "a");
	for (int i = 0; f && i < 70000; i++)
		fputc('x', f);
	if (f)
		fclose(f);
	CHECK_EQ(resume_and_log(1), -EFBIG);
	unlink(logp);
	unlink(state);
}

int main(void)
{
	uint8_t secret[32] = {5};
	struct vr_keyring *k;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(logp, sizeof(logp), "%s/audit.log", dir);
	snprintf(state, sizeof(state), "%s.chain", logp);
	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &k), 0);
	vr_audit_key0(k, k0);
	vr_keyring_free(k);
	test_state();
	test_unchained();
	test_faults();
	test_locked();
	test_limit();
	test_text_cap();
	unlink(logp);
	unlink(state);
	CHECK_EQ(rmdir(dir), 0);
	return check_summary();
}
