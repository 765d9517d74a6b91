/* test_res_verify.c - checks against the seal (verify.c): verify reports, tamper found
 * through the mock's backing file and quarantined, the quarantined tree renamed and emptied;
 * verify runs and the socket's checks shared, and limited per user. */
#include "res_fixture.h"
#include "seal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The mock calls this at each digest: while the gate is shut, digests wait here, counted. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_shut;
static unsigned digests, waiting;

void vr_test_digest_hook(void);
void vr_test_digest_hook(void)
{
	pthread_mutex_lock(&gate_lock);
	digests++;
	waiting++;
	pthread_cond_broadcast(&gate_cond);
	while (gate_shut)
		pthread_cond_wait(&gate_cond, &gate_lock);
	waiting--;
	pthread_mutex_unlock(&gate_lock);
}

static void gate(bool shut)
{
	pthread_mutex_lock(&gate_lock);
	gate_shut = shut;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
}

/* Waits until N digests are held at the gate (MS milliseconds at most); returns whether they
 * are. */
static bool held_within(unsigned n, long ms)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&gate_lock);
	while (waiting < n && pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == 0)
		;
	ok = waiting >= n;
	pthread_mutex_unlock(&gate_lock);
	return ok;
}

static bool held(unsigned n)
{
	return held_within(n, 5000);
}

struct opener {
	struct vr_residency *r;
	const char *path;
	struct vr_caller who;
	int ret;
	char text[4096];
	size_t len;
	pthread_t t;
};

static void *open_verify(void *arg)
{
	struct opener *o = arg;
	struct vr_handle *h;
	size_t got = 0;

	o->ret = vr_res_open(o->r, o->path, O_RDONLY, &o->who, &h);
	if (o->ret == 0) {
		vr_res_read(o->r, h, o->text, sizeof(o->text) - 1, 0, &got);
		vr_res_release(o->r, h);
	}
	o->text[got] = '\0';
	o->len = got;
	return NULL;
}

typedef void *(*check_fn)(void *);

/* TOP with directories a, b and c, a sealed file f of DATA in each. */
static void three_dirs(struct vr_residency *r, const char *top, const uint8_t *data, size_t n)
{
	char path[64];

	CHECK_EQ(vr_res_mkdir(r, top, 0755, &me), 0);
	for (const char *d = "abc"; *d; d++) {
		snprintf(path, sizeof(path), "%s/%c", top, *d);
		CHECK_EQ(vr_res_mkdir(r, path, 0755, &me), 0);
		snprintf(path, sizeof(path), "%s/%c/f", top, *d);
		CHECK_EQ(load(r, path, data, n), 0);
	}
}

/* A and B check at once through FN: B joins A's check, so one digest reaches the device. */
static void one_digest_for_two(struct opener *a, struct opener *b, check_fn fn)
{
	pthread_mutex_lock(&gate_lock);
	digests = 0;
	pthread_mutex_unlock(&gate_lock);
	gate(true);
	pthread_create(&a->t, NULL, fn, a);
	CHECK(held(1));
	pthread_create(&b->t, NULL, fn, b);
	/* were B to run its own check, a second digest would reach the gate */
	CHECK(!held_within(2, 300));
	gate(false);
	pthread_join(a->t, NULL);
	pthread_join(b->t, NULL);
	CHECK_EQ(a->ret, 0);
	CHECK_EQ(b->ret, 0);
	pthread_mutex_lock(&gate_lock);
	CHECK_EQ(digests, 1);
	pthread_mutex_unlock(&gate_lock);
}

/* The per-user limit: U1 (through FN1) and U2 (FN2) running, U3 (FN) is refused at once,
 * ROOT (FN) let through; U3 passes once the others ended. */
