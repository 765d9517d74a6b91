/* report.c - the texts the tree shows: status JSON, verify report lines, seal text. */
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* A copy of file F's signed seal text; returns 0, -ENOENT (no longer sealed) or -ENOMEM. */
int res_seal_text(struct vr_residency *r, struct vr_node *f, char **text, size_t *len)
{
	int ret = -ENOENT;

	res_lock(r);
	if (f->seal_json && (f->state == ST_SEALED || f->state == ST_QUARANTINED)) {
		*text = strdup(f->seal_json);
		ret = *text ? 0 : -ENOMEM;
		if (ret == 0)
			*len = strlen(*text);
	}
	res_unlock(r);
	return ret;
}

int vr_res_status(struct vr_residency *r, char **out, size_t *len)
{
	return res_status_text(r, out, len);
}

/* The counters the status shows, copied under the tree lock. */
struct status_counts {
	uint64_t files, sealed, quarantined, incomplete, refused, leases, exports;
	uint64_t meta_bytes, meta_limit;
	struct res_expect_counts ek;
	struct vr_res_restored restored;
	bool kept; /* a keeper holds what is resident across restarts */
	struct res_evictions ev;
	struct vr_device_info store; /* the host store of evicted files, when there is one */
};

/* Copies the counters (not the expected digests' counts). [T] */
static void status_snapshot(struct vr_residency *r, struct status_counts *k)
{
	res_held(r);

	*k = (struct status_counts){
	    .files = r->files,
	    .sealed = r->sealed,
	    .quarantined = r->quarantined,
	    .incomplete = r->incomplete,
	    .refused = r->refused,
	    .leases = r->leases,
	    .exports = r->exports,
	    .meta_bytes = r->meta_bytes,
	    .meta_limit = res_meta_limit(r),
	    .restored = r->restored,
	    .kept = r->cfg.keeper != NULL,
	    .ev = r->ev,
	};
}

/* Adds an unsigned integer as raw JSON text: cJSON's number printer rounds to 15 digits. */
static bool add_u64(cJSON *o, const char *key, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	return cJSON_AddRawToObject(o, key, num) != NULL;
}

/* The host store's use, outside the tree lock (its info never waits). */
static void store_snapshot(struct vr_residency *r, struct status_counts *k)
{
	if (!r->cfg.evict_store || vr_backend_info(r->cfg.evict_store, &k->store) != 0)
		memset(&k->store, 0, sizeof(k->store));
}

/* Evicted files: how many, their bytes, the host memory they take and its limit. */
static bool status_evict(struct vr_residency *r, cJSON *o, const struct status_counts *k)
{
	cJSON *x = cJSON_AddObjectToObject(o, "eviction");

	return x && cJSON_AddBoolToObject(x, "available", r->cfg.evict_store != NULL) &&
	       cJSON_AddStringToObject(x, "policy", r->cfg.evict.on ? "nvml" : "off") &&
	       (!k->ev.policy_state[0] ||
		cJSON_AddStringToObject(x, "policy_state", k->ev.policy_state)) &&
	       cJSON_AddStringToObject(x, "restore", r->cfg.restore_manual ? "manual" : "auto") &&
	       add_u64(x, "files", k->ev.files) && add_u64(x, "bytes", k->ev.bytes) &&
	       add_u64(x, "host_bytes", k->store.total_bytes - k->store.free_bytes) &&
	       add_u64(x, "host_limit_bytes", k->store.total_bytes) &&
	       add_u64(x, "evictions", k->ev.evicted) && add_u64(x, "restores", k->ev.restored) &&
	       add_u64(x, "refused", k->ev.refused);
}

/* Whether a keeper holds what is resident, and what the last restart brought back. */
static bool status_restart(cJSON *o, const struct status_counts *k)
{
	const struct vr_res_restored *g = &k->restored;
	cJSON *x;

	if (!cJSON_AddBoolToObject(o, "kept_across_restarts", k->kept))
		return false;
	if (!g->generation)
		return true;
	x = cJSON_AddObjectToObject(o, "restored");
	return x && add_u64(x, "files", g->files) && add_u64(x, "bytes", g->bytes) &&
	       add_u64(x, "folders", g->dirs) && add_u64(x, "links", g->links) &&
	       add_u64(x, "quarantined", g->quarantined) &&
	       add_u64(x, "not_restored", g->refused) &&
	       cJSON_AddNumberToObject(x, "seconds", g->seconds) &&
	       add_u64(x, "record_generation", g->generation);
}

