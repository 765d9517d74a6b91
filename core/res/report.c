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

	pthread_mutex_lock(&r->lock);
	if (f->seal_json && (f->state == ST_SEALED || f->state == ST_QUARANTINED)) {
		*text = strdup(f->seal_json);
		ret = *text ? 0 : -ENOMEM;
		if (ret == 0)
			*len = strlen(*text);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int vr_res_status(struct vr_residency *r, char **out, size_t *len)
{
	return res_status_text(r, out, len);
}

/* The status JSON, malloc'd and newline-terminated; returns 0 or -errno. */
int res_status_text(struct vr_residency *r, char **out, size_t *len)
{
	struct vr_device_info info;
	cJSON *o, *d;
	char *text, num[24];
	int ret = vr_backend_info(r->cfg.backend, &info);

	if (ret)
		return ret;
	o = cJSON_CreateObject();
	if (!o)
		return -ENOMEM;
	ret = -ENOMEM;
	pthread_mutex_lock(&r->lock);
	uint64_t files = r->files, sealed = r->sealed, quarantined = r->quarantined;
	uint64_t incomplete = r->incomplete, refused = r->refused;
	uint64_t leases = r->leases, exports = r->exports;
	struct res_expect_counts ek;

	res_expect_counts(r, &ek);
	pthread_mutex_unlock(&r->lock);
	if (!cJSON_AddStringToObject(o, "backend", info.backend))
		goto free_obj;
	if (strcmp(info.backend, "mock") == 0 &&
	    !cJSON_AddStringToObject(o, "warning",
				     "mock backend: file bytes are in host memory, not on a GPU"))
		goto free_obj;
	if (info.failed && !cJSON_AddStringToObject(
			       o, "error",
			       "the device failed (a sticky GPU error): loads are refused and "
			       "checks cannot run until the daemon restarts"))
		goto free_obj;
	d = cJSON_AddObjectToObject(o, "device");
	if (!d || !cJSON_AddBoolToObject(d, "failed", info.failed) ||
	    !cJSON_AddNumberToObject(d, "index", info.index) ||
	    !cJSON_AddStringToObject(d, "name", info.name) ||
	    !cJSON_AddStringToObject(d, "uuid", info.uuid))
		goto free_obj;
	/* integers as raw text: cJSON's number printer rounds to 15 digits */
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info.total_bytes);
	if (!cJSON_AddRawToObject(d, "total_bytes", num))
		goto free_obj;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)info.free_bytes);
	if (!cJSON_AddRawToObject(d, "free_bytes", num))
		goto free_obj;
	snprintf(num, sizeof(num), "%llu",
		 (unsigned long long)(info.total_bytes - info.free_bytes));
	if (!cJSON_AddRawToObject(o, "used_bytes", num) ||
	    !cJSON_AddNumberToObject(o, "files", (double)files) ||
	    !cJSON_AddNumberToObject(o, "sealed", (double)sealed) ||
	    !cJSON_AddNumberToObject(o, "quarantined", (double)quarantined) ||
	    !cJSON_AddNumberToObject(o, "incomplete", (double)incomplete) ||
	    !cJSON_AddStringToObject(o, "sha256", r->cfg.sha256_off ? "off" : "on") ||
	    !cJSON_AddNumberToObject(o, "audit_failures", (double)vr_audit_failures(r->cfg.audit)))
		goto free_obj;
	/* publishers' digests: sources in force, refused ones, files sealed as checked, and
	 * files refused at sealing (their bytes differ, or nothing covered them) */
	d = cJSON_AddObjectToObject(o, "expected");
	if (!d || !cJSON_AddNumberToObject(d, "sources", (double)ek.sources) ||
	    !cJSON_AddNumberToObject(d, "sources_refused", (double)ek.sources_refused) ||
	    !cJSON_AddNumberToObject(d, "checked", (double)ek.checked) ||
	    !cJSON_AddNumberToObject(d, "refused", (double)refused) ||
	    !cJSON_AddStringToObject(d, "mode", r->cfg.expect_require ? "require" : "check") ||
	    !cJSON_AddNumberToObject(d, "trusted_keys", (double)vr_trust_count(r->cfg.trust)))
		goto free_obj;
	/* the socket: where it is, leases live now and exports made since the mount */
	d = cJSON_AddObjectToObject(o, "socket");
	if (!d ||
	    !(r->cfg.socket_path ? cJSON_AddStringToObject(d, "path", r->cfg.socket_path)
				 : cJSON_AddNullToObject(d, "path")) ||
	    !cJSON_AddNumberToObject(d, "leases", (double)leases) ||
	    !cJSON_AddNumberToObject(d, "exports", (double)exports))
		goto free_obj;
	text = cJSON_Print(o);
	if (!text)
		goto free_obj;
	size_t n = strlen(text);

	*out = malloc(n + 2);
	if (*out) {
		memcpy(*out, text, n);
		(*out)[n] = '\n';
		(*out)[n + 1] = '\0';
		*len = n + 1;
		ret = 0;
	}
	cJSON_free(text);
free_obj:
	cJSON_Delete(o);
	return ret;
}

/* Upper bounds of the verification-duration histogram's buckets, in seconds (+Inf after). */
const double res_verify_bounds[RES_VERIFY_BUCKETS] = {0.001, 0.01, 0.05, 0.1, 0.5, 1,
						      2.5,   5,	   10,	 30,  120};

