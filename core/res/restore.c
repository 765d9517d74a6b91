/* restore.c - the tree rebuilt from the record a keeper held across a restart: every file's
 * memory adopted and checked on the device against its seal before it is in the tree. */
#include "res_private.h"

#include "digest.h"
#include "json.h"
#include "key.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a restore needs at hand. */
struct restore {
	struct vr_residency *r;
	int (*take)(void *ctx, uint64_t id, uint32_t i, uid_t owner);
	void *ctx;
	struct vr_res_restored *got;
	struct vr_node **sources; /* restored model.sig, SHA256SUMS and checksums.blake3 */
	size_t nsources;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static bool get_u64(const cJSON *o, const char *key, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0)
		return false;
	*out = (uint64_t)v->valuedouble;
	return true;
}

static bool get_time(const cJSON *o, const char *key, struct timespec *t)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 ||
	    !cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(a, 1)))
		return false;
	t->tv_sec = (time_t)cJSON_GetArrayItem(a, 0)->valuedouble;
	t->tv_nsec = (long)cJSON_GetArrayItem(a, 1)->valuedouble;
	return t->tv_nsec >= 0 && t->tv_nsec < 1000000000L;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* N bytes from 2N lowercase hex digits at IN (of any length, unlike vr_unhex); 0 or -EINVAL. */
