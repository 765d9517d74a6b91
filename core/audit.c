/* audit.c - the append-only JSON-lines audit log: one record per decision. */
#include "audit.h"
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

struct vr_audit {
	int fd;
	char *path;
	pthread_mutex_t lock;
	uint64_t failures; /* under LOCK: records that could not be written */
	/* the hash chain, when an audit key was given (all under LOCK) */
	bool chained;
	uint8_t key[VR_AUDIT_MAC_SIZE];	 /* K(seq): the key of the next record, evolved after it */
	uint8_t prev[VR_AUDIT_MAC_SIZE]; /* the last record's MAC (zeros before the first) */
	uint64_t seq;			 /* the next record's number */
};

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
};

int vr_audit_is_critical(const char *event)
{
	return strcmp(event, "seal_verification_failed") == 0 ||
	       strcmp(event, "policy_violation") == 0 || strcmp(event, "vram_seal_refused") == 0 ||
	       strcmp(event, "expected_digests_refused") == 0 ||
	       strcmp(event, "seal_check_error") == 0 || strcmp(event, "device_failed") == 0 ||
	       strcmp(event, "vram_export_refused") == 0 ||
	       strcmp(event, "vram_revoke_refused") == 0 ||
	       strcmp(event, "vram_import_refused") == 0;
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
	if (!ret && !(a->path = strdup(path)))
		ret = -ENOMEM;
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
	explicit_bzero(a->key, sizeof(a->key));
	free(a->path);
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

void vr_audit_key0(const struct vr_keyring *k, uint8_t out[VR_AUDIT_MAC_SIZE])
{
	/* the audit key file's own HKDF key for the label "audit" (key.h), MAC'ing the chain's
	 * name: K(0), which nothing else derives */
	vr_keyring_mac(k, "audit", VR_AUDIT_CHAIN_LABEL, strlen(VR_AUDIT_CHAIN_LABEL), out);
}

void vr_audit_key_next(uint8_t key[VR_AUDIT_MAC_SIZE])
{
	uint8_t next[VR_AUDIT_MAC_SIZE];

	vr_hmac_sha256(key, VR_AUDIT_MAC_SIZE, VR_AUDIT_NEXT_LABEL, strlen(VR_AUDIT_NEXT_LABEL),
		       next);
	memcpy(key, next, sizeof(next));
	explicit_bzero(next, sizeof(next)); /* the old key is gone: the past stays as written */
}

int vr_audit_chain_start(struct vr_audit *a, const uint8_t k0[VR_AUDIT_MAC_SIZE])
{
	struct vr_audit_chain c;
	char *buf = NULL, why[128];
	int ret = 0;

	vr_audit_chain_init(&c, k0);
	/* a log that already holds records continues its chain: every record is checked on
	 * the way, so the daemon never extends a chain it cannot vouch for */
	FILE *f = fopen(a->path, "r");
	size_t cap = 0;
	ssize_t n;
	uint64_t line = 0;

	while (f && (n = getline(&buf, &cap, f)) > 0) {
		line++;
		ret = vr_audit_chain_next(&c, buf, (size_t)n, why, sizeof(why));
		if (ret) {
			vr_log(
			    LOG_ERR,
			    "audit log %s, line %llu: %s: the chain cannot be continued; start a "
			    "new audit log (move this one aside, and keep it)",
			    a->path, (unsigned long long)line, why);
			break;
		}
	}
	if (f)
		fclose(f);
	free(buf);
	if (ret == 0) {
		pthread_mutex_lock(&a->lock);
		a->chained = true;
		a->seq = c.seq;
		memcpy(a->key, c.key, sizeof(a->key));
		memcpy(a->prev, c.prev, sizeof(a->prev));
		pthread_mutex_unlock(&a->lock);
	}
	explicit_bzero(&c, sizeof(c));
	return ret ? -EBADMSG : 0;
}

void vr_audit_chain_init(struct vr_audit_chain *c, const uint8_t k0[VR_AUDIT_MAC_SIZE])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->key, k0, VR_AUDIT_MAC_SIZE);
}

#define MAC_FIELD ",\"mac\":\""

