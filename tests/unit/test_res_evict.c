/* test_res_evict.c - eviction (evict.c, evict_policy.c): sealed files to host memory and back,
 * checked on the device; who may move what; the policy's decisions over simulated pressure. */
#include "res_fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MB (1u << 20)

static struct vr_peer root = {.uid = 0, .gid = 0, .pid = 1};

/* The host store: a second mock, its chunk files in a folder of their own, so a test can play
 * an attacker who changes evicted bytes. */
struct store {
	char dir[32];
	struct vr_backend_opt opts[2];
	struct vr_backend b;
};

static void store_open(struct store *s, const char *capacity)
{
	struct vr_backend_params p = {.opts = s->opts, .nopts = 2};

	snprintf(s->dir, sizeof(s->dir), "/tmp/vr-evs-XXXXXX");
	CHECK(mkdtemp(s->dir) != NULL);
	s->opts[0] = (struct vr_backend_opt){"capacity", capacity};
	s->opts[1] = (struct vr_backend_opt){"vram", s->dir};
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &s->b), 0);
}

static void store_close(struct store *s)
{
	vr_backend_close(&s->b);
	CHECK_EQ(rmdir(s->dir), 0); /* every evicted byte went with its file */
}

/* Cuts the chunk files in the store's folder to 1000 bytes, the first one or (ALL) every one;
 * returns how many it cut. */
static int cut_files(struct store *s, bool all)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	int done = 0;

	while (d && (all || !done) && (e = readdir(d)) != NULL) {
		char p[320];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", s->dir, e->d_name);
		done += truncate(p, 1000) == 0;
	}
	if (d)
		closedir(d);
	return done;
}

static int cut(struct store *s)
{
	return cut_files(s, false);
}