static int unhex_n(const char *in, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(in[2 * i]), lo = hi < 0 ? -1 : hexval(in[2 * i + 1]);

		if (lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* The owner, mode, times and attributes of the entry at PATH ("/..."), as O records them. */
static void apply_meta(struct vr_residency *r, const char *path, const cJSON *o)
{
	uint64_t mode, uid, gid;
	struct timespec tv[2];
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "xattrs"), *it;

	if (get_u64(o, "uid", &uid) && get_u64(o, "gid", &gid))
		vr_res_chown(r, path, (uid_t)uid, (gid_t)gid);
	if (get_u64(o, "mode", &mode))
		vr_res_chmod(r, path, (mode_t)(mode & 07777));
	if (!cJSON_IsObject(x))
		x = NULL;
	cJSON_ArrayForEach(it, x)
	{
		size_t n = cJSON_IsString(it) ? strlen(it->valuestring) / 2 : 0;
		uint8_t *v = malloc(n ? n : 1);

		if (v && cJSON_IsString(it) && strlen(it->valuestring) == 2 * n &&
		    unhex_n(it->valuestring, v, n) == 0)
			vr_res_setxattr(r, path, it->string, v, n, 0);
		free(v);
	}
	if (get_time(o, "atime", &tv[0]) && get_time(o, "mtime", &tv[1]))
		vr_res_utimens(r, path, tv);
}

/* The memory of file entry O, adopted by backend B (the device's, or the host store's for an
 * evicted file); 0 or -errno, having said why. */
static int adopt_memory(struct restore *st, struct vr_backend *b, const cJSON *o, const char *path,
			uint64_t size, uid_t owner, struct vr_dev_file **dev, uint64_t *id,
			uint32_t *count, uint64_t **lens)
{
	const cJSON *idj = cJSON_GetObjectItemCaseSensitive(o, "keep_id");
	const cJSON *cl = cJSON_GetObjectItemCaseSensitive(o, "chunk_bytes");
	struct vr_dev_export e = {.kind = VR_EXPORT_HOST_FD};
	unsigned long long v;
	int n = cJSON_GetArraySize(cl);
	int ret = 0;

	if (!cJSON_IsString(idj) || sscanf(idj->valuestring, "%16llx", &v) != 1 || !v ||
	    !cJSON_IsArray(cl) || n < 0 || n > 1 << 20)
		return -EINVAL;
	*id = v;
	*count = (uint32_t)n;
	e.fds = calloc((size_t)n + 1, sizeof(int));
	e.lens = calloc((size_t)n + 1, sizeof(uint64_t));
	*lens = calloc((size_t)n + 1, sizeof(uint64_t));
	if (!e.fds || !e.lens || !*lens) {
		ret = -ENOMEM;
		goto fail;
	}
	if (!b->ops->host_memory)
		e.kind = VR_EXPORT_CUDA_FD;
	for (int i = 0; i < n; i++) {
		const cJSON *len = cJSON_GetArrayItem(cl, i);

		if (!cJSON_IsNumber(len) || len->valuedouble < 1 ||
		    len->valuedouble > 9007199254740992.0) {
			ret = -EINVAL;
			goto fail;
		}
		e.lens[i] = (uint64_t)len->valuedouble;
		(*lens)[i] = e.lens[i];
		e.fds[i] = st->take(st->ctx, v, (uint32_t)i, owner);
		e.count = (uint32_t)i + 1;
		if (e.fds[i] < 0) {
			vr_log(LOG_ERR, "restore: %s: the keeper holds no chunk %d of it", path, i);
			ret = -ENOENT;
			goto fail;
		}
	}
	ret = vr_dev_adopt(b, &e, size, dev);
	if (ret)
		vr_log(LOG_ERR, "restore: %s: its memory is not what the record says: %s", path,
		       strerror(-ret));
	if (ret == 0)
		return 0;
	free(*lens);
	*lens = NULL;
	return ret;
fail:
	vr_dev_export_clear(&e);
	free(*lens);
	*lens = NULL;
	return ret;
}

/*
 * Whether SEAL_JSON is a seal this daemon signed for these bytes at PATH (relative): its
 * signature, path, size and device, then the fs-verity digest of DEV recomputed on the device.
 * Returns 0, -EBADMSG (the bytes differ: WHY says so), or -EINVAL (not such a seal).
 */
static int check_seal(struct vr_residency *r, const char *seal_json, const char *rel, uint64_t size,
		      struct vr_dev_file *dev, struct vr_seal *s, const char **why)
{
	uint8_t fsv[VR_DIGEST_SIZE];
	int ret = vr_seal_parse(seal_json, strlen(seal_json), s, why);

	if (ret)
		return -EINVAL;
	if (vr_seal_verify(s, r->cfg.keys) != 0) {
		*why = "its seal's signature does not verify under this daemon's key";
		return -EINVAL;
	}
	if (strcmp(s->path, rel) != 0 || s->size != size ||
	    strcmp(s->device.uuid, r->dev.uuid) != 0) {
		*why = "its seal names another path, size or device";
		return -EINVAL;
	}
	ret = vr_dev_fsverity(dev, fsv);
	if (ret) {
		*why = "its digest could not be computed on the device";
		return ret;
	}
	if (!memeql_sec(fsv, s->fsverity, sizeof(fsv))) {
		*why = "its bytes changed while the daemon was away: the device digest differs "
		       "from its seal's";
		return -EBADMSG;
	}
	return 0;
}

/* Puts file node N (sealed with S, or quarantined with WHY) at REL's place. [T] */
static int place_file(struct restore *st, const char *path, struct vr_node **out,
		      const struct vr_caller *c, mode_t mode)
{
	struct vr_residency *r = st->r;
	char name[VR_NAME_MAX + 1];
	struct res_lookup l;
	struct vr_node *n;
	int ret = res_resolve_new(r, path, true, &l);

	if (ret)
		return ret;
	res_last_name(&l, name);
	ret = res_new_file_node(r, name, mode, c, &n);
	if (ret)
		return ret;
	res_link_child(l.parent, n);
	res_touch_dir(r, l.parent);
	*out = n;
	return 0;
}

/* A file about to be placed: its memory, seal and whether it matched. */
struct placed {
	struct vr_dev_file *dev;
	uint64_t size, id, *lens;
	uint32_t count;
	struct vr_seal *seal; /* taken when it goes in sealed */
	const char *seal_json, *why;
	bool ok;
	bool evicted, by_policy; /* its memory is the host store's (evict.c) */
};

/*
 * Puts P at PATH, sealed when it matched, else quarantined, then counts and says so. Returns 0
 * (P's memory and lens are the tree's now), or -errno (nothing taken, said why).
 */
static int put_file(struct restore *st, const char *path, struct placed *p,
		    const struct vr_caller *c, mode_t mode)
{
	struct vr_residency *r = st->r;
	struct vr_node *n;

	res_lock(r);
	int ret = place_file(st, path, &n, c, mode);

	if (ret == 0) {
		n->dev = p->dev;
		n->size = p->size;
		n->held = vr_dev_held(p->dev);
		n->keep_id = p->id;
		n->keep_chunks = p->count;
		n->keep_lens = p->lens;
		if (p->evicted) {
			n->evicted = true;
			n->evicted_by_policy = p->by_policy;
			n->held = 0;
			n->evict_seq = ++r->ev.seq;
			r->ev.files++;
			r->ev.bytes += p->size;
		}
		n->seal_json = strdup(p->seal_json);
		if (p->ok && n->seal_json) {
			n->seal = p->seal;
			p->seal = NULL;
			res_set_state(r, n, ST_SEALED);
			if (r->metrics)
				r->metrics->seals--; /* sealed before, only checked again now */
		} else {
			res_set_check_why(n, p->ok ? "out of memory at the restore" : p->why);
			res_set_state(r, n, ST_QUARANTINED);
		}
	}
	res_unlock(r);
	if (ret) {
		vr_log(LOG_ERR, "restore: %s not restored: %s", path + 1, strerror(-ret));
		st->got->refused++;
		return ret;
	}
	if (!p->ok) {
		vr_log(LOG_ERR, "restore: %s quarantined: %s", path + 1, p->why);
		res_audit(r, "seal_verification_failed", path + 1, NULL, "failed", NULL, p->why);
		st->got->quarantined++;
		return 0;
	}
	st->got->files++;
	st->got->bytes += p->size;
	if (res_is_source_name(n->name)) {
		struct vr_node **more =
		    realloc(st->sources, (st->nsources + 1) * sizeof(struct vr_node *));

		if (more) {
			st->sources = more;
			st->sources[st->nsources++] = n;
		}
	}
	return 0;
}

/* File entry O at PATH: adopted, checked, placed sealed or quarantined. */
static void restore_file(struct restore *st, const cJSON *o, const char *path)
{
	struct vr_residency *r = st->r;
	const cJSON *sj = cJSON_GetObjectItemCaseSensitive(o, "seal");
	struct vr_caller c = {0};
	struct vr_dev_file *dev = NULL;
	struct vr_seal *s = calloc(1, sizeof(*s));
	uint64_t size, mode = 0600, mu = 0, gid = 0, id, *lens = NULL;
	uint32_t count;
	const char *why = "its record entry is malformed";
	bool evicted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "evicted"));
	struct vr_backend *b = evicted ? r->cfg.evict_store : r->cfg.backend;
	int ret = -EINVAL;

	if (!b) {
		why = "it was evicted to host memory, and this start has no eviction "
		      "(evict_host_max=0)";
	} else if (s && cJSON_IsString(sj) && get_u64(o, "size", &size) &&
		   get_u64(o, "mode", &mode) && get_u64(o, "meta_uid", &mu) &&
		   get_u64(o, "gid", &gid)) {
		ret = adopt_memory(st, b, o, path, size, (uid_t)mu, &dev, &id, &count, &lens);
		if (ret == -EINVAL)
			why = "its memory is not what the record says";
	} else if (!s)
		ret = -ENOMEM;
	if (ret == 0)
		ret = check_seal(r, sj->valuestring, path + 1, size, dev, s, &why);
	if (ret && ret != -EBADMSG) {
		vr_log(LOG_ERR, "restore: %s not restored: %s", path + 1,
		       ret == -EINVAL ? why : strerror(-ret));
		res_audit(r, "vram_restore_refused", path + 1, NULL, "failed", NULL,
			  ret == -EINVAL ? why : strerror(-ret));
		st->got->refused++;
		goto free;
	}
	c.uid = (uid_t)mu;
	c.gid = (gid_t)gid;
	struct placed p = {
	    .dev = dev,
	    .size = size,
	    .id = id,
	    .count = count,
	    .lens = lens,
	    .seal = s,
	    .seal_json = sj->valuestring,
	    .why = why,
	    .ok = ret == 0,
	    .evicted = evicted,
	    .by_policy = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "evicted_by_policy"))};
	if (put_file(st, path, &p, &c, (mode_t)mode) == 0) {
		dev = NULL; /* the tree's now */
		lens = NULL;
		apply_meta(r, path, o);
	}
	s = p.seal; /* NULL when the tree took it */
