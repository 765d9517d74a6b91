/* report.c - the texts the tree shows: status JSON, verify report lines, seal text. */
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Appends the line "A B[ C]" to T; on allocation failure marks T->oom and drops the rest. */
void res_text_add(struct res_text *t, const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 3;

	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t ncap = (t->cap + n + 1) * 2;
		char *nb = realloc(t->buf, ncap);

		if (!nb) {
			t->oom = true;
			return;
		}
		t->buf = nb;
		t->cap = ncap;
	}
	t->len += (size_t)sprintf(t->buf + t->len, "%s %s%s%s\n", a, b, *c ? " " : "", c);
}

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