/* The backend, what it warns of, and the device with its memory. False: no memory. */
static bool status_device(cJSON *o, const struct vr_device_info *info)
{
	cJSON *d;

	if (!cJSON_AddStringToObject(o, "backend", info->backend))
		return false;
	if (strcmp(info->backend, "mock") == 0 &&
	    !cJSON_AddStringToObject(o, "warning",
				     "mock backend: file bytes are in host memory, not on a GPU"))
		return false;
	if (info->failed && !cJSON_AddStringToObject(
				o, "error",
				"the device failed (a sticky GPU error): loads are refused and "
				"checks cannot run until the daemon restarts"))
		return false;
	d = cJSON_AddObjectToObject(o, "device");
	return d && cJSON_AddBoolToObject(d, "failed", info->failed) &&
	       cJSON_AddNumberToObject(d, "index", info->index) &&
	       cJSON_AddStringToObject(d, "name", info->name) &&
	       cJSON_AddStringToObject(d, "uuid", info->uuid) &&
	       add_u64(d, "total_bytes", info->total_bytes) &&
	       add_u64(d, "free_bytes", info->free_bytes) &&
	       add_u64(o, "used_bytes", info->total_bytes - info->free_bytes) &&
	       /* of those, removed files' memory a client still maps (docs/socket.md) */
	       add_u64(o, "held_by_clients_bytes", info->held_by_clients);
}

/* device_digest= as status shows it. */
static const char *res_device_digest_name(const struct vr_residency *r)
{
	unsigned dd = r->cfg.device_digest ? r->cfg.device_digest : VR_DEVICE_DIGEST_FSVERITY;

	return dd == VR_DEVICE_DIGEST_FSVERITY ? "fsverity"
	       : dd == VR_DEVICE_DIGEST_BLAKE3 ? "blake3"
					       : "both";
}

/* The files by state, the configuration that shapes seals, the expected digests and the
 * socket. False: no memory. */
static bool status_counts(struct vr_residency *r, cJSON *o, const struct status_counts *k)
{
	cJSON *d;

	if (!cJSON_AddNumberToObject(o, "files", (double)k->files) ||
	    !cJSON_AddNumberToObject(o, "sealed", (double)k->sealed) ||
	    !cJSON_AddNumberToObject(o, "quarantined", (double)k->quarantined) ||
	    !cJSON_AddNumberToObject(o, "incomplete", (double)k->incomplete) ||
	    !cJSON_AddStringToObject(o, "sha256", r->cfg.sha256_off ? "off" : "on") ||
	    !cJSON_AddStringToObject(o, "device_digest", res_device_digest_name(r)) ||
	    !cJSON_AddNumberToObject(o, "audit_failures", (double)vr_audit_failures(r->cfg.audit)))
		return false;
	/* the staging loads go through (-o staging): a card run's figures name it */
	const struct vr_staging *g = &r->cfg.backend->staging;

	d = cJSON_AddObjectToObject(o, "staging");
	if (!d || !cJSON_AddNumberToObject(d, "slot_bytes", (double)g->slot) ||
	    !cJSON_AddNumberToObject(d, "slots", g->slots) ||
	    !cJSON_AddNumberToObject(d, "stages", g->stages) ||
	    !cJSON_AddStringToObject(d, "memory", r->cfg.backend->pool ? "host" : "pinned"))
		return false;
	/* publishers' digests: sources in force, refused ones, files sealed as checked, and
	 * files refused at sealing (their bytes differ, or nothing covered them) */
	d = cJSON_AddObjectToObject(o, "expected");
	if (!d || !cJSON_AddNumberToObject(d, "sources", (double)k->ek.sources) ||
	    !cJSON_AddNumberToObject(d, "sources_refused", (double)k->ek.sources_refused) ||
	    !cJSON_AddNumberToObject(d, "checked", (double)k->ek.checked) ||
	    !cJSON_AddNumberToObject(d, "refused", (double)k->refused) ||
	    !cJSON_AddStringToObject(d, "mode", r->cfg.expect_require ? "require" : "check") ||
	    !cJSON_AddNumberToObject(d, "trusted_keys", (double)vr_trust_count(r->cfg.trust)) ||
	    !cJSON_AddNumberToObject(d, "trusted_roots", (double)vr_trust_roots(r->cfg.trust)))
		return false;
	/* the socket: where it is, leases live now and exports made since the mount */
	/* host memory the entries and attributes take; each user but root and the mount's
	 * owner is held to the limit */
	d = cJSON_AddObjectToObject(o, "metadata");
	if (!d || !add_u64(d, "bytes", k->meta_bytes) ||
	    !add_u64(d, "limit_per_user", k->meta_limit))
		return false;
	d = cJSON_AddObjectToObject(o, "socket");
	return d &&
	       (r->cfg.socket_path ? cJSON_AddStringToObject(d, "path", r->cfg.socket_path)
				   : cJSON_AddNullToObject(d, "path")) &&
	       cJSON_AddNumberToObject(d, "leases", (double)k->leases) &&
	       cJSON_AddNumberToObject(d, "exports", (double)k->exports);
}