free:
	if (dev) {
		dev->kept = true; /* the keeper's still: not scrubbed, the next start decides */
		vr_dev_file_free(dev);
	}
	free(lens);
	free(s);
}

/* One entry of the record. */
static void restore_node(struct restore *st, const cJSON *o)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kind");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "target");
	struct vr_caller c = {0};
	uint64_t mu = 0, gid = 0, mode = 0755;
	char path[VR_SEAL_PATH_MAX + 1];

	if (!cJSON_IsString(p) || !cJSON_IsString(k) ||
	    strlen(p->valuestring) >= VR_SEAL_PATH_MAX) {
		st->got->refused++;
		return;
	}
	snprintf(path, sizeof(path), "/%s", p->valuestring);
	get_u64(o, "meta_uid", &mu);
	get_u64(o, "gid", &gid);
	get_u64(o, "mode", &mode);
	c.uid = (uid_t)mu;
	c.gid = (gid_t)gid;
	if (strcmp(k->valuestring, "file") == 0) {
		restore_file(st, o, path);
	} else if (strcmp(k->valuestring, "dir") == 0) {
		if (p->valuestring[0] == '\0' ||
		    vr_res_mkdir(st->r, path, (mode_t)(mode & 07777), &c) == 0) {
			st->got->dirs += p->valuestring[0] != '\0';
			apply_meta(st->r, path, o);
		} else {
			st->got->refused++;
		}
	} else if (strcmp(k->valuestring, "link") == 0 && cJSON_IsString(t) &&
		   vr_res_symlink(st->r, t->valuestring, path, &c) == 0) {
		st->got->links++;
		apply_meta(st->r, path, o); /* the link's own: nothing follows it */
	} else {
		st->got->refused++;
	}
}

