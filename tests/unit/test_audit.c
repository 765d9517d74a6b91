/* test_audit.c - audit records: one JSON line each, fields present, failures reported. */
#include "audit.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
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

	/* a log that cannot be written to: the error comes back, never dropped */
	if (access("/dev/full", W_OK) == 0) {
		CHECK_EQ(vr_audit_open("/dev/full", &a), 0);
		r.event = "policy_violation";
		CHECK_EQ(vr_audit_log(a, &r), -ENOSPC);
		vr_audit_close(a);
	}
	CHECK_EQ(vr_audit_open("/nonexistent/dir/audit.log", &a), -ENOENT);
	unlink(path);
	rmdir(dir);
	return check_summary();
}