/* O printed, malloc'd and newline-terminated into *OUT; returns 0 or -ENOMEM. */
static int print_line(const cJSON *o, char **out, size_t *len)
{
	char *text = cJSON_Print(o);

	if (!text)
		return -ENOMEM;
	size_t n = strlen(text);

	*out = malloc(n + 2);
	if (*out) {
		memcpy(*out, text, n);
		(*out)[n] = '\n';
		(*out)[n + 1] = '\0';
		*len = n + 1;
	}
	cJSON_free(text);
	return *out ? 0 : -ENOMEM;
}

/* The status JSON, malloc'd and newline-terminated; returns 0 or -errno. */
int res_status_text(struct vr_residency *r, char **out, size_t *len)
{
	struct vr_device_info info;
	struct status_counts k;
	int ret = res_device_info(r, &info);
	cJSON *o;

	if (ret)
		return ret;
	res_lock(r);
	status_snapshot(r, &k);
	res_expect_counts(r, &k.ek); /* a walk of the tree: the status's alone, not metrics' */
	res_unlock(r);
	store_snapshot(r, &k);
	o = cJSON_CreateObject();
	if (!o)
		return -ENOMEM;
	ret = status_device(o, &info) && status_counts(r, o, &k) && status_restart(o, &k) &&
		      status_evict(r, o, &k)
		  ? print_line(o, out, len)
		  : -ENOMEM;
	cJSON_Delete(o);
	return ret;
}

/* Upper bounds of the verification-duration histogram's buckets, in seconds (+Inf after). */
const double res_verify_bounds[RES_VERIFY_BUCKETS] = {0.001, 0.01, 0.05, 0.1, 0.5, 1,
						      2.5,   5,	   10,	 30,  120};

void res_count_check(struct vr_residency *r, int ret, double seconds)
{
	res_held(r);

	struct res_metrics *m = r->metrics;

	if (ret == 0)
		m->verified++;
	else if (ret == -EBADMSG || ret == -EACCES)
		m->verify_failed++;
	else
		m->verify_errors++;
	for (int i = 0; i < RES_VERIFY_BUCKETS; i++)
		m->verify_le[i] += seconds <= res_verify_bounds[i];
	m->verify_seconds += seconds;
}

/* One metric's HELP and TYPE lines. */
static void head(struct vr_text *t, const char *name, const char *type, const char *help)
{
	vr_text_printf(t, "# HELP vram_residency_%s %s\n# TYPE vram_residency_%s %s\n", name, help,
		       name, type);
}

/* A metric with one sample: its HELP and TYPE lines, and NAME{LABELS} V. */
static void one(struct vr_text *t, const char *name, const char *type, const char *help,
		const char *labels, uint64_t v)
{
	head(t, name, type, help);
	vr_text_printf(t, "vram_residency_%s{%s} %llu\n", name, labels, (unsigned long long)v);
}

/* Files by state, from the counters K. */
static void metrics_files(struct vr_text *t, const char *labels, const struct status_counts *k)
{
	const struct {
		const char *state;
		uint64_t n;
	} states[] = {{"loading", k->files - k->sealed - k->incomplete - k->refused},
		      {"sealed", k->sealed - k->quarantined},
		      {"quarantined", k->quarantined},
		      {"incomplete", k->incomplete},
		      {"refused", k->refused}};

	head(t, "files", "gauge", "Files by state.");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		vr_text_printf(t, "vram_residency_files{%s,state=\"%s\"} %llu\n", labels,
			       states[i].state, (unsigned long long)states[i].n);
}

