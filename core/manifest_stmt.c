/* manifest_stmt.c - the OMS statement (in-toto, model_signing's predicate): serialization by
 * files or shards, sha256 / blake2b / blake3, resources, the subject digest. */
#include "manifest_private.h"
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#define STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define OMS_PREDICATE  "https://model_signing/signature/v1.0"
/* the largest shard_size read: a JSON number is a double, exact up to 2^53 */
#define SHARD_SIZE_MAX (UINT64_C(1) << 53)

/* One resource of a "shards" statement while the resources are read. */
struct shard_in {
	char *path; /* normalized */
	struct vr_manifest_shard s;
};

/* What read_resources collects before the entries are built. */
struct res_in {
	struct shard_in *v;
	size_t n, cap;
	struct sha256_ctx listed; /* the subject as model_signing takes it: listed order */
};

static const char *str_of(const cJSON *obj, const char *name)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/*
 * Sets M's ignored paths: model_signing's defaults (the git files and
 * model.sig itself, which is not among the resources it signs) and
 * serialization.ignore_paths, LIST. Refuses a LIST that is not an array, over
 * VR_OMS_IGNORE_MAX entries, or with an entry that is not a string. An entry
 * that mf_normalize_rel refuses is skipped, not refused: it cannot name
 * anything inside the model, so ignoring it changes nothing.
 */
static int add_ignores(struct vr_manifest *m, const cJSON *list, char why[VR_WHY_MAX])
{
	static const char *const defaults[] = {".git", ".gitattributes", ".github", ".gitignore",
					       VR_OMS_NAME};
	size_t n = sizeof(defaults) / sizeof(defaults[0]);
	size_t extra = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
	const cJSON *it;

	if (list && !cJSON_IsArray(list))
		return mf_fail(why, -EINVAL, "serialization.ignore_paths is not an array");
	if (extra > VR_OMS_IGNORE_MAX)
		return mf_fail(why, -E2BIG, "more than %d ignore_paths", VR_OMS_IGNORE_MAX);
	m->ignore = calloc(n + extra, sizeof(char *));
	if (!m->ignore)
		return mf_fail(why, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		m->ignore[m->nignore] = strdup(defaults[i]);
		if (!m->ignore[m->nignore])
			return mf_fail(why, -ENOMEM, "out of memory");
		m->nignore++;
	}
	cJSON_ArrayForEach(it, list)
	{
		char *p;

		if (!cJSON_IsString(it))
			return mf_fail(why, -EINVAL, "an ignore_paths entry is not a string");
		p = strdup(it->valuestring);
		if (!p)
			return mf_fail(why, -ENOMEM, "out of memory");
		/* a path that is not relative to the model cannot name anything in it */
		if (mf_normalize_rel(p)) {
			free(p);
			continue;
		}
		m->ignore[m->nignore++] = p;
	}
	return 0;
}

/*
 * Parses the verified PAYLOAD as JSON into *ST (for the caller to free, also
 * on failure) and checks it is an in-toto Statement v1 of OMS's predicate
 * type. Refuses JSON that is not an object or another statement type
 * (-EINVAL), and another predicate type (-EOPNOTSUPP): a key signs many
 * things, and only a model signature says which files hold which bytes.
 */
static int parse_statement(const uint8_t *payload, size_t plen, cJSON **st, char why[VR_WHY_MAX])
{
	const char *s;
	int ret;

	*st = vr_json_parse((const char *)payload, plen, NULL, &ret);
	if (ret == -ENOMEM)
		return mf_fail(why, ret, "out of memory");
	if (ret == -ENOTUNIQ)
		return mf_fail(why, -EINVAL, "the payload: " VR_JSON_REPEATED_WHY);
	if (!cJSON_IsObject(*st))
		return mf_fail(why, -EINVAL, "the payload is not a JSON object");
	s = str_of(*st, "_type");
	if (!s || strcmp(s, STATEMENT_TYPE) != 0)
		return mf_fail(why, -EINVAL, "the payload is not an in-toto Statement v1");
	s = str_of(*st, "predicateType");
	if (!s || strcmp(s, OMS_PREDICATE) != 0)
		return mf_fail(why, -EOPNOTSUPP, "predicateType is not " OMS_PREDICATE);
	return 0;
}