/* Flips one byte of the first chunk file in the store's folder; returns how many it flipped. */
static int tamper(struct store *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;
	int done = 0;

	while (d && !done && (e = readdir(d)) != NULL) {
		char p[320];
		uint8_t b;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", s->dir, e->d_name);
		int fd = open(p, O_RDWR);

		if (fd >= 0 && pread(fd, &b, 1, 1000) == 1) {
			b ^= 0x40;
			done = pwrite(fd, &b, 1, 1000) == 1;
		}
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return done;
}

/* Whether PATH reads back as DATA (LEN bytes): 0, or the read's error. */
static int same(struct vr_residency *r, const char *path, const uint8_t *data, size_t len)
{
	static char buf[8 << 20];
	size_t got = 0;
	int ret = slurp(r, path, buf, sizeof(buf), &got);

	if (ret)
		return ret;
	return got == len && memcmp(buf, data, len) == 0 ? 0 : -EBADMSG;
}

static int evict(struct vr_residency *r, const char *path, const struct vr_peer *p, bool back)
{
	char why[256];
	unsigned moved = 0;

	return vr_res_evict(r, path, p, back, &moved, why, sizeof(why));
}

static uint64_t blocks(struct vr_residency *r, const char *path)
{
	struct vr_attr a = {0};

	CHECK_EQ(vr_res_getattr(r, path, &a), 0);
	return a.blocks;
}

/* The number KEY has in the status: in its "eviction" object when EV, else the first. */
static long long stat_of(struct vr_residency *r, bool ev, const char *key)
{
	char *t = NULL, want[64];
	size_t len;
	long long v = -1;

	snprintf(want, sizeof(want), "\"%s\":", key);
	if (vr_res_status(r, &t, &len) == 0) {
		const char *from = ev ? strstr(t, "\"eviction\":") : t;
		const char *at = from ? strstr(from, want) : NULL;

		if (at)
			v = strtoll(at + strlen(want), NULL, 10);
	}
	free(t);
	return v;
}

/* Evicted and back: the same bytes, the same seal, its size; device memory given back. */
static void round_trip(struct vr_residency *r, const uint8_t *data)
{
	static char seal0[4096], seal1[4096];
	size_t l0 = 0, l1 = 0;
	struct vr_attr a;

	CHECK_EQ(load(r, "/a", data, 5 * MB + 123), 0);
	CHECK_EQ(slurp(r, "/a.seal", seal0, sizeof(seal0), &l0), 0);
	CHECK(blocks(r, "/a") > 0);
	CHECK_EQ(evict(r, "/a", &root, false), 0);
	CHECK_EQ(evict(r, "/a", &root, false), 0); /* again: nothing to do, no error */
	CHECK_EQ(blocks(r, "/a"), 0);		   /* no device memory while evicted */
	CHECK_EQ(vr_res_getattr(r, "/a", &a), 0);
	CHECK_EQ(a.size, 5 * MB + 123); /* ls -l shows the same size */
	CHECK(stat_of(r, true, "files") == 1 && stat_of(r, true, "bytes") == 5243003);
	CHECK_EQ(slurp(r, "/a.seal", seal1, sizeof(seal1), &l1), 0);
	CHECK(l0 == l1 && memcmp(seal0, seal1, l0) == 0); /* the seal is kept as it was */
	/* verify checks the host copy and says it is evicted, without failing */
	char rep[1024];
	size_t rl = 0;

	CHECK_EQ(slurp(r, "/verify", rep, sizeof(rep) - 1, &rl), 0);
	rep[rl] = '\0';
	CHECK(strncmp(rep, "EVICTED a sha256:", 17) == 0);
	/* an open restores it, checked on the device, and reads the same bytes */
	CHECK_EQ(same(r, "/a", data, 5 * MB + 123), 0);
	CHECK(blocks(r, "/a") > 0);
	CHECK(stat_of(r, true, "files") == 0 && stat_of(r, true, "bytes") == 0);
	CHECK(stat_of(r, true, "evictions") == 1 && stat_of(r, true, "restores") == 1 &&
	      stat_of(r, true, "refused") == 0);
	/* by hand both ways */
	CHECK_EQ(evict(r, "/a", &root, false), 0);
	CHECK_EQ(evict(r, "/a", &root, true), 0);
	CHECK(blocks(r, "/a") > 0);
	CHECK_EQ(vr_res_unlink(r, "/a", &me), 0);
}

/* Bytes changed in host memory while evicted: caught by verify, or at the restore. */
static void tampered(struct vr_residency *r, struct store *s, const uint8_t *data)
{
	char rep[1024];
	size_t rl = 0;

	CHECK_EQ(load(r, "/t", data, 2 * MB), 0);
	CHECK_EQ(evict(r, "/t", &root, false), 0);
	CHECK_EQ(tamper(s), 1);
	CHECK_EQ(same(r, "/t", data, 2 * MB), -EIO); /* its restore finds the change */
	CHECK_EQ(slurp(r, "/verify", rep, sizeof(rep) - 1, &rl), -EIO);
	rep[rl] = '\0';
	CHECK(strstr(rep, "FAILED t") != NULL);
	CHECK_EQ(stat_of(r, false, "quarantined"), 1);
	CHECK_EQ(vr_res_unlink(r, "/t", &me), 0);
	/* changed, and caught by a verify before any open */
	CHECK_EQ(load(r, "/u", data, 1 * MB), 0);
	CHECK_EQ(evict(r, "/u", &root, false), 0);
	CHECK_EQ(tamper(s), 1);
	CHECK_EQ(slurp(r, "/verify", rep, sizeof(rep) - 1, &rl), -EIO);
	rep[rl] = '\0';
	CHECK(strstr(rep, "FAILED u") != NULL && strstr(rep, "host memory") != NULL);
	CHECK_EQ(same(r, "/u", data, 1 * MB), -EIO);
	CHECK_EQ(vr_res_unlink(r, "/u", &me), 0);
	/* cut short: lost, so quarantined at the restore (not taken for a device error) */
	CHECK_EQ(load(r, "/v", data, 1 * MB), 0);
	CHECK_EQ(evict(r, "/v", &root, false), 0);
	CHECK_EQ(cut(s), 1);
	CHECK_EQ(same(r, "/v", data, 1 * MB), -EIO);
	CHECK_EQ(stat_of(r, false, "quarantined"), 1);
	CHECK_EQ(evict(r, "/v", &root, true), -EINVAL); /* quarantined: not sealed */
	CHECK_EQ(vr_res_unlink(r, "/v", &me), 0);
	/* and cut short, caught by a verify first */
	CHECK_EQ(load(r, "/w", data, 1 * MB), 0);
	CHECK_EQ(evict(r, "/w", &root, false), 0);
	CHECK_EQ(cut(s), 1);
	CHECK_EQ(slurp(r, "/verify", rep, sizeof(rep) - 1, &rl), -EIO);
	rep[rl] = '\0';
	CHECK(strstr(rep, "FAILED w its bytes in host memory (evicted) no longer read whole") !=
	      NULL);
	CHECK_EQ(stat_of(r, false, "quarantined"), 1);
	/* a folder's restore says a failure even when other files were left (not the caller's) */
	struct vr_peer owner = {.uid = 100, .gid = 100, .pid = 2};
	char why[256];
	unsigned moved = 0;

	CHECK_EQ(vr_res_mkdir(r, "/f", 0777, &me), 0);
	CHECK_EQ(load(r, "/f/mine", data, MB), 0);
	CHECK_EQ(load(r, "/f/root", data, MB), 0);
	CHECK_EQ(vr_res_chown(r, "/f/mine", 100, 100), 0);
	CHECK_EQ(vr_res_chmod(r, "/f/root", 0600), 0);
	CHECK_EQ(evict(r, "/f", &root, false), 0);
	CHECK_EQ(vr_res_unlink(r, "/w", &me), 0);
	CHECK_EQ(cut_files(s, true), 2); /* both: the caller's is lost, root's it may not read */
	CHECK_EQ(vr_res_evict(r, "/f", &owner, true, &moved, why, sizeof(why)), -EIO);
	CHECK(strstr(why, "1 not the caller's") != NULL);
	CHECK_EQ(vr_res_unlink(r, "/f/mine", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/f/root", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/f", &me), 0);
}

/* What stays: an open file, a mapped one, what is not sealed; who may move what. */
static void refusals(struct vr_residency *r, const uint8_t *data)
{
	struct vr_peer owner = {.uid = 100, .gid = 100, .pid = 2};
	struct vr_peer other = {.uid = 200, .gid = 200, .pid = 3};
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;
	struct vr_handle *h;
	char why[256];
	unsigned moved = 9;

	CHECK_EQ(load(r, "/o", data, MB), 0);
	CHECK_EQ(vr_res_open(r, "/o", O_RDONLY, &me, &h), 0);
	CHECK_EQ(evict(r, "/o", &root, false), -EBUSY);
	vr_res_release(r, h);
	CHECK_EQ(vr_res_lease(r, "/o", &root, false, &l, &exp), 0);
	CHECK_EQ(evict(r, "/o", &root, false), -EBUSY);
	vr_dev_export_clear(&exp);
	vr_res_lease_end(r, l);
	CHECK_EQ(evict(r, "/o", &owner, false), -EPERM); /* root's file */
	CHECK_EQ(vr_res_chown(r, "/o", 100, 100), 0);
	CHECK_EQ(evict(r, "/o", &other, false), -EPERM);
	CHECK_EQ(evict(r, "/o", &owner, false), 0);
	CHECK_EQ(vr_res_chmod(r, "/o", 0600), 0);
	CHECK_EQ(evict(r, "/o", &other, true), -EACCES); /* may not read it: may not restore */
	CHECK_EQ(evict(r, "/o", &owner, true), 0);
	CHECK_EQ(evict(r, "/nothing", &root, false), -ENOENT);
	CHECK_EQ(evict(r, "/o.seal", &root, false), -EINVAL);
	/* a folder: what may go goes; the open one stays and is said */
	CHECK_EQ(vr_res_mkdir(r, "/d", 0755, &me), 0);
	CHECK_EQ(load(r, "/d/x", data, MB), 0);
	CHECK_EQ(load(r, "/d/y", data, MB), 0);
	CHECK_EQ(vr_res_open(r, "/d/y", O_RDONLY, &me, &h), 0);
	CHECK_EQ(vr_res_evict(r, "/d", &root, false, &moved, why, sizeof(why)), 0);
	CHECK_EQ(moved, 1);
	CHECK(strstr(why, "1 open or mapped") != NULL);
	vr_res_release(r, h);
	CHECK_EQ(vr_res_evict(r, "/", &root, true, &moved, why, sizeof(why)), 0);
	CHECK_EQ(moved, 1);
	CHECK_EQ(vr_res_unlink(r, "/d/x", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/d/y", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/d", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/o", &me), 0);
}

/* Readers racing a restore see the whole verified bytes, or an error: never a part. */
struct reader {
	struct vr_residency *r;
	const uint8_t *data;
	int ret;
};

static void *read_all(void *arg)
{
	struct reader *x = arg;
	static _Thread_local char buf[3 << 20];
	struct vr_handle *h;
	size_t off = 0, got = 0;

	x->ret = vr_res_open(x->r, "/c", O_RDONLY, &me, &h);
	if (x->ret)
		return NULL;
	while (x->ret == 0 && off < 3 * MB &&
	       (x->ret = vr_res_read(x->r, h, buf + off, 3 * MB - off, off, &got)) == 0 && got)
		off += got;
	vr_res_release(x->r, h);
	if (x->ret == 0 && (off != 3 * MB || memcmp(buf, x->data, 3 * MB) != 0))
		x->ret = -EBADMSG;
	return NULL;
}

static void concurrent(struct vr_residency *r, struct store *s, const uint8_t *data)
{
	for (int round = 0; round < 2; round++) {
		pthread_t t[4];
		struct reader x[4];

		CHECK_EQ(load(r, "/c", data, 3 * MB), 0);
		CHECK_EQ(evict(r, "/c", &root, false), 0);
		if (round)
			CHECK_EQ(tamper(s), 1);
		for (int i = 0; i < 4; i++) {
			x[i] = (struct reader){r, data, 1};
			pthread_create(&t[i], NULL, read_all, &x[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			CHECK_EQ(x[i].ret, round ? -EIO : 0);
		}
		CHECK_EQ(vr_res_unlink(r, "/c", &me), 0);
	}
}

/* No room: in host memory (the store's limit) or on the device for a restore. */
static void no_room(struct vr_residency *r, const uint8_t *data)
{
	CHECK_EQ(load(r, "/big", data, 5 * MB), 0);
	CHECK_EQ(evict(r, "/big", &root, false), -ENOSPC); /* the store holds 4 MiB */
	CHECK_EQ(same(r, "/big", data, 5 * MB), 0);	   /* still resident, still served */
	CHECK_EQ(load(r, "/e", data, 3 * MB), 0);
	CHECK_EQ(evict(r, "/e", &root, false), 0);
	/* the device fills meanwhile: the restore has no room, and the file stays evicted */
	CHECK_EQ(load(r, "/f1", data, 8 * MB), 0);
	CHECK_EQ(load(r, "/f2", data, 8 * MB), 0);
	CHECK_EQ(load(r, "/f3", data, 8 * MB), 0);
	CHECK_EQ(load(r, "/f4", data, 2 * MB), 0); /* 5 + 3 * 8 + 2 of 32 MiB: 1 left */
	CHECK_EQ(same(r, "/e", data, 3 * MB), -ENOSPC);
	CHECK_EQ(blocks(r, "/e"), 0);
	CHECK_EQ(vr_res_unlink(r, "/f3", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/f4", &me), 0);
	CHECK_EQ(same(r, "/e", data, 3 * MB), 0);
	CHECK_EQ(vr_res_unlink(r, "/f1", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/f2", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/e", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/big", &me), 0);
	/* removed while evicted: its host memory goes with it */
	CHECK_EQ(load(r, "/g", data, MB), 0);
	CHECK_EQ(evict(r, "/g", &root, false), 0);
	CHECK_EQ(vr_res_unlink(r, "/g", &me), 0);
	CHECK(stat_of(r, true, "files") == 0 && stat_of(r, true, "host_bytes") == 0);
}

/* restore=manual: an open of an evicted file answers EAGAIN; vram-evict --restore works. */
static void manual(struct res_fixture *fx, struct store *s, const uint8_t *data)
{
	struct vr_res_config cfg = fx->cfg;
	struct vr_residency *r;
	struct vr_handle *h;

	cfg.evict_store = &s->b;
	cfg.restore_manual = true;
	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/m", data, MB), 0);
	CHECK_EQ(evict(r, "/m", &root, false), 0);
	CHECK_EQ(vr_res_open(r, "/m", O_RDONLY, &me, &h), -EAGAIN);
	CHECK_EQ(evict(r, "/m", &root, true), 0);
	CHECK_EQ(same(r, "/m", data, MB), 0);
	vr_res_free(r);
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One policy step with OTHERS bytes used by one other process (0: none), AT seconds from T0. */
static void step(struct vr_residency *r, uint64_t others, double t0, double at)
{
	struct vr_res_pressure s = {.total = 32 * MB,
				    .free = 32 * MB, /* a double that does not see our files */
				    .others_bytes = others,
				    .others = others ? 1 : 0,
				    .now = t0 + at};

	vr_res_evict_tick(r, &s);
}

/* The policy: least recently used first, none while pressure comes and goes, back in order. */
static void policy(struct res_fixture *fx, struct store *s, const uint8_t *data)
{
	struct vr_res_config cfg = fx->cfg;
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;
	struct vr_residency *r;
	double t0;

	cfg.evict_store = &s->b;
	cfg.verify_on_open = false;
	cfg.evict = (struct vr_res_evict_policy){.on = true,
						 .keep_free = 6 * MB,
						 .margin = 2 * MB,
						 .min_resident = 0,
						 .restore_delay = 1.0};
	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/A", data, 4 * MB), 0);
	CHECK_EQ(load(r, "/B", data, 4 * MB), 0);
	CHECK_EQ(load(r, "/C", data, 4 * MB), 0);
	CHECK_EQ(same(r, "/A", data, 4 * MB), 0); /* A used last: B is the least recent */
	t0 = mono();
	step(r, 0, t0, 0); /* nobody else: nothing moves */
	CHECK(blocks(r, "/A") && blocks(r, "/B") && blocks(r, "/C"));
	/* 18 MiB others + 12 MiB ours of 32: 2 free, 6 wanted: one file goes, the LRU */
	step(r, 18 * MB, t0, 0.1);
	CHECK(blocks(r, "/A") && !blocks(r, "/B") && blocks(r, "/C"));
	/* comes and goes every step: no more evictions, and no restore (no thrash) */
	for (int i = 0; i < 20; i++)
		step(r, i % 2 ? 18 * MB : 0, t0, 0.2 + 0.1 * i);
	CHECK(stat_of(r, true, "evictions") == 1 && stat_of(r, true, "restores") == 0);
	/* more pressure: C goes next (A is the most recent), then A is leased and stays */
	CHECK_EQ(vr_res_lease(r, "/A", &root, false, &l, &exp), 0);
	step(r, 24 * MB, t0, 2.5);
	CHECK(blocks(r, "/A") && !blocks(r, "/C"));
	step(r, 30 * MB, t0, 2.6); /* only A is left, and it is mapped */
	CHECK(blocks(r, "/A") > 0);
	vr_dev_export_clear(&exp);
	vr_res_lease_end(r, l);
	/* gone: after the delay, back in the order they went (B first), while room lasts */
	step(r, 0, t0, 3.0);
	CHECK(!blocks(r, "/B"));
	step(r, 18 * MB, t0, 4.1); /* 18 + 4 ours: 10 free, over 6 kept: nothing moves */
	CHECK(!blocks(r, "/B") && !blocks(r, "/C"));
	step(r, 0, t0, 4.6); /* the restore delay is not past since 4.1 */
	CHECK(!blocks(r, "/B"));
	step(r, 16 * MB, t0, 6.5); /* 16 + 4: 12 free; B needs 4 + keep 6 + margin 2: fits */
	CHECK(blocks(r, "/B") && !blocks(r, "/C"));
	step(r, 0, t0, 7.6);
	CHECK(blocks(r, "/B") && blocks(r, "/C"));
	CHECK(stat_of(r, true, "evictions") == 2 && stat_of(r, true, "restores") == 2);
	CHECK_EQ(same(r, "/C", data, 4 * MB), 0);
	vr_res_free(r);
	/* no restore the device itself has no room for (even with no delay): none is tried, so
	 * none fails at every step */
	cfg.evict.restore_delay = 0;
	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/A", data, 4 * MB), 0);
	t0 = mono();
	step(r, 26 * MB, t0, 0); /* 26 + 4 of 32: 2 free, 6 kept: A goes */
	CHECK_EQ(blocks(r, "/A"), 0);
	CHECK_EQ(load(r, "/F1", data, 8 * MB), 0); /* the mock fills with files loaded meanwhile */
	CHECK_EQ(load(r, "/F2", data, 8 * MB), 0);
	CHECK_EQ(load(r, "/F3", data, 8 * MB), 0);
	CHECK_EQ(load(r, "/F4", data, 6 * MB), 0);
	for (int i = 1; i <= 5; i++) {
		/* NVML sees a larger card than the mock's 32 MiB, and nobody else on it: 34 MiB
		 * free by its count, 2 left on the mock, and A needs 4 */
		struct vr_res_pressure big = {.total = 64 * MB, .free = 64 * MB, .now = t0 + i};

		vr_res_evict_tick(r, &big);
	}
	CHECK_EQ(blocks(r, "/A"), 0);
	CHECK_EQ(stat_of(r, true, "refused"), 0);
	CHECK_EQ(vr_res_unlink(r, "/F4", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/F3", &me), 0);
	step(r, 0, t0, 6); /* 16 ours of 32: 16 free, 6 + 2 kept, A's 4 fit */
	CHECK(blocks(r, "/A") > 0);
	vr_res_free(r);
	/* a file resident less than min_resident stays */
	cfg.evict.min_resident = 1000;
	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(load(r, "/A", data, 4 * MB), 0);
	step(r, 30 * MB, mono(), 0);
	CHECK(blocks(r, "/A") > 0);
	vr_res_free(r);
}

int main(void)
{
	static uint8_t data[8 << 20];
	struct res_fixture fx;
	struct store s, small;
	struct vr_residency *r;

	res_fixture_open(&fx, false);
	res_pattern(data, sizeof(data));
	store_open(&s, "16M");
	store_open(&small, "4M");

	fx.cfg.evict_store = &s.b;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	round_trip(r, data);
	tampered(r, &s, data);
	refusals(r, data);
	concurrent(r, &s, data);
	vr_res_free(r);

	fx.cfg.evict_store = &small.b;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	no_room(r, data);
	vr_res_free(r);

	manual(&fx, &s, data);
	policy(&fx, &s, data);

	/* no store: eviction is not available, and says so */
	fx.cfg.evict_store = NULL;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	CHECK_EQ(load(r, "/n", data, 1000), 0);
	CHECK_EQ(evict(r, "/n", &root, false), -EOPNOTSUPP);
	vr_res_free(r);

	store_close(&small);
	store_close(&s);
	res_fixture_close(&fx);
	return check_summary();
}