static void user_limit(struct opener *u1, check_fn fn1, struct opener *u2, check_fn fn2,
		       struct opener *u3, struct opener *root, check_fn fn)
{
	gate(true);
	pthread_create(&u1->t, NULL, fn1, u1);
	pthread_create(&u2->t, NULL, fn2, u2);
	CHECK(held(2));
	fn(u3);
	CHECK_EQ(u3->ret, -EAGAIN);
	pthread_create(&root->t, NULL, fn, root);
	CHECK(held(3));
	gate(false);
	pthread_join(u1->t, NULL);
	pthread_join(u2->t, NULL);
	pthread_join(root->t, NULL);
	CHECK_EQ(u1->ret, 0);
	CHECK_EQ(u2->ret, 0);
	CHECK_EQ(root->ret, 0);
	fn(u3);
	CHECK_EQ(u3->ret, 0);
}

/*
 * Concurrent opens of one verify share one check (the second waits for the
 * first's report: one digest, not two); a user other than root runs at most
 * VR_VERIFY_PER_UID verifies at once, and the next is refused; root is not
 * limited.
 */
static void shared_verify(struct vr_residency *r)
{
	static const uint8_t data[9000] = {1, 2, 3};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 77, .tgid = 77};
	struct opener a = {.r = r, .path = "/sv/a/verify", .who = me};
	struct opener b = {.r = r, .path = "/sv/a/verify", .who = me};
	struct opener u1 = {.r = r, .path = "/sv/a/verify", .who = user};
	struct opener u2 = {.r = r, .path = "/sv/b/verify", .who = user};
	struct opener u3 = {.r = r, .path = "/sv/c/verify", .who = user};
	struct opener root = {.r = r, .path = "/sv/c/verify", .who = me};

	three_dirs(r, "/sv", data, sizeof(data));
	one_digest_for_two(&a, &b, open_verify);
	CHECK(a.len > 0 && a.len == b.len && strcmp(a.text, b.text) == 0);
	CHECK(strstr(a.text, "OK sv/a/f sha256:") != NULL);

	/* the per-user limit: two running, the third refused at once, root let through */
	pthread_mutex_lock(&gate_lock);
	digests = 0;
	pthread_mutex_unlock(&gate_lock);
	user_limit(&u1, open_verify, &u2, open_verify, &u3, &root, open_verify);
}

/* An open of a sealed file for reading (checked first: the fixture verifies on open). */
static void *open_file(void *arg)
{
	struct opener *o = arg;
	struct vr_handle *h;

	o->ret = vr_res_open(o->r, o->path, O_RDONLY, &o->who, &h);
	if (o->ret == 0)
		vr_res_release(o->r, h);
	return NULL;
}

/* Waits until UID holds N checks (5 s at most); returns whether it does. */
static bool holds(struct vr_residency *r, uid_t uid, unsigned n)
{
	for (int i = 0; i < 5000 && vr_res_checks_held(r, uid) != n; i++)
		usleep(1000);
	return vr_res_checks_held(r, uid) == n;
}

/*
 * A caller waiting on a shared check holds a slot of its user's: U1 runs a verify, U2 (the
 * same user) joins it, and U3's next is refused at once; ROOT is let through; once they end
 * the user holds none.
 */
static void joiners_counted(struct vr_residency *r)
{
	static const uint8_t data[9000] = {7, 8, 9};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 79, .tgid = 79};
	struct opener u1 = {.r = r, .path = "/jc/a/verify", .who = user};
	struct opener u2 = {.r = r, .path = "/jc/a/verify", .who = user};
	struct opener u3 = {.r = r, .path = "/jc/b/verify", .who = user};
	struct opener root = {.r = r, .path = "/jc/b/verify", .who = me};

	three_dirs(r, "/jc", data, sizeof(data));
	gate(true);
	pthread_create(&u1.t, NULL, open_verify, &u1);
	CHECK(held(1));
	pthread_create(&u2.t, NULL, open_verify, &u2);
	CHECK(holds(r, 1000, 2)); /* the joiner counts */
	open_verify(&u3);
	CHECK_EQ(u3.ret, -EAGAIN);
	pthread_create(&root.t, NULL, open_verify, &root);
	CHECK(held(2));
	CHECK_EQ(vr_res_checks_held(r, 0), 0); /* root is not counted */
	gate(false);
	pthread_join(u1.t, NULL);
	pthread_join(u2.t, NULL);
	pthread_join(root.t, NULL);
	CHECK_EQ(u1.ret, 0);
	CHECK_EQ(u2.ret, 0);
	CHECK_EQ(root.ret, 0);
	CHECK(u1.len > 0 && u1.len == u2.len);
	CHECK_EQ(vr_res_checks_held(r, 1000), 0);
	CHECK_EQ(vr_res_checks_held(r, (uid_t)-1), 0);
}