/*
 * Reads the sha256 digest of the statement's subject into WANT. Refuses any
 * number of subjects but one (with several, which one do the resources make
 * up?) and a digest that is not 64 lowercase hex digits.
 */
static int read_subject(const cJSON *st, uint8_t want[VR_DIGEST_SIZE], char why[VR_WHY_MAX])
{
	const cJSON *subj = cJSON_GetObjectItemCaseSensitive(st, "subject");
	const char *s =
	    cJSON_GetArraySize(subj) == 1
		? str_of(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(subj, 0), "digest"),
			 "sha256")
		: NULL;

	if (!cJSON_IsArray(subj) || !s || vr_unhex(s, want, VR_DIGEST_SIZE))
		return mf_fail(why, -EINVAL,
			       "the statement needs one subject with a sha256 digest");
	return 0;
}

/* The hash model_signing names NAME ("sha256", "blake2b", "blake3"); -1 for another. */
static int hash_of(const char *name)
{
	if (strcmp(name, "sha256") == 0)
		return VR_HASH_SHA256;
	if (strcmp(name, "blake2b") == 0)
		return VR_HASH_BLAKE2B;
	if (strcmp(name, "blake3") == 0)
		return VR_HASH_BLAKE3;
	return -1;
}

/*
 * Reads a "shards" statement's shard_size from SER into M. model_signing
 * writes it as a JSON number (a protobuf Struct's double: 8.0 for 8), so any
 * number is taken whose value is a whole count of bytes from 1 to 2^53.
 */
static int read_shard_size(struct vr_manifest *m, const cJSON *ser, char why[VR_WHY_MAX])
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(ser, "shard_size");
	double d = cJSON_IsNumber(n) ? n->valuedouble : 0;

	if (!cJSON_IsNumber(n) || !(d >= 1 && d <= (double)SHARD_SIZE_MAX) ||
	    (double)(uint64_t)d != d)
		return mf_fail(why, -EINVAL,
			       "serialization.shard_size is not a whole number of bytes from 1 "
			       "to 2^53");
	m->shard_size = (uint64_t)d;
	return 0;
}

/*
 * Checks the predicate's serialization and finds its resources array (*RES):
 * method "files" or "shards" (with its shard_size), hash_type sha256, blake2b
 * or blake3 into M; allow_symlinks (a boolean, false when absent) and
 * ignore_paths (add_ignores) into M. Refuses a predicate without a
 * serialization object or a resources array (-EINVAL), another method or hash
 * (-EOPNOTSUPP; -EINVAL when absent).
 */
static int read_serialization(struct vr_manifest *m, const cJSON *st, const cJSON **res,
			      char why[VR_WHY_MAX])
{
	const cJSON *pred = cJSON_GetObjectItemCaseSensitive(st, "predicate");
	const cJSON *ser = cJSON_GetObjectItemCaseSensitive(pred, "serialization");
	const char *method, *s;
	int h, ret;

	*res = cJSON_GetObjectItemCaseSensitive(pred, "resources");
	if (!cJSON_IsObject(ser) || !cJSON_IsArray(*res))
		return mf_fail(why, -EINVAL, "the predicate lacks serialization or resources");
	method = str_of(ser, "method");
	if (!method || (strcmp(method, "files") != 0 && strcmp(method, "shards") != 0))
		return mf_fail(why, method ? -EOPNOTSUPP : -EINVAL,
			       "serialization method %.40s is not supported (files and shards "
			       "are)",
			       method ? method : "(none)");
	s = str_of(ser, "hash_type");
	h = s ? hash_of(s) : -1;
	if (h < 0)
		return mf_fail(why, s ? -EOPNOTSUPP : -EINVAL,
			       "hash_type %.40s is not supported (sha256, blake2b and blake3 are)",
			       s ? s : "(none)");
	m->hash = (enum vr_hash)h;
	if (strcmp(method, "shards") == 0 && (ret = read_shard_size(m, ser, why)) != 0)
		return ret;
	const cJSON *links = cJSON_GetObjectItemCaseSensitive(ser, "allow_symlinks");

	if (links && !cJSON_IsBool(links))
		return mf_fail(why, -EINVAL, "serialization.allow_symlinks is not a boolean");
	m->allow_symlinks = cJSON_IsTrue(links);
	return add_ignores(m, cJSON_GetObjectItemCaseSensitive(ser, "ignore_paths"), why);
}

