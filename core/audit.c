/* audit.c - the append-only JSON-lines audit log: one record per decision. */
#include "audit.h"
#include "digest.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

struct vr_audit {
	int fd;
	pthread_mutex_t lock;
	uint64_t failures; /* under LOCK: records that could not be written */
};

static const char *const events[] = {
    "daemon_started",	"daemon_stopped",    "vram_allocated",		 "vram_allocation_failed",
    "vram_sealed",	"seal_verified",     "seal_verification_failed", "vram_deallocated",
    "policy_violation", "seal_renamed",	     "vram_load_incomplete",	 "vram_replaced",
    "seal_withdrawn",	"vram_seal_refused", "expected_digests_loaded",	 "expected_digests_refused",
    "seal_check_error", "device_failed",
};

int vr_audit_is_critical(const char *event)
{
	return strcmp(event, "seal_verification_failed") == 0 ||
	       strcmp(event, "policy_violation") == 0 || strcmp(event, "vram_seal_refused") == 0 ||
	       strcmp(event, "expected_digests_refused") == 0 ||
	       strcmp(event, "seal_check_error") == 0 || strcmp(event, "device_failed") == 0;
}

/*
 * Refuses an audit log others could forge or redirect, as sshd refuses loose
 * key files: not a regular file, not owned by this user, or writable by group
 * or others; nor a directory that group or others may write without the
 * sticky bit. Says how to fix it. Returns 0 or -EACCES/-EINVAL.
 */
static int check_safe(const char *path, int fd)
{
	char dir[4096];
	struct stat st;
	const char *slash = strrchr(path, '/');

	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		vr_log(LOG_ERR, "audit log %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid()) {
		vr_log(LOG_ERR,
		       "audit log %s is owned by uid %u, not by uid %u running this; fix: "
		       "chown %u %s",
		       path, (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
		return -EACCES;
	}
	if (st.st_mode & 022) {
		vr_log(LOG_ERR,
		       "audit log %s is writable by group or others (mode %04o); fix: "
		       "chmod 600 %s",
		       path, (unsigned)(st.st_mode & 07777), path);
		return -EACCES;
	}
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (!dir[0])
		strcpy(dir, "/");
	if (stat(dir, &st) != 0)
		return -errno;
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		vr_log(LOG_ERR,
		       "the audit log's folder %s is writable by group or others (mode "
		       "%04o): they could replace the log; fix: chmod go-w %s",
		       dir, (unsigned)(st.st_mode & 07777), dir);
		return -EACCES;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		vr_log(LOG_ERR,
		       "the audit log's folder %s is owned by uid %u: only this user or "
		       "root may own it",
		       dir, (unsigned)st.st_uid);
		return -EACCES;
	}
	return 0;
}

int vr_audit_open(const char *path, struct vr_audit **out)
{
	struct vr_audit *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	/* O_NOFOLLOW: a symbolic link planted where the log goes must not redirect it */
	a->fd = open(path,
		     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
		     0600);
	if (a->fd < 0) {
		ret = -errno;
		vr_log(LOG_ERR, "cannot open audit log %s: %s%s", path, strerror(errno),
		       errno == ELOOP ? " (it is a symbolic link: give the real path)" : "");
		free(a);
		return ret;
	}
	ret = check_safe(path, a->fd);
	if (ret) {
		close(a->fd);
		free(a);
		return ret;
	}
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

uint64_t vr_audit_failures(struct vr_audit *a)
{
	uint64_t n = 0;

	if (a) {
		pthread_mutex_lock(&a->lock);
		n = a->failures;
		pthread_mutex_unlock(&a->lock);
	}
	return n;
}

void vr_audit_close(struct vr_audit *a)
{
	if (!a)
		return;
	if (fsync(a->fd) != 0 && errno != EINVAL)
		vr_log(LOG_ERR, "audit log fsync at close failed: %s", strerror(errno));
	close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static bool known_event(const char *event)
{
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (strcmp(event, events[i]) == 0)
			return true;
	return false;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vr_audit_log(struct vr_audit *a, const struct vr_audit_rec *r)
{
	char when[40], digest[2 * 8 + 8];
	struct timespec ts;
	struct tm tm;
	cJSON *o;
	char *line;
	int ret = -ENOMEM;

	if (r->event && !known_event(r->event)) {
		/* a record nobody can find is a lost record: a programming error, said loudly */
		vr_log(LOG_ERR, "BUG: unknown audit event %s: record not written", r->event);
		return -EINVAL;
	}
	if (!a || !r->event || !r->outcome)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + 19, sizeof(when) - 19, ".%03ldZ", ts.tv_nsec / 1000000);
	o = cJSON_CreateObject();
	if (!o)
		goto fail;
	if (!cJSON_AddStringToObject(o, "time", when) ||
	    !cJSON_AddStringToObject(o, "event", r->event) ||
	    !(r->path ? cJSON_AddStringToObject(o, "path", r->path)
		      : cJSON_AddNullToObject(o, "path")) ||
	    !cJSON_AddNumberToObject(o, "uid", r->uid) ||
	    !cJSON_AddNumberToObject(o, "pid", r->pid) ||
	    !cJSON_AddStringToObject(o, "outcome", r->outcome))
		goto free_obj;
	if (r->digest) {
		strcpy(digest, "sha256:");
		vr_hex(r->digest, 8, digest + 7);
		if (!cJSON_AddStringToObject(o, "digest", digest))
			goto free_obj;
	}
	if (r->detail && !cJSON_AddStringToObject(o, "detail", r->detail))
		goto free_obj;
	line = cJSON_PrintUnformatted(o);
	if (!line)
		goto free_obj;
	size_t n = strlen(line);
	char *withnl = realloc(line, n + 2);

	if (!withnl) {
		cJSON_free(line);
		goto free_obj;
	}
	withnl[n] = '\n';
	withnl[n + 1] = '\0';
	pthread_mutex_lock(&a->lock);
	/* one write per record keeps lines whole under O_APPEND; a record cut short (a full
	 * disk) is cut away again, so every line stays one whole JSON record */
	off_t end = lseek(a->fd, 0, SEEK_END);

	ret = write_all(a->fd, withnl, n + 1);
	if (ret && end >= 0 && ftruncate(a->fd, end) != 0)
		vr_log(LOG_ERR, "audit log: a partial record could not be cut away: %s",
		       strerror(errno));
	if (ret == 0 && vr_audit_is_critical(r->event) && fsync(a->fd) != 0)
		ret = -errno;
	if (ret)
		a->failures++;
	pthread_mutex_unlock(&a->lock);
	free(withnl);
free_obj:
	cJSON_Delete(o);
fail:
	if (ret)
		vr_log(LOG_ERR, "audit record %s for %s could not be written: %s", r->event,
		       r->path ? r->path : "-", strerror(-ret));
	return ret;
}
