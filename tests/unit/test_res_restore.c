/* test_res_restore.c - the tree's record for a keeper (record.c) and the tree rebuilt from it
 * (restore.c), over the mock's keep and adopt (mock_keep.c): a round trip of folders, files,
 * links, modes and attributes; every refusal of a record and of an entry; bytes changed while
 * kept, quarantined. The keeper is a table of descriptors by id and index, in this process. */
#include "digest.h"
#include "key.h"
#include "res_fixture.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define KEPT_MAX 64

/* The stand-in keeper: what the residency stored, by (id, index). */
static struct {
	uint64_t id;
	uint32_t i;
	int fd;
} kept[KEPT_MAX];
static unsigned nkept, changes, drops;
static bool lose_first; /* TAKE gives nothing for index 0: memory the keeper lost */

static int store(void *ctx, struct vr_dev_file *dev, uid_t owner, uint64_t *id, uint32_t *n,
		 uint64_t **lens)
{
	struct vr_dev_export e;
	int ret = vr_dev_keep(dev, &e);

	(void)ctx;
	(void)owner;
	if (ret)
		return ret;
	*id = 0x1000 + nkept;
	for (uint32_t i = 0; i < e.count && nkept < KEPT_MAX; i++) {
		kept[nkept].id = *id;
		kept[nkept].i = i;
		kept[nkept++].fd = e.fds[i];
		e.fds[i] = -1;
	}
	*n = e.count;
	*lens = e.lens;
	e.lens = NULL;
	vr_dev_export_clear(&e);
	return 0;
}

static void drop(void *ctx, uint64_t id, uint32_t n, uid_t owner)
{
	(void)ctx;
	(void)n;
	(void)owner;
	for (unsigned k = 0; k < nkept; k++)
		if (kept[k].id == id && kept[k].fd >= 0) {
			close(kept[k].fd);
			kept[k].fd = -1;
		}
	drops++;
}

static void changed(void *ctx)
{
	(void)ctx;
	changes++;
}

static int take(void *ctx, uint64_t id, uint32_t i, uid_t owner)
{
	(void)ctx;
	(void)owner;
	if (lose_first && i == 0)
		return -1;
	for (unsigned k = 0; k < nkept; k++)
		if (kept[k].id == id && kept[k].i == i && kept[k].fd >= 0)
			return fcntl(kept[k].fd, F_DUPFD_CLOEXEC, 3);
	return -1;
}

static char vram_dir[64];

