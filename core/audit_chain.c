/* audit_chain.c - the audit log's hash chain: its keys, a reader's walk, and a restart's
 * continuation (from the first key, or from the state file without it). */
#include "audit_private.h"
#include "digest.h"
#include "json.h"
#include "key.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nettle/memops.h>

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

void vr_audit_chain_init(struct vr_audit_chain *c, const uint8_t k0[VR_AUDIT_MAC_SIZE])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->key, k0, VR_AUDIT_MAC_SIZE);
}

/*
 * Splits chained record LINE (LEN bytes, its line ending dropped) into its MAC
 * and the record as it was MAC'd: the line without the "mac" field, closed
 * again by '}', into malloc'd *TEXT (*TLEN bytes). Accepts only a line that
 * ends in ,"mac":"<64 hex>"} as vr_audit_log writes it. Returns 0; -EBADMSG
 * with WHY; or -ENOMEM.
 */
int audit_split_mac(const char *line, size_t len, uint8_t mac[VR_AUDIT_MAC_SIZE], char **text,
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
	ret = audit_split_mac(line, len, mac, &text, &tlen, why, cap);
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
 * Walks A's log from K0 into C, checking every record: a restart never extends a chain it
 * cannot vouch for. BEFORE gets the prev of the last record. Returns 0 or -EBADMSG/-ENOMEM,
 * logged with the line.
 */
static int walk_log(struct vr_audit *a, struct vr_audit_chain *c, uint8_t before[VR_AUDIT_MAC_SIZE])
{
	FILE *f = fopen(a->path, "r");
	char *buf = NULL, why[160];
	size_t cap = 0;
	ssize_t n;
	uint64_t line = 0;
	int ret = 0;

	while (f && (n = getline(&buf, &cap, f)) > 0) {
		line++;
		memcpy(before, c->prev, VR_AUDIT_MAC_SIZE);
		ret = vr_audit_chain_next(c, buf, (size_t)n, why, sizeof(why));
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
	return ret == -ENOMEM ? ret : ret ? -EBADMSG : 0;
}

/* Makes SEQ, PREV and KEY A's chain, and writes the state file for them. 0 or -errno. */
static int adopt(struct vr_audit *a, uint64_t seq, const uint8_t prev[VR_AUDIT_MAC_SIZE],
		 const uint8_t key[VR_AUDIT_MAC_SIZE])
{
	int ret;

	pthread_mutex_lock(&a->lock);
	a->seq = seq;
	memcpy(a->prev, prev, VR_AUDIT_MAC_SIZE);
	memcpy(a->key, key, VR_AUDIT_MAC_SIZE);
	ret = audit_state_save(a, true);
	a->chained = ret == 0;
	pthread_mutex_unlock(&a->lock);
	return ret;
}

/* Refuses a log whose last record (LAST, when the log has one) is not where the state (at
 * SEQ) says the chain is. Returns -EBADMSG. */
static int disagree(const struct vr_audit *a, uint64_t last, uint64_t seq)
{
	char why[200];

	if (last >= seq)
		snprintf(why, sizeof(why),
			 "the log's last record is seq %llu, where the state's next is %llu and "
			 "that record does not verify with its key: the state file is an older "
			 "one, or records were added or replaced",
			 (unsigned long long)last, (unsigned long long)seq);
	else if (last + 1 < seq)
		snprintf(why, sizeof(why),
			 "the log ends at seq %llu, but the state says %llu records were written: "
			 "records were cut off its end",
			 (unsigned long long)last, (unsigned long long)seq);
	else
		snprintf(why, sizeof(why),
			 "its last record (seq %llu) is not the one the state follows: the log "
			 "or the state was replaced",
			 (unsigned long long)last);
	vr_log(LOG_ERR,
	       "audit log %s and its chain state %s disagree: %s; nothing is chained onto "
	       "them (check the log with vram-seal audit-verify and the first key)",
	       a->path, a->state_path, why);
	return -EBADMSG;
}

/*
 * With the first key and a state file (SEQ, PREV, KEY): the state must hold K0's key for
 * its position, and the log, walked as C (BEFORE: its last record's prev), must end where
 * the state is, or one record past it. Returns 0 having adopted the chain, or -errno.
 */
static int start_with_state(struct vr_audit *a, const struct vr_audit_chain *c,
			    const uint8_t before[VR_AUDIT_MAC_SIZE],
			    const uint8_t k0[VR_AUDIT_MAC_SIZE], uint64_t seq,
			    const uint8_t prev[VR_AUDIT_MAC_SIZE],
			    const uint8_t key[VR_AUDIT_MAC_SIZE])
{
	uint8_t *k = vr_secure_alloc(VR_AUDIT_MAC_SIZE);
	bool mine;

	if (!k)
		return -ENOMEM;
	memcpy(k, k0, VR_AUDIT_MAC_SIZE);
	for (uint64_t i = 0; i < seq; i++)
		vr_audit_key_next(k);
	mine = memeql_sec(k, key, VR_AUDIT_MAC_SIZE);
	vr_secure_free(k, VR_AUDIT_MAC_SIZE);
	if (!mine) {
		vr_log(LOG_ERR,
		       "audit chain state %s does not belong to audit_key's chain (its key is not "
		       "the key's for seq %llu): nothing is chained onto it",
		       a->state_path, (unsigned long long)seq);
		return -EBADMSG;
	}
	if (!c->started) /* an empty log: the chain goes on from the state */
		return adopt(a, seq, prev, key);
	if (c->seq == seq && memeql_sec(c->prev, prev, VR_AUDIT_MAC_SIZE))
		return adopt(a, seq, prev, key);
	if (c->seq == seq + 1 && memeql_sec(before, prev, VR_AUDIT_MAC_SIZE))
		return adopt(a, c->seq, c->prev, c->key); /* the record written before a crash */
	return disagree(a, c->seq - 1, seq);
}

int vr_audit_chain_start(struct vr_audit *a, const uint8_t k0[VR_AUDIT_MAC_SIZE])
{
	struct vr_audit_chain c;
	uint8_t before[VR_AUDIT_MAC_SIZE], prev[VR_AUDIT_MAC_SIZE];
	uint8_t *key = vr_secure_alloc(VR_AUDIT_MAC_SIZE);
	uint64_t seq = 0;
	int st, ret;

	if (!key)
		return -ENOMEM;
	st = audit_state_load(a->state_path, &seq, prev, key);
	vr_audit_chain_init(&c, k0);
	ret = st && st != -ENOENT ? st : walk_log(a, &c, before);
	if (ret == 0 && st == 0)
		ret = start_with_state(a, &c, before, k0, seq, prev, key);
	else if (ret == 0)
		ret = adopt(a, c.seq, c.prev, c.key); /* the first start, or a lost state file */
	explicit_bzero(&c, sizeof(c));
	vr_secure_free(key, VR_AUDIT_MAC_SIZE);
	return ret;
}

/*
 * Continues from state SEQ, PREV, KEY over LINE, the log's last record (LEN bytes): the
 * record the state follows, or the one after it (checked with the state's key). Returns 0
 * having adopted the chain, or -errno.
 */
static int resume_over(struct vr_audit *a, const char *line, size_t len, uint64_t seq,
		       const uint8_t prev[VR_AUDIT_MAC_SIZE], const uint8_t key[VR_AUDIT_MAC_SIZE])
{
	struct vr_audit_chain c = {.seq = seq, .started = true, .started_at = seq};
	uint8_t mac[VR_AUDIT_MAC_SIZE];
	char why[160], *text = NULL;
	size_t tlen;
	int ret, perr;

	memcpy(c.key, key, VR_AUDIT_MAC_SIZE);
	memcpy(c.prev, prev, VR_AUDIT_MAC_SIZE);
	if (vr_audit_chain_next(&c, line, len, why, sizeof(why)) == 0) {
		vr_log(LOG_NOTICE,
		       "audit chain state %s was one record behind the log (a stop between the "
		       "record and the state): record %llu verifies with its key, moved past it",
		       a->state_path, (unsigned long long)seq);
		ret = adopt(a, c.seq, c.prev, c.key);
		explicit_bzero(&c, sizeof(c));
		return ret;
	}
	explicit_bzero(&c, sizeof(c));
	ret = audit_split_mac(line, len, mac, &text, &tlen, why, sizeof(why));
	if (ret == -EBADMSG) {
		vr_log(LOG_ERR,
		       "audit log %s: its last record is not chained, but %s is there: "
		       "nothing is chained onto it",
		       a->path, a->state_path);
		return ret;
	}
	if (ret)
		return ret;
	cJSON *o = vr_json_parse(text, tlen, NULL, &perr);
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "seq");
	double last = cJSON_IsNumber(s) && s->valuedouble >= 0 ? s->valuedouble : -1;

	cJSON_Delete(o);
	free(text);
	if (last >= 0 && seq > 0 && last == (double)(seq - 1) &&
	    memeql_sec(mac, prev, VR_AUDIT_MAC_SIZE))
		return adopt(a, seq, prev, key);
	return disagree(a, last < 0 ? UINT64_MAX : (uint64_t)last, seq);
}

/*
 * Without a state file: a log whose last record LINE (LEN bytes; NULL for an empty log) is
 * chained is refused (-EBADMSG); any other log goes on unchained (1).
 */
static int no_state(const struct vr_audit *a, const char *line, size_t len)
{
	if (!line || len <= strlen(MAC_FIELD) || !strstr(line, MAC_FIELD))
		return 1; /* an unchained log, and no chain asked for */
	vr_log(LOG_ERR,
	       "audit log %s is chained, but its state %s is missing: give audit_key= once to "
	       "check the log and write the state again",
	       a->path, a->state_path);
	return -EBADMSG;
}

int vr_audit_chain_resume(struct vr_audit *a)
{
	uint8_t prev[VR_AUDIT_MAC_SIZE];
	uint8_t *key = vr_secure_alloc(VR_AUDIT_MAC_SIZE);
	uint64_t seq = 0;
	char *line = NULL;
	size_t len = 0;
	int st, ret;

	if (!key)
		return -ENOMEM;
	st = audit_state_load(a->state_path, &seq, prev, key);
	if (st && st != -ENOENT) {
		vr_secure_free(key, VR_AUDIT_MAC_SIZE);
		return st; /* said why */
	}
	ret = audit_last_line(a, &line, &len);
	if (ret)
		vr_log(LOG_ERR, "audit log %s: its last record cannot be read: %s", a->path,
		       strerror(-ret));
	else if (st == -ENOENT)
		ret = no_state(a, line, len);
	else if (!line) {
		vr_log(LOG_NOTICE,
		       "audit log %s is empty: the chain goes on at seq %llu (the records "
		       "before it are in a rotated file)",
		       a->path, (unsigned long long)seq);
		ret = adopt(a, seq, prev, key);
	} else
		ret = resume_over(a, line, len, seq, prev, key);
	free(line);
	vr_secure_free(key, VR_AUDIT_MAC_SIZE);
	return ret;
}