/*
 * Reads a decimal offset at *P up to STOP into *OUT: digits only, no sign, no
 * leading zero but in "0" itself, at most 2^53 (what model_signing writes, one
 * spelling per number). Returns whether it is one.
 */
static bool read_offset(const char *p, const char *stop, uint64_t *out)
{
	uint64_t v = 0;

	if (p == stop || (p[0] == '0' && stop - p > 1))
		return false;
	for (; p < stop; p++) {
		if (*p < '0' || *p > '9' || v > SHARD_SIZE_MAX / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return v <= SHARD_SIZE_MAX;
}

/*
 * Splits a shard's name "PATH:START:END" (model_signing's; a path holding ':'
 * cannot be sharded there either) into a normalized copy of PATH (*PATH) and
 * the offsets into SH. Refuses another number of ':', offsets read_offset
 * refuses, START >= END, a shard longer than shard_size and a path
 * mf_normalize_file refuses (-EINVAL), with WHY; -ENOMEM leaves it.
 */
static int split_shard(const struct vr_manifest *m, const char *name, char **path,
		       struct vr_manifest_shard *sh, char why[VR_WHY_MAX])
{
	const char *c1 = strchr(name, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *bad;

	if (!c2 || strchr(c2 + 1, ':'))
		return mf_fail(why, -EINVAL, "resource %.100s: a shard is not named PATH:START:END",
			       name);
	if (!read_offset(c1 + 1, c2, &sh->start) || !read_offset(c2 + 1, c2 + strlen(c2), &sh->end))
		return mf_fail(why, -EINVAL, "resource %.100s: a shard's offsets are not decimal",
			       name);
	if (sh->start >= sh->end || sh->end - sh->start > m->shard_size)
		return mf_fail(why, -EINVAL,
			       "resource %.100s: a shard is empty, backwards or longer than "
			       "shard_size",
			       name);
	*path = strndup(name, (size_t)(c1 - name));
	if (!*path)
		return -ENOMEM;
	bad = mf_normalize_file(*path);
	if (bad) {
		free(*path);
		*path = NULL;
		mf_fail(why, -EINVAL, "resource %.100s: the name is %s", name, bad);
		return -EINVAL;
	}
	return 0;
}

/* Appends shard SH of PATH (taken over) to IN; 0, -ENOMEM or -E2BIG. */
static int push_shard(struct res_in *in, char *path, const struct vr_manifest_shard *sh)
{
	if (in->n == VR_MANIFEST_MAX_ENTRIES) {
		free(path);
		return -E2BIG;
	}
	if (in->n == in->cap) {
		size_t ncap = in->cap ? in->cap * 2 : 16;
		struct shard_in *nv = realloc(in->v, ncap * sizeof(*nv));

		if (!nv) {
			free(path);
			return -ENOMEM;
		}
		in->v = nv;
		in->cap = ncap;
	}
	in->v[in->n].path = path;
	in->v[in->n].s = *sh;
	in->n++;
	return 0;
}

/*
 * Checks resource IT's algorithm ALG: the statement's hash_type for "files";
 * for "shards" what model_signing writes, "<hash_type>-sharded-<shard_size>".
 */
static bool algorithm_ok(const struct vr_manifest *m, const char *alg)
{
	char want[64];

	if (!m->shard_size)
		return strcmp(alg, vr_hash_name(m->hash)) == 0;
	snprintf(want, sizeof(want), "%s-sharded-%" PRIu64, vr_hash_name(m->hash), m->shard_size);
	return strcmp(alg, want) == 0;
}

/*
 * Adds resource IT ({"name", "algorithm", "digest"}) to M (a file) or IN (a
 * shard), and its digest to the listed-order subject. Refuses a resource
 * without all three strings (-EINVAL), another algorithm (-EOPNOTSUPP), a
 * digest that is not the hash's size in lowercase hex, a name refused
 * (-EINVAL), and the resource past VR_MANIFEST_MAX_ENTRIES (-E2BIG). -ENOMEM
 * leaves WHY to the caller.
 */
static int add_resource(struct vr_manifest *m, size_t *cap, struct res_in *in, const cJSON *it,
			char why[VR_WHY_MAX])
{
	const char *name = str_of(it, "name"), *alg = str_of(it, "algorithm");
	const char *dig = str_of(it, "digest"), *bad;
	size_t dlen = vr_hash_size(m->hash), nth = m->count + in->n + 1;
	struct vr_manifest_shard sh = {0};
	char *copy = NULL;
	int ret;

	if (!name || !alg || !dig)
		return mf_fail(why, -EINVAL, "resource %zu lacks name, algorithm or digest", nth);
	if (!algorithm_ok(m, alg))
		return mf_fail(why, -EOPNOTSUPP,
			       "resource %.100s: algorithm %.40s is not the statement's hash", name,
			       alg);
	if (vr_unhex(dig, sh.digest, dlen))
		return mf_fail(why, -EINVAL, "resource %.100s: digest is not %zu lowercase hex",
			       name, 2 * dlen);
	sha256_update(&in->listed, dlen, sh.digest);
	if (m->shard_size) {
		ret = split_shard(m, name, &copy, &sh, why);
		if (ret == 0)
			ret = push_shard(in, copy, &sh);
	} else {
		copy = strdup(name);
		if (!copy)
			return -ENOMEM;
		bad = mf_normalize_file(copy);
		if (bad) {
			free(copy);
			return mf_fail(why, -EINVAL, "resource %.100s: the name is %s", name, bad);
		}
		ret = mf_add_entry_n(m, cap, copy, sh.digest, dlen);
	}
	if (ret == -E2BIG)
		mf_fail(why, ret, "more than %u resources", VR_MANIFEST_MAX_ENTRIES);
	return ret;
}

static int by_path_start(const void *a, const void *b)
{
	const struct shard_in *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return x->s.start < y->s.start ? -1 : x->s.start > y->s.start;
}

/*
 * Checks the shards of one file, V[0..N) in order of START, as model_signing
 * cuts a file: from 0, each starting where the one before ended, every one but
 * the last exactly shard_size long. Refuses a gap, an overlap (a shard listed
 * twice among them) and a short shard before the end (-EINVAL): the shards
 * must say one size and one digest for every byte.
 */
static int check_cut(const struct vr_manifest *m, const struct shard_in *v, size_t n,
		     char why[VR_WHY_MAX])
{
	uint64_t at = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i].s.start != at)
			return mf_fail(why, -EINVAL,
				       "resource %.100s: shards leave a gap or overlap at byte "
				       "%" PRIu64,
				       v[i].path, at);
		if (i + 1 < n && v[i].s.end - v[i].s.start != m->shard_size)
			return mf_fail(why, -EINVAL,
				       "resource %.100s: shard %" PRIu64 ":%" PRIu64
				       " is shorter than shard_size but not the last",
				       v[i].path, v[i].s.start, v[i].s.end);
		at = v[i].s.end;
	}
	return 0;
}

