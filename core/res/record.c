/* record.c - the tree as a record a keeper holds across a restart of the daemon, signed, and the
 * calls that keep the keeper's store in step with the tree (docs/operations.md, "Restarts"). */
#include "res_private.h"

#include "digest.h"
#include "key.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void res_changed(struct vr_residency *r)
{
	const struct vr_res_keeper *k = r->cfg.keeper;

	if (k)
		k->changed(k->ctx);
}

void res_keep_sealed(struct vr_residency *r, struct vr_node *n, const char *path)
{
	res_io_held(n);

	const struct vr_res_keeper *k = r->cfg.keeper;
	uint64_t id = 0, *lens = NULL;
	uint32_t chunks = 0;
	int ret;

	if (!k || !n->dev)
		return;
	if (n->keep_id) {
		/* sealed again (a resumed load): its old names go first */
		res_lock(r);
		res_keep_drop(r, n);
		res_unlock(r);
	}
	ret = k->store(k->ctx, n->dev, n->meta_uid, &id, &chunks, &lens);
	if (ret) {
		/* said for the first and every 1000th: a user past a share may have many */
		static atomic_uint refused;
		unsigned nth = atomic_fetch_add(&refused, 1);

		if (nth % 1000 == 0)
			vr_log(LOG_WARNING,
			       "%s is resident but not kept across a restart: %s (%u so far)", path,
			       ret == -ENOSPC	? "the keeper's store is full"
			       : ret == -EDQUOT ? "its owner's share of the keeper's store is used"
						: strerror(-ret),
			       nth + 1);
		return;
	}
	res_lock(r);
	n->keep_id = id;
	n->keep_chunks = chunks;
	free(n->keep_lens);
	n->keep_lens = lens;
	res_changed(r);
	res_unlock(r);
}

void res_keep_drop(struct vr_residency *r, struct vr_node *n)
{
	const struct vr_res_keeper *k = r->cfg.keeper;

	if (k && n->keep_id)
		k->drop(k->ctx, n->keep_id, n->keep_chunks, n->meta_uid);
	n->keep_id = 0;
	n->keep_chunks = 0;
	free(n->keep_lens);
	n->keep_lens = NULL;
}

/* Kept out of free_subtree() so its recursion keeps small frames. */
__attribute__((noinline)) void res_free_at_stop(struct vr_residency *r, struct vr_node *n)
{
	char path[VR_SEAL_PATH_MAX];

	if (res_node_path(n, path, sizeof(path)) != 0)
		strcpy(path, n->name);
	if (n->keep_shared && n->dev)
		n->dev->keep_shared = true; /* leased when the daemon stopped: the lessee's now */
	if (r->keeping && n->keep_id && n->dev) {
		/* the keeper holds it for the next daemon, which checks it again */
		n->dev->kept = true;
		vr_dev_file_free(n->dev);
		n->dev = NULL;
		return;
	}
	res_release_device(r, n, path, NULL);
}

void vr_res_settle(struct vr_residency *r)
{
	const struct vr_res_keeper *k = r->cfg.keeper;

	if (k && k->settle)
		k->settle(k->ctx);
}

void vr_res_keep_at_stop(struct vr_residency *r)
{
	res_lock(r);
	r->keeping = true;
	res_unlock(r);
}

/* [s, ns] */
static cJSON *json_time(const struct timespec *t)
{
	cJSON *a = cJSON_CreateArray();

	if (a) {
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->tv_sec));
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->tv_nsec));
	}
	return a;
}

/* What every node records: its path, kind, owner, and who its metadata is counted to. [T] */
static cJSON *node_common(const struct vr_node *n, const char *path, const char *kind)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "path", path);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddNumberToObject(o, "mode", n->mode & 07777);
	cJSON_AddNumberToObject(o, "uid", n->uid);
	cJSON_AddNumberToObject(o, "gid", n->gid);
	cJSON_AddNumberToObject(o, "meta_uid", n->meta_uid);
	cJSON_AddItemToObject(o, "atime", json_time(&n->atime));
	cJSON_AddItemToObject(o, "mtime", json_time(&n->mtime));
	if (n->nxattrs) {
		cJSON *x = cJSON_AddObjectToObject(o, "xattrs");

		for (size_t i = 0; x && i < n->nxattrs; i++) {
			char *hex = malloc(n->xattrs[i].size * 2 + 1);

			if (!hex) {
				cJSON_Delete(o);
				return NULL;
			}
			vr_hex(n->xattrs[i].value, n->xattrs[i].size, hex);
			cJSON_AddStringToObject(x, n->xattrs[i].name, hex);
			free(hex);
		}
	}
	return o;
}