/*
 * Users other than root hold VR_RES_CHECKS_OTHERS checks at most, all together: four users
 * each running a verify and waiting on it again hold them all, and a fifth user's first check
 * is refused at once; root is let through.
 */
static void all_users_cap(struct vr_residency *r)
{
	static const uint8_t data[9000] = {10, 11};
	struct opener o[VR_RES_CHECKS_OTHERS];
	struct opener fifth = {.r = r, .path = "/cap/b/f", .who = {.uid = 2005, .gid = 2005}};
	struct opener root = {.r = r, .path = "/cap/b/verify", .who = me};

	three_dirs(r, "/cap", data, sizeof(data));
	gate(true);
	for (unsigned i = 0; i < VR_RES_CHECKS_OTHERS; i++) {
		uid_t uid = 2001 + i / 2;

		o[i] = (struct opener){
		    .r = r, .path = "/cap/a/verify", .who = {.uid = uid, .gid = uid}};
		pthread_create(&o[i].t, NULL, open_verify, &o[i]);
		if (i % 2 == 0)
			CHECK(held(i / 2 + 1)); /* a run of the user's own (a report is theirs) */
		else
			CHECK(holds(r, uid, 2)); /* waiting on it */
	}
	CHECK_EQ(vr_res_checks_held(r, (uid_t)-1), VR_RES_CHECKS_OTHERS);
	open_file(&fifth);
	CHECK_EQ(fifth.ret, -EAGAIN);
	CHECK_EQ(vr_res_checks_held(r, 2005), 0);
	pthread_create(&root.t, NULL, open_verify, &root);
	CHECK(held(VR_RES_CHECKS_OTHERS / 2 + 1));
	gate(false);
	for (unsigned i = 0; i < VR_RES_CHECKS_OTHERS; i++) {
		pthread_join(o[i].t, NULL);
		CHECK_EQ(o[i].ret, 0);
	}
	pthread_join(root.t, NULL);
	CHECK_EQ(root.ret, 0);
	CHECK_EQ(vr_res_checks_held(r, (uid_t)-1), 0);
	open_file(&fifth);
	CHECK_EQ(fifth.ret, 0);
}

/* The user who mounted (R's root_uid, 3000) is not limited: three verifies of theirs run at
 * once, none refused, none counted. */
static void owner_unlimited(struct vr_residency *r)
{
	static const uint8_t data[9000] = {14, 15};
	struct opener o[3];

	three_dirs(r, "/ow", data, sizeof(data));
	gate(true);
	for (unsigned i = 0; i < 3; i++) {
		static const char *const dirs[] = {"/ow/a/verify", "/ow/b/verify", "/ow/c/verify"};

		o[i] = (struct opener){.r = r, .path = dirs[i], .who = {.uid = 3000, .gid = 3000}};
		pthread_create(&o[i].t, NULL, open_verify, &o[i]);
	}
	CHECK(held(3));
	CHECK_EQ(vr_res_checks_held(r, 3000), 0);
	gate(false);
	for (unsigned i = 0; i < 3; i++) {
		pthread_join(o[i].t, NULL);
		CHECK_EQ(o[i].ret, 0);
	}
}