/* Folder entry O's times as recorded. */
static void redate_dir(struct vr_residency *r, const cJSON *o)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "path");
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "kind");
	char path[VR_SEAL_PATH_MAX + 1];
	struct timespec tv[2];

	if (!cJSON_IsString(p) || !cJSON_IsString(k) || strcmp(k->valuestring, "dir") != 0 ||
	    strlen(p->valuestring) >= VR_SEAL_PATH_MAX || !get_time(o, "atime", &tv[0]) ||
	    !get_time(o, "mtime", &tv[1]))
		return;
	snprintf(path, sizeof(path), "/%s", p->valuestring);
	vr_res_utimens(r, path, tv);
}

/* The record's MAC, checked; *JSON_LEN gets the length of its JSON line. */
static int check_mac(struct vr_residency *r, const char *rec, size_t len, size_t *json_len)
{
	const char *nl = memchr(rec, '\n', len);
	uint8_t want[32], got[32];

	if (!nl || (size_t)(rec + len - (nl + 1)) != 65 || nl[65] != '\n')
		return -EINVAL;
	if (unhex_n(nl + 1, want, sizeof(want)) != 0)
		return -EINVAL;
	*json_len = (size_t)(nl - rec);
	if (vr_keyring_record_mac(r->cfg.keys, r->dev.uuid, rec, *json_len, got) != 0)
		return -EINVAL;
	return memeql_sec(want, got, sizeof(got)) ? 0 : -EBADMSG;
}

/* The sources among what came back read again, as at their seal: they vouch for files. */
static void reload_sources(struct restore *st)
{
	for (size_t i = 0; i < st->nsources; i++) {
		struct vr_node *n = st->sources[i];

		pthread_rwlock_wrlock(&n->io);
		res_source_load(st->r, n, NULL);
		pthread_rwlock_unlock(&n->io);
	}
	free(st->sources);
}

int vr_res_restore(struct vr_residency *r, const char *record, size_t len, uint64_t generation,
		   int (*take)(void *ctx, uint64_t id, uint32_t i, uid_t owner), void *ctx,
		   struct vr_res_restored *out, char *why, size_t cap)
{
	struct vr_res_restored got = {0};
	struct restore st = {.r = r, .take = take, .ctx = ctx, .got = &got};
	const cJSON *v, *dev, *be, *nodes, *o;
	double t0 = now_s();
	size_t json_len;
	int err = 0;
	int ret = check_mac(r, record, len, &json_len);

	if (ret) {
		snprintf(why, cap, "%s",
			 ret == -EBADMSG
			     ? "its MAC does not verify under this daemon's key (another "
			       "secret wrote it, or it was changed)"
			     : "it is not a record");
		return ret;
	}
	cJSON *root = vr_json_parse(record, json_len, NULL, &err);

	if (!root) {
		snprintf(why, cap, "its JSON does not parse");
		return err == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "version");
	dev = cJSON_GetObjectItemCaseSensitive(root, "device");
	be = cJSON_GetObjectItemCaseSensitive(root, "backend");
	nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
	ret = -EINVAL;
	if (!cJSON_IsNumber(v) || v->valueint != 1 || !cJSON_IsArray(nodes))
		snprintf(why, cap, "its version is not 1");
	else if (!cJSON_IsString(dev) || strcmp(dev->valuestring, r->dev.uuid) != 0 ||
		 !cJSON_IsString(be) || strcmp(be->valuestring, r->dev.backend) != 0)
		snprintf(why, cap, "it is of another device (%s), not this one (%s)",
			 cJSON_IsString(dev) ? dev->valuestring : "?", r->dev.uuid);
	else if (!get_u64(root, "generation", &got.generation) || got.generation != generation)
		snprintf(why, cap,
			 "its generation (%llu) is not the one the keeper names (%llu): an older "
			 "record put in the newest one's place",
			 (unsigned long long)got.generation, (unsigned long long)generation);
	else
		ret = 0;
	if (ret == 0) {
		for (o = nodes->child; o; o = o->next)
			restore_node(&st, o);
		reload_sources(&st);
		/* folders' times again: what was made in them since moved them */
		for (o = nodes->child; o; o = o->next)
			redate_dir(r, o);
		got.seconds = now_s() - t0;
		res_lock(r);
		r->restored = got;
		res_unlock(r);
		*out = got;
	}
	cJSON_Delete(root);
	return ret;
}