/* The keeper lets everything go; the chunk files kept trees left in the vram= folder too. */
static void forget_kept(void)
{
	DIR *d = opendir(vram_dir);
	struct dirent *e;
	char path[400];

	for (unsigned k = 0; k < nkept; k++)
		if (kept[k].fd >= 0)
			close(kept[k].fd);
	nkept = 0;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", vram_dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

static const struct vr_res_keeper keeper = {.store = store, .drop = drop, .changed = changed};
static uint8_t data[300000];
static char *record;
static size_t record_len;

/* A tree of a folder (0750, an attribute), two files and a link; its record in RECORD, and the
 * tree freed as at a stop to be restarted (its memory left with the keeper). */
static void make_kept_tree(struct res_fixture *f)
{
	struct vr_res_config cfg = f->cfg;
	struct vr_residency *r;

	cfg.keeper = &keeper;
	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(vr_res_mkdir(r, "/d", 0750, &me), 0);
	CHECK_EQ(load(r, "/d/a", data, sizeof(data)), 0);
	CHECK_EQ(load(r, "/b", "bee", 3), 0);
	CHECK_EQ(vr_res_symlink(r, "b", "/l", &me), 0);
	CHECK_EQ(vr_res_setxattr(r, "/d", "user.origin", "\x01\x02hub", 5, 0), 0);
	CHECK_EQ(vr_res_chmod(r, "/d", 0750), 0);
	CHECK(changes > 0);
	free(record);
	CHECK_EQ(vr_res_record(r, 7, &record, &record_len), 0);
	vr_res_keep_at_stop(r);
	vr_res_free(r);
}

/* RECORD's JSON with MUTATE applied, signed again as a daemon would: the refusals past the MAC */
static char *resigned(void (*mutate)(cJSON *root))
{
	const char *nl = memchr(record, '\n', record_len);
	char *json = strndup(record, (size_t)(nl - record)), *out = NULL, hex[65];
	cJSON *root = cJSON_Parse(json);
	uint8_t mac[32];

	free(json);
	mutate(root);
	json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	CHECK_EQ(vr_keyring_record_mac(keys, "MOCK-00000000-0000-0000-0000-000000000000", json,
				       strlen(json), mac),
		 0);
	vr_hex(mac, sizeof(mac), hex);
	CHECK(asprintf(&out, "%s\n%s\n", json, hex) > 0);
	free(json);
	return out;
}

/* Restores TEXT into a new tree; its result, what came back, and the tree freed (scrubbing). */
static int restore_text(struct res_fixture *f, const char *text, uint64_t gen,
			struct vr_res_restored *got, char *why)
{
	struct vr_residency *r;
	int ret;

	CHECK_EQ(vr_res_new(&f->cfg, &r), 0);
	memset(got, 0, sizeof(*got));
	ret = vr_res_restore(r, text, strlen(text), gen, take, NULL, got, why, 256);
	vr_res_keep_at_stop(r); /* what came back stays with the keeper for the next case */
	vr_res_free(r);
	return ret;
}

static void round_trip(struct res_fixture *f)
{
	struct vr_res_restored got;
	struct vr_residency *r;
	struct vr_attr a;
	char why[256], buf[16], link[8];
	static char back[sizeof(data) + 1];
	size_t len;

	make_kept_tree(f);
	CHECK_EQ(vr_res_new(&f->cfg, &r), 0);
	CHECK_EQ(vr_res_restore(r, record, record_len, 7, take, NULL, &got, why, sizeof(why)), 0);
	CHECK_EQ(got.files, 2u);
	CHECK_EQ(got.dirs, 1u);
	CHECK_EQ(got.links, 1u);
	CHECK_EQ(got.quarantined + got.refused, 0u);
	CHECK_EQ(got.bytes, (uint64_t)sizeof(data) + 3);
	CHECK_EQ(slurp(r, "/d/a", back, sizeof(back), &len), 0);
	CHECK(len == sizeof(data) && memcmp(back, data, len) == 0);
	CHECK_EQ(vr_res_getattr(r, "/d", &a), 0);
	CHECK_EQ(a.mode & 07777, 0750u);
	CHECK_EQ(vr_res_getxattr(r, "/d", "user.origin", buf, sizeof(buf), &len), 0);
	CHECK(len == 5 && memcmp(buf, "\x01\x02hub", 5) == 0);
	CHECK_EQ(vr_res_readlink(r, "/l", link, sizeof(link)), 0);
	CHECK(strcmp(link, "b") == 0);
	vr_res_free(r);
	forget_kept();
}

static void flip_json(void)
{
	record[10] ^= 1;
}

static void refusals_whole(struct res_fixture *f)
{
	struct vr_res_restored got;
	char why[256];

	make_kept_tree(f);
	CHECK_EQ(restore_text(f, record, 8, &got, why), -EINVAL); /* not the keeper's generation */
	CHECK(strstr(why, "generation") != NULL);
	CHECK_EQ(restore_text(f, "not a record\n", 7, &got, why), -EINVAL);
	flip_json();
	CHECK_EQ(restore_text(f, record, 7, &got, why), -EBADMSG);
	CHECK(strstr(why, "MAC") != NULL);
	flip_json();
	CHECK_EQ(got.files, 0u);
	forget_kept();
}

static void other_device(cJSON *root)
{
	cJSON_ReplaceItemInObject(root, "device", cJSON_CreateString("GPU-other"));
}

static void other_version(cJSON *root)
{
	cJSON_ReplaceItemInObject(root, "version", cJSON_CreateNumber(2));
}

/* each file entry: the first's seal names another path; the second loses its keep_id */
static void bad_entries(cJSON *root)
{
	cJSON *n, *nodes = cJSON_GetObjectItem(root, "nodes");
	int files = 0;

	cJSON_ArrayForEach(n, nodes)
	{
		const char *k = cJSON_GetObjectItem(n, "kind")->valuestring;

		if (strcmp(k, "file") == 0 && files++ == 0) {
			cJSON_ReplaceItemInObject(n, "path", cJSON_CreateString("elsewhere"));
		} else if (strcmp(k, "file") == 0) {
			cJSON_DeleteItemFromObject(n, "keep_id");
		} else if (strcmp(k, "link") == 0) {
			cJSON_ReplaceItemInObject(n, "kind", cJSON_CreateString("socket"));
		}
	}
}

static void wrong_sizes(cJSON *root)
{
	cJSON *n;

	cJSON_ArrayForEach(n, cJSON_GetObjectItem(root, "nodes"))
	{
		cJSON *cb = cJSON_GetObjectItem(n, "chunk_bytes");

		if (cb && cJSON_GetArraySize(cb) > 0)
			cJSON_ReplaceItemInArray(cb, 0, cJSON_CreateNumber(12345));
	}
}

static void refusals_signed(struct res_fixture *f)
{
	struct vr_res_restored got;
	char why[256], *text;

	make_kept_tree(f);
	text = resigned(other_device);
	CHECK_EQ(restore_text(f, text, 7, &got, why), -EINVAL);
	CHECK(strstr(why, "another device") != NULL);
	free(text);
	text = resigned(other_version);
	CHECK_EQ(restore_text(f, text, 7, &got, why), -EINVAL);
	free(text);
	text = resigned(bad_entries);
	CHECK_EQ(restore_text(f, text, 7, &got, why), 0);
	CHECK_EQ(got.files, 0u);
	CHECK_EQ(got.refused, 3u); /* a seal of another path, no keep_id, an unknown kind */
	free(text);
	text = resigned(wrong_sizes);
	CHECK_EQ(restore_text(f, text, 7, &got, why), 0);
	CHECK_EQ(got.files, 0u);
	CHECK_EQ(got.refused, 2u); /* memory not what the record says */
	free(text);
	lose_first = true;
	CHECK_EQ(restore_text(f, record, 7, &got, why), 0);
	CHECK_EQ(got.refused, 2u); /* memory the keeper no longer holds */
	lose_first = false;
	forget_kept();
}

/* bytes changed in a kept chunk: that file comes back quarantined, its bytes never served */
static void changed_bytes(struct res_fixture *f)
{
	struct vr_res_restored got;
	struct vr_residency *r;
	char why[256], buf[8];
	size_t len;

	make_kept_tree(f);
	CHECK(nkept >= 2);
	CHECK_EQ(pwrite(kept[0].fd, "X", 1, 5), 1); /* d/a's first chunk */
	CHECK_EQ(vr_res_new(&f->cfg, &r), 0);
	CHECK_EQ(vr_res_restore(r, record, record_len, 7, take, NULL, &got, why, sizeof(why)), 0);
	CHECK_EQ(got.quarantined, 1u);
	CHECK_EQ(got.files, 1u);
	CHECK_EQ(slurp(r, "/d/a", buf, sizeof(buf), &len), -EIO);
	CHECK_EQ(slurp(r, "/b", buf, sizeof(buf), &len), 0);
	vr_res_free(r);
	forget_kept();
}

/* the mock adopts only its own chunks, of the sizes the record says */
static void adopt_refusals(struct res_fixture *f)
{
	int tmp = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	struct vr_dev_export e = {.kind = VR_EXPORT_HOST_FD, .count = 1};
	struct vr_dev_file *out;

	CHECK(tmp >= 0 && ftruncate(tmp, 65536) == 0);
	e.fds = malloc(sizeof(int));
	e.lens = malloc(sizeof(uint64_t));
	e.fds[0] = tmp;
	e.lens[0] = 65536;
	CHECK_EQ(vr_dev_adopt(&f->b, &e, 100, &out), -EINVAL); /* not a file of its vram= folder */
	e.fds = malloc(sizeof(int));
	e.lens = malloc(sizeof(uint64_t));
	e.count = 1;
	e.fds[0] = open("/dev/null", O_RDONLY);
	e.lens[0] = 65536;
	e.kind = VR_EXPORT_CUDA_FD;
	CHECK_EQ(vr_dev_adopt(&f->b, &e, 100, &out), -EINVAL); /* not host memory */
	e.fds = malloc(sizeof(int));
	e.lens = malloc(sizeof(uint64_t));
	e.count = 1;
	e.fds[0] = open("/dev/null", O_RDONLY);
	e.lens[0] = 65536;
	e.kind = VR_EXPORT_HOST_FD;
	CHECK_EQ(vr_dev_adopt(&f->b, &e, 70000, &out), -EINVAL); /* chunks shorter than the file */
}

int main(void)
{
	struct res_fixture f;

	res_pattern(data, sizeof(data));
	res_fixture_open(&f, false);
	snprintf(vram_dir, sizeof(vram_dir), "%s", f.vram);
	round_trip(&f);
	refusals_whole(&f);
	refusals_signed(&f);
	changed_bytes(&f);
	adopt_refusals(&f);
	free(record);
	res_fixture_close(&f);
	return check_summary();
}