/* A sealed file's entry: the seal, and the names its memory has in the store. [T] */
static int add_file(cJSON *o, const struct vr_node *n)
{
	char id[17];
	cJSON *lens;

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)n->keep_id);
	cJSON_AddStringToObject(o, "keep_id", id);
	cJSON_AddNumberToObject(o, "chunks", n->keep_chunks);
	cJSON_AddNumberToObject(o, "size", (double)n->size);
	cJSON_AddStringToObject(o, "seal", n->seal_json);
	if (n->evicted) {
		/* its memory is the host store's (evict.c): it comes back evicted */
		cJSON_AddBoolToObject(o, "evicted", true);
		cJSON_AddBoolToObject(o, "evicted_by_policy", n->evicted_by_policy);
	}
	lens = cJSON_AddArrayToObject(o, "chunk_bytes");
	for (uint32_t i = 0; lens && i < n->keep_chunks; i++)
		cJSON_AddItemToArray(lens, cJSON_CreateNumber((double)n->keep_lens[i]));
	return lens ? 0 : -ENOMEM;
}

/* Appends N and what lies below it to NODES, parents first. [T] */
static int add_subtree(cJSON *nodes, const struct vr_node *n)
{
	char path[VR_SEAL_PATH_MAX];
	const char *kind = n->is_dir ? "dir" : n->target ? "link" : "file";
	cJSON *o;
	int ret;

	if (!n->is_dir && !n->target && (n->state != ST_SEALED || !n->keep_id || !n->seal_json))
		return 0; /* only sealed, kept files come back; the others are gone after */
	ret = res_node_path(n, path, sizeof(path));
	if (ret)
		return ret;
	o = node_common(n, path, kind);
	if (!o)
		return -ENOMEM;
	if (n->target)
		cJSON_AddStringToObject(o, "target", n->target);
	else if (!n->is_dir && (ret = add_file(o, n)) != 0) {
		cJSON_Delete(o);
		return ret;
	}
	cJSON_AddItemToArray(nodes, o);
	for (const struct vr_node *c = n->is_dir ? n->children : NULL; c && ret == 0; c = c->next)
		ret = add_subtree(nodes, c);
	return ret;
}

int vr_res_record(struct vr_residency *r, uint64_t gen, char **out, size_t *len)
{
	cJSON *root = cJSON_CreateObject(), *nodes;
	uint8_t mac[32];
	char hex[65], *json = NULL, *text;
	int ret = -ENOMEM;

	if (!root)
		return -ENOMEM;
	cJSON_AddNumberToObject(root, "version", 1);
	cJSON_AddNumberToObject(root, "generation", (double)gen);
	res_lock(r);
	cJSON_AddStringToObject(root, "backend", r->dev.backend);
	cJSON_AddStringToObject(root, "device", r->dev.uuid);
	nodes = cJSON_AddArrayToObject(root, "nodes");
	ret = nodes ? add_subtree(nodes, r->root) : -ENOMEM;
	res_unlock(r);
	if (ret == 0)
		json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (ret == 0 && !json)
		ret = -ENOMEM;
	if (ret)
		return ret;
	ret = vr_keyring_record_mac(r->cfg.keys, r->dev.uuid, json, strlen(json), mac);
	vr_hex(mac, sizeof(mac), hex);
	/* one line of JSON, then one of its MAC */
	if (ret == 0 && asprintf(&text, "%s\n%s\n", json, hex) < 0)
		ret = -ENOMEM;
	free(json);
	if (ret)
		return ret;
	*out = text;
	*len = strlen(text);
	return 0;
}
