/* audit.c - the append-only JSON-lines audit log: one record per decision. */
#include "audit_private.h"
#include "digest.h"
#include "key.h"
#include "log.h"
#include "name.h"
#include "safe.h"
#include "json.h"

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
#include <nettle/memops.h>

static const char *const events[] = {
    "daemon_started",
    "daemon_stopped",
    "vram_allocated",
    "vram_allocation_failed",
    "vram_sealed",
    "seal_verified",
    "seal_verification_failed",
    "vram_deallocated",
    "policy_violation",
    "seal_renamed",
    "vram_load_incomplete",
    "vram_replaced",
    "seal_withdrawn",
    "vram_seal_refused",
    "expected_digests_loaded",
    "expected_digests_refused",
    "seal_check_error",
    "device_failed",
    "audit_reopened",
    "vram_exported",
    "vram_export_refused",
    "vram_export_ended",
    "vram_export_revoked",
    "vram_revoke_refused",
    "vram_import_refused",
    "trust_reloaded",
    "audit_suppressed",
    "vram_restored",
    "vram_restore_refused",
    "vram_evicted",
};

int vr_audit_is_critical(const char *event)
{
	return strcmp(event, "seal_verification_failed") == 0 ||
	       strcmp(event, "policy_violation") == 0 || strcmp(event, "vram_seal_refused") == 0 ||
	       strcmp(event, "expected_digests_refused") == 0 ||
	       strcmp(event, "seal_check_error") == 0 || strcmp(event, "device_failed") == 0 ||
	       strcmp(event, "vram_restore_refused") == 0;
}

/*
 * Refuses an audit log others could forge or redirect, as sshd refuses loose
 * key files: not a regular file, not owned by this user, or writable by group
 * or others; nor a directory that group or others may write without the
 * sticky bit. Says how to fix it. Returns 0 or -EACCES/-EINVAL.
 */
static int check_safe(const char *path, int fd)
{
	struct stat st;

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
	return vr_folder_safe("audit log", path);
}

int vr_audit_reopen(struct vr_audit *a)
{
	int fd = open(
	    a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK,
	    0600);
	int ret = fd < 0 ? -errno : check_safe(a->path, fd);

	if (ret) {
		if (fd >= 0)
			close(fd);
		vr_log(LOG_ERR,
		       "audit log %s could not be reopened (%s): still writing the old one",
		       a->path, strerror(-ret));
		return ret;
	}
	pthread_mutex_lock(&a->lock);
	int old = a->fd;

	/* records written so far are on disk before the switch; the chain simply goes on */
	if (fsync(old) != 0 && errno != EINVAL)
		vr_log(LOG_ERR, "audit log fsync at reopen failed: %s", strerror(errno));
	a->fd = fd;
	pthread_mutex_unlock(&a->lock);
	close(old);
	return 0;
}

/* PATH.chain, where the chain's state is kept, malloc'd with PATH.chain.tmp after it (in
 * *TMP; one allocation, none per record); NULL when out of memory. */