/*
 * Checks at open (verify_on_open) are shared and limited as verify is: two opens of one file
 * at once run one digest; a user's opens are held to VR_VERIFY_PER_UID checks, the next
 * refused at once with EAGAIN; root is not limited.
 */
static void shared_open_checks(struct vr_residency *r)
{
	static const uint8_t data[9000] = {12, 13};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 80, .tgid = 80};
	struct opener a = {.r = r, .path = "/so/a/f", .who = user};
	struct opener b = {.r = r, .path = "/so/a/f", .who = user};
	struct opener u1 = {.r = r, .path = "/so/a/f", .who = user};
	struct opener u2 = {.r = r, .path = "/so/b/f", .who = user};
	struct opener u3 = {.r = r, .path = "/so/c/f", .who = user};
	struct opener root = {.r = r, .path = "/so/c/f", .who = me};

	three_dirs(r, "/so", data, sizeof(data));
	one_digest_for_two(&a, &b, open_file);
	user_limit(&u1, open_file, &u2, open_file, &u3, &root, open_file);
}

/* A chunk file in the mock's directory DIR whose bytes start with HEAD[0..16), opened for
 * writing as an attacker with access to device memory would; -1 if none. */
static int open_chunk_starting(const char *dir, const uint8_t *head)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = -1;

	while (d && found < 0 && (e = readdir(d)) != NULL) {
		char path[512];
		uint8_t got[16];
		int fd;

		if (strncmp(e->d_name, "chunk-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fd = open(path, O_RDWR);
		if (fd >= 0 && pread(fd, got, 16, 0) == 16 && memcmp(got, head, 16) == 0)
			found = fd;
		else if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	return found;
}

/* A map through the socket with the on-device check first, as O->who. */
static void *lease_verify(void *arg)
{
	struct opener *o = arg;
	struct vr_peer p = {.uid = o->who.uid, .gid = o->who.gid, .pid = o->who.pid};
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;

	o->ret = vr_res_lease(o->r, o->path, &p, true, &l, &exp);
	if (o->ret == 0) {
		vr_dev_export_clear(&exp);
		vr_res_lease_end(o->r, l);
	}
	return NULL;
}

/*
 * The socket's checks (map with verify) are shared and limited as verify is: two of one
 * file run one digest; a user's verifies and file checks together are held to
 * VR_VERIFY_PER_UID, the next refused at once with EAGAIN; root is not limited.
 */
static void shared_lease_checks(struct vr_residency *r)
{
	static const uint8_t data[9000] = {4, 5, 6};
	struct vr_caller user = {.uid = 1000, .gid = 1000, .pid = 78, .tgid = 78};
	struct opener a = {.r = r, .path = "/sl/a/f", .who = user};
	struct opener b = {.r = r, .path = "/sl/a/f", .who = me};
	struct opener u1 = {.r = r, .path = "/sl/a/verify", .who = user};
	struct opener u2 = {.r = r, .path = "/sl/b/f", .who = user};
	struct opener u3 = {.r = r, .path = "/sl/c/f", .who = user};
	struct opener root = {.r = r, .path = "/sl/c/f", .who = me};

	three_dirs(r, "/sl", data, sizeof(data));
	one_digest_for_two(&a, &b, lease_verify);

	/* a verify and a file check of the user's running: the next check is refused at once */
	user_limit(&u1, open_verify, &u2, lease_verify, &u3, &root, lease_verify);
}

int main(void)
{
	char text[65536];
	static uint8_t data[3 << 20];
	static char back[3 << 20];
	struct res_fixture fx;
	struct vr_residency *r;
	struct vr_statfs sf;
	struct vr_seal seal;
	struct vr_handle *h;
	size_t len;
	int fd;

	res_fixture_open(&fx, true);
	res_pattern(data, sizeof(data));
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);

	/* verify of an empty tree: an empty report, no failure */
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), 0);
	CHECK_EQ(len, 0);

	/* a sealed file in a folder to verify beside the one loaded next */
	CHECK_EQ(vr_res_mkdir(r, "/llama", 0755, &me), 0);
	CHECK_EQ(load(r, "/llama/w.bin", data, sizeof(data)), 0);

	/* verify report and tamper detection through the mock's backing file */
	CHECK_EQ(load(r, "/other.bin", data, 5000), 0);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), 0);
	text[len] = '\0';
	CHECK(strstr(text, "OK llama/w.bin sha256:") != NULL);
	CHECK(strstr(text, "OK other.bin sha256:") != NULL);
	/* a chunk (a file in the mock's directory) starting with data[0..16): w.bin's or
	 * other.bin's (both start so) */
	fd = open_chunk_starting(fx.vram, data);
	CHECK(fd >= 0);
	uint8_t byte;

	CHECK_EQ(pread(fd, &byte, 1, 4242), 1);
	byte ^= 0x40;
	CHECK_EQ(pwrite(fd, &byte, 1, 4242), 1);
	close(fd);
	CHECK_EQ(slurp(r, "/verify", text, sizeof(text), &len), -EIO);
	text[len] = '\0';
	int failed =
	    strstr(text, "FAILED llama/w.bin") != NULL || strstr(text, "FAILED other.bin") != NULL;

	CHECK(failed);
	CHECK_EQ(slurp(r, "/llama/w.bin", back, sizeof(back), &len) == -EIO ||
		     slurp(r, "/other.bin", back, sizeof(back), &len) == -EIO,
		 1);
	CHECK_EQ(vr_res_status(r, (char **)&h, &len), 0);
	CHECK(strstr((char *)h, "\"quarantined\":\t1") != NULL);
	free(h);

	/* rename re-signs; rm frees */
	CHECK_EQ(vr_res_rename(r, "/other.bin", "/llama/moved.bin", 0, &me), 0);
	if (slurp(r, "/llama/moved.bin.seal", text, sizeof(text), &len) == 0) {
		CHECK_EQ(vr_seal_parse(text, len, &seal, NULL), 0);
		CHECK_STR(seal.path, "llama/moved.bin");
		CHECK_EQ(vr_seal_verify(&seal, keys), 0);
	}
	CHECK_EQ(vr_res_rename(r, "/llama", "/llama/sub", 0, &me), -EINVAL);
	CHECK_EQ(vr_res_rename(r, "/llama/moved.bin", "/llama/w.bin", 1 /* NOREPLACE */, &me),
		 -EEXIST);
	CHECK_EQ(vr_res_rmdir(r, "/llama", &me), -ENOTEMPTY);
	CHECK_EQ(vr_res_unlink(r, "/llama/moved.bin", &me), 0);
	CHECK_EQ(vr_res_unlink(r, "/llama/w.bin", &me), 0);
	CHECK_EQ(vr_res_rmdir(r, "/llama", &me), 0);
	CHECK_EQ(vr_res_statfs(r, &sf), 0);
	CHECK_EQ(sf.free_bytes, 32 << 20);
	CHECK_EQ(sf.files, 0);
	vr_res_free(r);

	fx.cfg.list_generated = false;
	/* verify runs shared, and limited per user, on a tree of its own */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	shared_verify(r);
	vr_res_free(r);
	/* and the socket's checks with them */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	shared_lease_checks(r);
	vr_res_free(r);
	/* joiners and checks at open counted, and the cap on all users together */
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	joiners_counted(r);
	all_users_cap(r);
	shared_open_checks(r);
	vr_res_free(r);
	/* a user's own mount: its owner is not limited */
	fx.cfg.root_uid = 3000;
	fx.cfg.root_gid = 3000;
	CHECK_EQ(vr_res_new(&fx.cfg, &r), 0);
	owner_unlimited(r);
	vr_res_free(r);
	res_fixture_close(&fx); /* every chunk file was removed with its file */
	return check_summary();
}