/*
 * Splits chained record LINE (LEN bytes, its line ending dropped) into its MAC
 * and the record as it was MAC'd: the line without the "mac" field, closed
 * again by '}', into malloc'd *TEXT (*TLEN bytes). Accepts only a line that
 * ends in ,"mac":"<64 hex>"} as vr_audit_log writes it. Returns 0; -EBADMSG
 * with WHY; or -ENOMEM.
 */
static int split_mac(const char *line, size_t len, uint8_t mac[VR_AUDIT_MAC_SIZE], char **text,
		     size_t *tlen, char *why, size_t cap)
{
	/* ...,"mac":"<64 hex>"}\n : the MAC covers the line without that field */
	size_t tail = strlen(MAC_FIELD) + 2 * VR_AUDIT_MAC_SIZE + 2;
	char hex[2 * VR_AUDIT_MAC_SIZE + 1];

	if (len >= tail + 1) {
		memcpy(hex, line + len - 2 - 2 * VR_AUDIT_MAC_SIZE, 2 * VR_AUDIT_MAC_SIZE);
		hex[2 * VR_AUDIT_MAC_SIZE] = '\0';
	}
	if (len < tail + 1 || memcmp(line + len - tail, MAC_FIELD, strlen(MAC_FIELD)) != 0 ||
	    line[len - 1] != '}' || line[len - 2] != '"' || vr_unhex(hex, mac, VR_AUDIT_MAC_SIZE)) {
		snprintf(why, cap, "not a chained record (no \"mac\" last)");
		return -EBADMSG;
	}
	*text = malloc(len - tail + 2);
	if (!*text)
		return -ENOMEM;
	memcpy(*text, line, len - tail);
	(*text)[len - tail] = '}';
	(*text)[len - tail + 1] = '\0';
	*tlen = len - tail + 1;
	return 0;
}

/*
 * Starts chain C at the first record O of a file that begins mid-chain (the
 * log was rotated), whose "seq" SEQ is a whole number from 1 to 2^32-1:
 * its key is K(seq), reached from K(0), and its prev links to the file
 * before, which only that file can confirm. Forgeries still fail the MAC.
 */
static void resume_chain(struct vr_audit_chain *c, const cJSON *o, const cJSON *seq)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prev");

	for (uint64_t s = (uint64_t)seq->valuedouble; c->seq < s; c->seq++)
		vr_audit_key_next(c->key);
	if (cJSON_IsString(p))
		vr_unhex(p->valuestring, c->prev, sizeof(c->prev));
	c->started_at = c->seq;
}

/*
 * Checks record O against chain C: a whole "seq" that is the next number, a
 * "prev" that is the MAC of the record before, and its MAC, MAC, equal to
 * WANT, the one computed with this record's key. Returns 0, or -EBADMSG with
 * the first of these that fails in WHY.
 */
static int check_record(const struct vr_audit_chain *c, const cJSON *o,
			const uint8_t mac[VR_AUDIT_MAC_SIZE], const uint8_t want[VR_AUDIT_MAC_SIZE],
			char *why, size_t cap)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "seq");
	uint8_t prev[VR_AUDIT_MAC_SIZE];

	if (!cJSON_IsObject(o) || !cJSON_IsNumber(it) || it->valuedouble < 0 ||
	    it->valuedouble != (double)(uint64_t)it->valuedouble)
		snprintf(why, cap, "not a chained record (no seq)");
	else if ((uint64_t)it->valuedouble != c->seq)
		snprintf(why, cap,
			 "seq %llu where %llu was next: a record was dropped, added or "
			 "moved",
			 (unsigned long long)it->valuedouble, (unsigned long long)c->seq);
	else if (!cJSON_IsString(it = cJSON_GetObjectItemCaseSensitive(o, "prev")) ||
		 vr_unhex(it->valuestring, prev, sizeof(prev)) ||
		 !memeql_sec(prev, c->prev, sizeof(prev)))
		snprintf(why, cap, "seq %llu does not follow the record before it (prev)",
			 (unsigned long long)c->seq);
	else if (!memeql_sec(mac, want, VR_AUDIT_MAC_SIZE))
		snprintf(why, cap,
			 "seq %llu: MAC does not verify (edited, or made with another "
			 "key or epoch)",
			 (unsigned long long)c->seq);
	else
		return 0;
	return -EBADMSG;
}