/*
 * Builds M's entries from IN's shards: sorted by path and start, each file's
 * run checked (check_cut) and made one entry holding its shards. The paths are
 * taken over (freed here on failure too).
 */
static int group_shards(struct vr_manifest *m, struct res_in *in, char why[VR_WHY_MAX])
{
	size_t cap = 0, i = 0;
	int ret = 0;

	if (in->n > 1)
		qsort(in->v, in->n, sizeof(*in->v), by_path_start);
	while (i < in->n && ret == 0) {
		size_t j = i + 1;
		struct vr_manifest_shard *sh;

		while (j < in->n && strcmp(in->v[j].path, in->v[i].path) == 0)
			j++;
		ret = check_cut(m, in->v + i, j - i, why);
		sh = ret ? NULL : malloc((j - i) * sizeof(*sh));
		if (!ret && !sh)
			ret = -ENOMEM;
		if (!ret) {
			for (size_t k = i; k < j; k++)
				sh[k - i] = in->v[k].s;
			ret = mf_add_entry_n(m, &cap, in->v[i].path, NULL, 0);
			in->v[i].path = NULL; /* taken over, freed on failure */
		}
		if (ret) {
			free(sh);
		} else {
			m->entries[m->count - 1].shards = sh;
			m->entries[m->count - 1].nshards = j - i;
		}
		for (size_t k = i; k < j; k++) {
			free(in->v[k].path);
			in->v[k].path = NULL;
		}
		i = j;
	}
	for (; i < in->n; i++)
		free(in->v[i].path);
	return ret;
}

