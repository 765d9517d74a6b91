/* test_audit.c - audit records: one JSON line each, fields present, failures reported. */
#include "audit.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

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
	unlink(path);
	rmdir(dir);
	return check_summary();
}