int vr_audit_chain_next(struct vr_audit_chain *c, const char *line, size_t len, char *why,
			size_t cap)
{
	uint8_t mac[VR_AUDIT_MAC_SIZE], want[VR_AUDIT_MAC_SIZE];
	const cJSON *it;
	cJSON *o;
	char *text;
	size_t tlen;
	int ret, perr;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	ret = split_mac(line, len, mac, &text, &tlen, why, cap);
	if (ret)
		return ret;
	o = vr_json_parse(text, tlen, NULL, &perr);
	if (perr == -ENOMEM) {
		free(text);
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	it = cJSON_GetObjectItemCaseSensitive(o, "seq");
	if (!c->started && cJSON_IsNumber(it) && it->valuedouble >= 1 &&
	    it->valuedouble < 4294967296.0 && c->seq == 0)
		resume_chain(c, o, it);
	c->started = true;
	/* this record's key: K(seq), after the start above */
	vr_hmac_sha256(c->key, VR_AUDIT_MAC_SIZE, text, tlen, want);
	ret = check_record(c, o, mac, want, why, cap);
	cJSON_Delete(o);
	free(text);
	if (ret == 0) {
		memcpy(c->prev, mac, sizeof(mac));
		c->seq++;
		vr_audit_key_next(c->key);
	}
	return ret;
}

/*
 * Builds record R as a JSON object: the time now, event, path (or null), uid,
 * pid, outcome, and digest and detail when R has them. NULL when out of
 * memory.
 */
/* Adds TEXT (from a caller: a path, a reason) as KEY, bytes that are not UTF-8 as \xNN, so
 * every record stays valid JSON for strict parsers. Returns false when out of memory. */
static bool add_text(cJSON *o, const char *key, const char *text)
{
	size_t cap = 4 * strlen(text) + 1;
	char *clean = malloc(cap);
	bool ok = clean && cJSON_AddStringToObject(o, key, vr_utf8_escape(text, clean, cap));

	free(clean);
	return ok;
}

static cJSON *record_object(const struct vr_audit_rec *r)
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
		vr_hmac_sha256(a->key, sizeof(a->key), withnl, n, mac);
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
	int ret = write_all(a->fd, line, len);

	if (ret && end >= 0 && ftruncate(a->fd, end) != 0)
		vr_log(LOG_ERR, "audit log: a partial record could not be cut away: %s",
		       strerror(errno));
	if (ret == 0 && critical && fsync(a->fd) != 0)
		ret = -errno;
	return ret;
}

int vr_audit_log(struct vr_audit *a, const struct vr_audit_rec *r)
{
	uint8_t mac[VR_AUDIT_MAC_SIZE];
	char *line = NULL;
	size_t len;
	cJSON *o;
	int ret = -ENOMEM;

	if (r->event && !known_event(r->event)) {
		/* a record nobody can find is a lost record: a programming error, said loudly */
		vr_log(LOG_ERR, "BUG: unknown audit event %s: record not written", r->event);
		return -EINVAL;
	}
	if (!a || !r->event || !r->outcome)
		return -EINVAL;
	o = record_object(r);
	if (!o)
		goto fail;
	pthread_mutex_lock(&a->lock);
	/* the chain's fields are the lock's: records take their numbers in the order written */
	line = record_line(a, o, mac, &len);
	if (line) {
		ret = append_line(a, line, len, vr_audit_is_critical(r->event));
		if (ret)
			a->failures++;
	}
	if (ret == 0 && a->chained) {
		/* only a record that is in the file moves the chain on */
		memcpy(a->prev, mac, sizeof(mac));
		a->seq++;
		vr_audit_key_next(a->key);
	}
	pthread_mutex_unlock(&a->lock);
	free(line);
	cJSON_Delete(o);
fail:
	if (ret)
		vr_log(LOG_ERR, "audit record %s for %s could not be written: %s", r->event,
		       r->path ? r->path : "-", strerror(-ret));
	return ret;
}