/* Seal checks by result, and the histogram of how long they took. */
static void metrics_checks(struct vr_text *t, const char *labels, const struct res_metrics *m)
{
	uint64_t count = m->verified + m->verify_failed + m->verify_errors;
	const char *hist = "vram_residency_verification_duration_seconds";

	head(t, "verifications_total", "counter",
	     "Seal checks on the device: passed, failed (differs, or a source fails), error "
	     "(could not run).");
	vr_text_printf(t, "vram_residency_verifications_total{%s,result=\"passed\"} %llu\n", labels,
		       (unsigned long long)m->verified);
	vr_text_printf(t, "vram_residency_verifications_total{%s,result=\"failed\"} %llu\n", labels,
		       (unsigned long long)m->verify_failed);
	vr_text_printf(t, "vram_residency_verifications_total{%s,result=\"error\"} %llu\n", labels,
		       (unsigned long long)m->verify_errors);
	head(t, "verification_duration_seconds", "histogram",
	     "How long a seal check took (signature and device digest).");
	for (int i = 0; i < RES_VERIFY_BUCKETS; i++)
		vr_text_printf(t, "%s_bucket{%s,le=\"%g\"} %llu\n", hist, labels,
			       res_verify_bounds[i], (unsigned long long)m->verify_le[i]);
	vr_text_printf(t, "%s_bucket{%s,le=\"+Inf\"} %llu\n", hist, labels,
		       (unsigned long long)count);
	vr_text_printf(t, "%s_sum{%s} %.6f\n", hist, labels, m->verify_seconds);
	vr_text_printf(t, "%s_count{%s} %llu\n", hist, labels, (unsigned long long)count);
}

/* Evicted files and their moves (evict.c). */
static void metrics_evict(struct vr_text *t, const char *labels, const struct status_counts *k)
{
	one(t, "evicted_files", "gauge", "Sealed files evicted to host memory now.", labels,
	    k->ev.files);
	one(t, "evicted_bytes", "gauge", "Bytes of the files evicted to host memory now.", labels,
	    k->ev.bytes);
	one(t, "evict_host_bytes", "gauge", "Host memory the evicted files take.", labels,
	    k->store.total_bytes - k->store.free_bytes);
	one(t, "evictions_total", "counter", "Files evicted to host memory.", labels,
	    k->ev.evicted);
	one(t, "evict_restores_total", "counter",
	    "Evicted files restored to the device (checked there against their seals).", labels,
	    k->ev.restored);
	one(t, "evict_refused_total", "counter",
	    "Evictions and restores that failed (no room, in use, a device error).", labels,
	    k->ev.refused);
}

/* The Prometheus text: the device, files by state, loads, seals, checks, audit, socket. */
int res_metrics_text(struct vr_residency *r, char **text, size_t *len)
{
	struct vr_device_info info;
	struct vr_text t = {0};
	struct status_counts k;
	struct res_metrics m;
	char labels[256];
	int ret = res_device_info(r, &info);

	if (ret)
		return ret;
	res_lock(r);
	status_snapshot(r, &k);
	m = *r->metrics;
	res_unlock(r);
	store_snapshot(r, &k);
	/* UUID and gpu as dcgm-exporter labels them, so PromQL joins the two on UUID */
	snprintf(labels, sizeof(labels), "UUID=\"%s\",gpu=\"%d\",backend=\"%s\"", info.uuid,
		 info.index, info.backend);
	one(&t, "device_total_bytes", "gauge", "Device memory files may use.", labels,
	    info.total_bytes);
	one(&t, "device_used_bytes", "gauge", "Device memory files hold.", labels,
	    info.total_bytes - info.free_bytes);
	one(&t, "device_free_bytes", "gauge", "Device memory left for files.", labels,
	    info.free_bytes);
	one(&t, "device_failed", "gauge", "1 once the device returned an unrecoverable error.",
	    labels, info.failed ? 1 : 0);
	metrics_files(&t, labels, &k);
	one(&t, "loads_total", "counter", "Loads begun (new files and replacements).", labels,
	    m.loads);
	one(&t, "seals_total", "counter", "Files sealed.", labels, m.seals);
	one(&t, "quarantines_total", "counter", "Files quarantined after a failed check.", labels,
	    m.quarantines);
	metrics_checks(&t, labels, &m);
	one(&t, "audit_write_failures_total", "counter", "Audit records that could not be written.",
	    labels, vr_audit_failures(r->cfg.audit));
	one(&t, "exports_total", "counter", "Sealed files handed to processes through the socket.",
	    labels, k.exports);
	one(&t, "leases", "gauge", "Socket leases alive (files mapped by processes).", labels,
	    k.leases);
	one(&t, "restored_files", "gauge",
	    "Files this start took back from a keeper, checked on the device against their seals.",
	    labels, k.restored.files);
	metrics_evict(&t, labels, &k);
	one(&t, "restored_quarantined", "gauge",
	    "Files this start took back whose bytes differed from their seals.", labels,
	    k.restored.quarantined);
	if (t.oom) {
		free(t.buf);
		return -ENOMEM;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}

int vr_res_metrics(struct vr_residency *r, char **text, size_t *len)
{
	return res_metrics_text(r, text, len);
}