static char *state_name(const char *path, char **tmp)
{
	size_t n = strlen(path) + sizeof(".chain");
	char *s = malloc(2 * n + 4);

	if (s) {
		snprintf(s, n, "%s.chain", path);
		*tmp = s + n;
		memcpy(*tmp, s, n - 1); /* the same name, ".tmp" after it */
		memcpy(*tmp + n - 1, ".tmp", sizeof(".tmp"));
	}
	return s;
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
	if (!ret &&
	    (!(a->path = strdup(path)) || !(a->state_path = state_name(path, &a->state_tmp)) ||
	     !(a->key = vr_secure_alloc(VR_AUDIT_MAC_SIZE))))
		ret = -ENOMEM;
	if (ret) {
		close(a->fd);
		free(a->path);
		free(a->state_path);
		free(a);
		return ret;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->self = geteuid();
	a->burst = VR_AUDIT_BURST;
	a->per_sec = VR_AUDIT_PER_SEC;
	a->every_ms = VR_AUDIT_SUMMARY_MS;
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
	pthread_mutex_lock(&a->lock);
	audit_limit_flush(a, true); /* what was dropped is counted before the end */
	pthread_mutex_unlock(&a->lock);
	if (fsync(a->fd) != 0 && errno != EINVAL)
		vr_log(LOG_ERR, "audit log fsync at close failed: %s", strerror(errno));
	else if (a->chained) /* the state on disk after the log it follows */
		audit_state_save(a, true);
	close(a->fd);
	pthread_mutex_destroy(&a->lock);
	vr_secure_free(a->key, VR_AUDIT_MAC_SIZE);
	explicit_bzero(a->prev, sizeof(a->prev));
	free(a->path);
	free(a->state_path);
	free(a);
}

static bool known_event(const char *event)
{
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (strcmp(event, events[i]) == 0)
			return true;
	return false;
}

int audit_write_all(int fd, const char *p, size_t len)
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

/*
 * Adds TEXT (from a caller: a path, a reason) as KEY: at most VR_AUDIT_TEXT_MAX of its bytes
 * (cut where a UTF-8 character begins, then "...[N more bytes]"), bytes that are not UTF-8 as
 * \xNN, so every record stays valid JSON for strict parsers and a caller's long path cannot
 * make it large. Returns false when out of memory.
 */
static bool add_text(cJSON *o, const char *key, const char *text)
{
	size_t len = strlen(text), keep = len;
	char marker[48] = "";

	if (len > VR_AUDIT_TEXT_MAX) {
		keep = VR_AUDIT_TEXT_MAX;
		while (keep > VR_AUDIT_TEXT_MAX - 4 && ((unsigned char)text[keep] & 0xc0) == 0x80)
			keep--;
		snprintf(marker, sizeof(marker), "...[%zu more bytes]", len - keep);
	}
	char *cut = strndup(text, keep);
	size_t cap = 4 * keep + 1 + sizeof(marker);
	char *clean = malloc(cap);
	bool ok = cut && clean;

	if (ok) {
		vr_utf8_escape(cut, clean, cap - sizeof(marker));
		strcat(clean, marker);
		ok = cJSON_AddStringToObject(o, key, clean) != NULL;
	}
	free(cut);
	free(clean);
	return ok;
}

/*
 * Builds record R as a JSON object: the time now, event, path (or null), uid,
 * pid, outcome, and digest and detail when R has them. NULL when out of
 * memory.
 */
cJSON *audit_record_object(const struct vr_audit_rec *r)
{
	char when[40], digest[2 * 8 + 8];
	struct timespec ts;
	struct tm tm;
	cJSON *o;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, 24, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + 19, sizeof(when) - 19, ".%03ldZ", ts.tv_nsec / 1000000);
	o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (!cJSON_AddStringToObject(o, "time", when) ||
	    !cJSON_AddStringToObject(o, "event", r->event) ||
	    !(r->path ? add_text(o, "path", r->path) : cJSON_AddNullToObject(o, "path") != NULL) ||
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
	if (r->detail && !add_text(o, "detail", r->detail))
		goto free_obj;
	return o;
free_obj:
	cJSON_Delete(o);
	return NULL;
}

/*
 * Prints record O as one line ending in '\n', A's lock held. With the chain
 * on, O gets the next seq and prev first, and the line gets its MAC (into
 * MAC) as the last field. Returns the malloc'd line, *LEN bytes with the
 * newline, or NULL when out of memory.
 */
static char *record_line(struct vr_audit *a, cJSON *o, uint8_t mac[VR_AUDIT_MAC_SIZE], size_t *len)
{
	char seq[24], prev[2 * VR_AUDIT_MAC_SIZE + 1];
	char *line, *withnl;
	size_t n;

	snprintf(seq, sizeof(seq), "%llu", (unsigned long long)a->seq);
	vr_hex(a->prev, sizeof(a->prev), prev);
	if (a->chained &&
	    (!cJSON_AddRawToObject(o, "seq", seq) || !cJSON_AddStringToObject(o, "prev", prev)))
		return NULL;
	line = cJSON_PrintUnformatted(o);
	if (!line)
		return NULL;
	n = strlen(line);
	withnl = realloc(line, n + strlen(MAC_FIELD) + 2 * VR_AUDIT_MAC_SIZE + 4);
	if (!withnl) {
		cJSON_free(line);
		return NULL;
	}
	if (a->chained) {
		/* MAC over the record as printed, then its "mac" field goes last */
		vr_hmac_sha256(a->key, VR_AUDIT_MAC_SIZE, withnl, n, mac);
		n--; /* the closing brace */
		n += (size_t)sprintf(withnl + n, MAC_FIELD);
		vr_hex(mac, VR_AUDIT_MAC_SIZE, withnl + n);
		n += 2 * VR_AUDIT_MAC_SIZE;
		withnl[n++] = '"';
		withnl[n++] = '}';
	}
	withnl[n] = '\n';
	withnl[n + 1] = '\0';
	*len = n + 1;
	return withnl;
}

/*
 * Appends LINE (LEN bytes, one whole record) to A's file, A's lock held. One
 * write per record keeps lines whole under O_APPEND; a record cut short (a
 * full disk) is cut away again, so every line stays one whole JSON record. A
 * CRITICAL record is on disk (fsync) before this returns. Returns 0 or
 * -errno.
 */
static int append_line(struct vr_audit *a, const char *line, size_t len, bool critical)
{
	off_t end = lseek(a->fd, 0, SEEK_END);
	int ret = audit_write_all(a->fd, line, len);

	if (ret && end >= 0 && ftruncate(a->fd, end) != 0)
		vr_log(LOG_ERR, "audit log: a partial record could not be cut away: %s",
		       strerror(errno));
	if (ret == 0 && critical && fsync(a->fd) != 0)
		ret = -errno;
	return ret;
}

int audit_write(struct vr_audit *a, cJSON *o, bool critical)
{
	uint8_t mac[VR_AUDIT_MAC_SIZE];
	size_t len;
	int ret = 0;
	char *line;

	/* the state names the record before the last one (its replacement failed): it must be
	 * right before another record goes on, or a restart could not find its place */
	if (a->chained && a->state_stale && (ret = audit_state_save(a, critical)) == 0)
		a->state_stale = false;
	line = ret ? NULL : record_line(a, o, mac, &len);
	if (!ret && !line)
		ret = -ENOMEM;
	/* a critical record is on disk before the state that follows it is */
	if (line)
		ret = append_line(a, line, len, critical);
	free(line);
	if (ret) {
		a->failures++;
		return ret;
	}
	if (a->chained) {
		/* only a record that is in the file moves the chain on */
		memcpy(a->prev, mac, sizeof(mac));
		a->seq++;
		vr_audit_key_next(a->key);
		a->state_stale = audit_state_save(a, critical) != 0;
	}
	return 0;
}

int vr_audit_log(struct vr_audit *a, const struct vr_audit_rec *r)
{
	cJSON *o;
	int ret = -ENOMEM;

	if (r->event && !known_event(r->event)) {
		/* a record nobody can find is a lost record: a programming error, said loudly */
		vr_log(LOG_ERR, "BUG: unknown audit event %s: record not written", r->event);
		return -EINVAL;
	}
	if (!a || !r->event || !r->outcome)
		return -EINVAL;
	o = audit_record_object(r);
	if (!o)
		goto fail;
	pthread_mutex_lock(&a->lock);
	/* the chain's fields are the lock's: records take their numbers in the order written */
	/* what was dropped is summed up before the daemon's last record */
	audit_limit_flush(a, strcmp(r->event, "daemon_stopped") == 0);
	ret = audit_limit_pass(a, r) ? audit_write(a, o, vr_audit_is_critical(r->event)) : 0;
	pthread_mutex_unlock(&a->lock);
	cJSON_Delete(o);
fail:
	if (ret)
		vr_log(LOG_ERR, "audit record %s for %s could not be written: %s", r->event,
		       r->path ? r->path : "-", strerror(-ret));
	return ret;
}

void vr_audit_set_limit(struct vr_audit *a, unsigned burst, unsigned per_sec, unsigned every_ms)
{
	pthread_mutex_lock(&a->lock);
	a->burst = burst;
	a->per_sec = per_sec;
	a->every_ms = every_ms;
	pthread_mutex_unlock(&a->lock);
}