void res_count_check(struct vr_residency *r, int ret, double seconds)
{
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

int res_metrics_text(struct vr_residency *r, char **text, size_t *len)
{
	struct vr_device_info info;
	struct vr_text t = {0};
	struct res_metrics m;
	char labels[256];
	int ret = vr_backend_info(r->cfg.backend, &info);

	if (ret)
		return ret;
	pthread_mutex_lock(&r->lock);
	uint64_t files = r->files, sealed = r->sealed, quarantined = r->quarantined;
	uint64_t incomplete = r->incomplete, refused = r->refused;
	uint64_t leases = r->leases, exports = r->exports;

	m = *r->metrics;
	pthread_mutex_unlock(&r->lock);
	/* UUID and gpu as dcgm-exporter labels them, so PromQL joins the two on UUID */
	snprintf(labels, sizeof(labels), "UUID=\"%s\",gpu=\"%d\",backend=\"%s\"", info.uuid,
		 info.index, info.backend);
	head(&t, "device_total_bytes", "gauge", "Device memory files may use.");
	vr_text_printf(&t, "vram_residency_device_total_bytes{%s} %llu\n", labels,
		       (unsigned long long)info.total_bytes);
	head(&t, "device_used_bytes", "gauge", "Device memory files hold.");
	vr_text_printf(&t, "vram_residency_device_used_bytes{%s} %llu\n", labels,
		       (unsigned long long)(info.total_bytes - info.free_bytes));
	head(&t, "device_free_bytes", "gauge", "Device memory left for files.");
	vr_text_printf(&t, "vram_residency_device_free_bytes{%s} %llu\n", labels,
		       (unsigned long long)info.free_bytes);
	head(&t, "device_failed", "gauge", "1 once the device returned an unrecoverable error.");
	vr_text_printf(&t, "vram_residency_device_failed{%s} %d\n", labels, info.failed ? 1 : 0);
	head(&t, "files", "gauge", "Files by state.");
	const struct {
		const char *state;
		uint64_t n;
	} states[] = {{"loading", files - sealed - incomplete - refused},
		      {"sealed", sealed - quarantined},
		      {"quarantined", quarantined},
		      {"incomplete", incomplete},
		      {"refused", refused}};

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		vr_text_printf(&t, "vram_residency_files{%s,state=\"%s\"} %llu\n", labels,
			       states[i].state, (unsigned long long)states[i].n);
	head(&t, "loads_total", "counter", "Loads begun (new files and replacements).");
	vr_text_printf(&t, "vram_residency_loads_total{%s} %llu\n", labels,
		       (unsigned long long)m.loads);
	head(&t, "seals_total", "counter", "Files sealed.");
	vr_text_printf(&t, "vram_residency_seals_total{%s} %llu\n", labels,
		       (unsigned long long)m.seals);
	head(&t, "quarantines_total", "counter", "Files quarantined after a failed check.");
	vr_text_printf(&t, "vram_residency_quarantines_total{%s} %llu\n", labels,
		       (unsigned long long)m.quarantines);
	head(&t, "verifications_total", "counter",
	     "Seal checks on the device: passed, failed (differs, or a source fails), error "
	     "(could not run).");
	vr_text_printf(&t, "vram_residency_verifications_total{%s,result=\"passed\"} %llu\n",
		       labels, (unsigned long long)m.verified);
	vr_text_printf(&t, "vram_residency_verifications_total{%s,result=\"failed\"} %llu\n",
		       labels, (unsigned long long)m.verify_failed);
	vr_text_printf(&t, "vram_residency_verifications_total{%s,result=\"error\"} %llu\n", labels,
		       (unsigned long long)m.verify_errors);
	head(&t, "verification_duration_seconds", "histogram",
	     "How long a seal check took (signature and device digest).");
	for (int i = 0; i < RES_VERIFY_BUCKETS; i++)
		vr_text_printf(
		    &t, "vram_residency_verification_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
		    labels, res_verify_bounds[i], (unsigned long long)m.verify_le[i]);
	uint64_t count = m.verified + m.verify_failed + m.verify_errors;

	vr_text_printf(&t,
		       "vram_residency_verification_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
		       labels, (unsigned long long)count);
	vr_text_printf(&t, "vram_residency_verification_duration_seconds_sum{%s} %.6f\n", labels,
		       m.verify_seconds);
	vr_text_printf(&t, "vram_residency_verification_duration_seconds_count{%s} %llu\n", labels,
		       (unsigned long long)count);
	head(&t, "audit_write_failures_total", "counter",
	     "Audit records that could not be written.");
	vr_text_printf(&t, "vram_residency_audit_write_failures_total{%s} %llu\n", labels,
		       (unsigned long long)vr_audit_failures(r->cfg.audit));
	head(&t, "exports_total", "counter",
	     "Sealed files handed to processes through the socket.");
	vr_text_printf(&t, "vram_residency_exports_total{%s} %llu\n", labels,
		       (unsigned long long)exports);
	head(&t, "leases", "gauge", "Socket leases alive (files mapped by processes).");
	vr_text_printf(&t, "vram_residency_leases{%s} %llu\n", labels, (unsigned long long)leases);
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
