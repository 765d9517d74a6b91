/* audit_limit.c - refusal records per user: a token bucket, and a summary of what it dropped. */
#include "audit_private.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Fills B for the time since it was last filled: PER_SEC records a second, up to BURST. */
static void refill(const struct vr_audit *a, struct audit_bucket *b, uint64_t now)
{
	uint64_t cap = (uint64_t)a->burst * 1000;

	if (now > b->last_ms)
		b->milli += (now - b->last_ms) * a->per_sec;
	if (b->milli > cap)
		b->milli = cap;
	b->last_ms = now;
}

/* Writes B's audit_suppressed record (how many of its user's records were dropped, over how
 * long) and starts its count again. A record that cannot be written is logged. */
static void summary(struct vr_audit *a, struct audit_bucket *b, uint64_t now)
{
	char detail[200];
	struct vr_audit_rec r = {
	    .event = "audit_suppressed", .uid = b->uid, .outcome = "denied", .detail = detail};
	cJSON *o;
	int ret = -ENOMEM;

	snprintf(detail, sizeof(detail),
		 "%llu records of this user's refused requests were not written, over %llu.%03llu "
		 "s (the limit: %u at once, then %u a second)",
		 (unsigned long long)b->dropped, (unsigned long long)(now - b->since_ms) / 1000,
		 (unsigned long long)(now - b->since_ms) % 1000, a->burst, a->per_sec);
	o = audit_record_object(&r);
	if (o && cJSON_AddNumberToObject(o, "dropped", (double)b->dropped))
		ret = audit_write(a, o, false);
	else
		a->failures++;
	cJSON_Delete(o);
	vr_log(ret ? LOG_ERR : LOG_NOTICE,
	       "audit: uid %u: %llu refusal records over the limit were counted, not written%s%s",
	       (unsigned)b->uid, (unsigned long long)b->dropped,
	       ret ? "; and the summary could not be written: " : "", ret ? strerror(-ret) : "");
	b->dropped = 0;
}

void audit_limit_flush(struct vr_audit *a, bool all)
{
	uint64_t now = now_ms();

	for (int i = 0; i < AUDIT_BUCKETS; i++) {
		struct audit_bucket *b = &a->buckets[i];

		if (!b->used || !b->dropped)
			continue;
		refill(a, b, now);
		/* the user is quiet again (the bucket is full), or it has gone on long enough:
		 * summed up all the same, and counted afresh */
		if (all || b->milli >= (uint64_t)a->burst * 1000 ||
		    now - b->since_ms >= a->every_ms)
			summary(a, b, now);
	}
}

/*
 * UID's bucket, made full for a user not seen yet: in a free slot, else in place of the
 * longest idle one (one with nothing dropped first; one with drops is summed up first).
 */
static struct audit_bucket *bucket_of(struct vr_audit *a, uid_t uid, uint64_t now)
{
	struct audit_bucket *slot = NULL, *old = NULL;

	for (int i = 0; i < AUDIT_BUCKETS; i++) {
		struct audit_bucket *b = &a->buckets[i];

		if (b->used && b->uid == uid)
			return b;
		if (!b->used)
			slot = slot ? slot : b;
		else if (!old || (old->dropped && !b->dropped) ||
			 (!old->dropped == !b->dropped && b->last_ms < old->last_ms))
			old = b;
	}
	if (!slot) {
		if (old->dropped)
			summary(a, old, now);
		slot = old;
	}
	memset(slot, 0, sizeof(*slot));
	slot->used = true;
	slot->uid = uid;
	slot->milli = (uint64_t)a->burst * 1000;
	slot->last_ms = now;
	return slot;
}

bool audit_limit_pass(struct vr_audit *a, const struct vr_audit_rec *r)
{
	/* root and the daemon's own user could fill the log's disk anyway: never limited */
	if (strcmp(r->outcome, "denied") != 0 || r->uid == 0 || r->uid == a->self)
		return true;
	uint64_t now = now_ms();
	struct audit_bucket *b = bucket_of(a, r->uid, now);

	refill(a, b, now);
	if (b->milli >= 1000) {
		b->milli -= 1000;
		return true;
	}
	if (b->dropped++ == 0) {
		b->since_ms = now;
		vr_log(LOG_NOTICE,
		       "audit: uid %u's refused requests are over the limit (%u at once, then %u a "
		       "second): counted, not written, until they slow down",
		       (unsigned)r->uid, a->burst, a->per_sec);
	}
	return false;
}