/*
 * Checks that WANT, the subject digest, is the SHA-256 of the resources' raw
 * digests as model_signing verifies it, in the order they are listed; LISTED
 * holds that. The same over M's entries in name order is accepted too (what
 * this verifier asked before, and what a signer that lists resources sorted by
 * name gives). Refuses a mismatch (-EBADMSG): the subject digest covers the
 * resource list, so none can be added, dropped or edited.
 */
static int check_subject(struct vr_manifest *m, struct sha256_ctx *listed,
			 const uint8_t want[VR_DIGEST_SIZE], char why[VR_WHY_MAX])
{
	struct sha256_ctx ctx;
	uint8_t got[VR_DIGEST_SIZE], sorted[VR_DIGEST_SIZE];
	size_t dlen = vr_hash_size(m->hash);

	sha256_digest(listed, sizeof(got), got);
	sha256_init(&ctx);
	for (size_t i = 0; i < m->count; i++) {
		const struct vr_manifest_entry *e = &m->entries[i];

		if (!e->shards)
			sha256_update(&ctx, dlen, e->digest);
		for (size_t k = 0; e->shards && k < e->nshards; k++)
			sha256_update(&ctx, dlen, e->shards[k].digest);
	}
	sha256_digest(&ctx, sizeof(sorted), sorted);
	if (!memeql_sec(got, want, sizeof(got)) && !memeql_sec(sorted, want, sizeof(sorted)))
		return mf_fail(why, -EBADMSG, "the subject digest does not match the resources");
	memcpy(m->subject, want, VR_DIGEST_SIZE);
	return 0;
}

/*
 * Adds every resource of RES to M (add_resource; shards then grouped by
 * file), sorts the entries and checks the subject. Refuses the statement at
 * the first bad resource, and when a name is listed twice: one file with two
 * digests has no answer.
 */
static int read_resources(struct vr_manifest *m, const cJSON *res,
			  const uint8_t want[VR_DIGEST_SIZE], char why[VR_WHY_MAX])
{
	struct res_in in = {0};
	const cJSON *it;
	size_t cap = 0;
	long dup;
	int ret = 0;

	sha256_init(&in.listed);
	cJSON_ArrayForEach(it, res)
	{
		ret = add_resource(m, &cap, &in, it, why);
		if (ret)
			break;
	}
	if (ret == 0 && m->shard_size)
		ret = group_shards(m, &in, why);
	else
		for (size_t i = 0; i < in.n; i++)
			free(in.v[i].path);
	free(in.v);
	if (ret)
		return ret;
	dup = mf_sort_entries(m);
	if (dup >= 0)
		return mf_fail(why, -EINVAL, "resource %.200s is listed twice",
			       m->entries[dup].name);
	return check_subject(m, &in.listed, want, why);
}

/*
 * Reads the verified statement PAYLOAD into M: the statement and its
 * predicate type, the subject, the serialization, the resources, and last the
 * check that the subject digest matches them. Stops at the first refusal,
 * with WHY and -errno from that step.
 */
int mf_read_statement(struct vr_manifest *m, const uint8_t *payload, size_t plen,
		      char why[VR_WHY_MAX])
{
	uint8_t want[VR_DIGEST_SIZE];
	const cJSON *res = NULL;
	cJSON *st;
	int ret;

	ret = parse_statement(payload, plen, &st, why);
	if (ret == 0)
		ret = read_subject(st, want, why);
	if (ret == 0)
		ret = read_serialization(m, st, &res, why);
	if (ret == 0)
		ret = read_resources(m, res, want, why);
	cJSON_Delete(st);
	return ret;
}
