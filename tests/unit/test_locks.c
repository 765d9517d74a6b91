/* test_locks.c - the lock annotations are checked: in a debug build, a function that needs the
 * tree lock or a file's IO lock, run without it, stops the program (an assertion), and runs
 * with it. Release builds (NDEBUG) compile the checks out: the test says so and skips (77). */
#include "backends.h"
#include "check.h"
#include "res_private.h"

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs FN(R) in a child; returns the signal that ended it, or 0 for a normal exit. */
static int in_child(void (*fn)(struct vr_residency *r), struct vr_residency *r)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		fclose(stderr); /* the assertion's message is expected: keep the log clean */
		fn(r);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void resolve_unlocked(struct vr_residency *r)
{
	struct res_lookup l;

	(void)res_resolve(r, "/", &l);
}

static void resolve_locked(struct vr_residency *r)
{
	struct res_lookup l;

	res_lock(r);
	(void)res_resolve(r, "/", &l);
	res_unlock(r);
}

/* the lock taken by another thread is not this thread's: a check must see the owner */
static void *hold(void *arg)
{
	struct vr_residency *r = arg;

	res_lock(r);
	pause(); /* the child exits (or stops) meanwhile */
	return NULL;
}

static void resolve_while_other_holds(struct vr_residency *r)
{
	struct res_lookup l;
	pthread_t t;

	pthread_create(&t, NULL, hold, r);
	usleep(100000);
	(void)res_resolve(r, "/", &l); /* wrong: the lock is held, but not by this thread */
}

static void io_unlocked(struct vr_residency *r)
{
	res_io_held(r->root);
}

static void io_shared(struct vr_residency *r)
{
	pthread_rwlock_rdlock(&r->root->io);
	res_io_held(r->root); /* wrong: held, but shared */
}

static void io_exclusive(struct vr_residency *r)
{
	pthread_rwlock_wrlock(&r->root->io);
	res_io_held(r->root);
	pthread_rwlock_unlock(&r->root->io);
}

int main(void)
{
	struct vr_backend_opt opts[] = {{"capacity", "16M"}};
	struct vr_backend_params p = {.opts = opts, .nopts = 1};
	struct vr_keyring *keys = NULL;
	struct vr_residency *r = NULL;
	uint8_t secret[32] = {7};
	struct vr_backend b;

#ifdef NDEBUG
	printf("lock checks are compiled out of release builds (NDEBUG); the Debug, ASan, TSan "
	       "and coverage builds run them\n");
	return 77;
#endif
	CHECK_EQ(vr_keyring_from_bytes(secret, sizeof(secret), &keys), 0);
	CHECK_EQ(vr_backend_open(&vr_mock_ops, &p, &b), 0);
	struct vr_res_config cfg = {.backend = &b, .keys = keys};

	CHECK_EQ(vr_res_new(&cfg, &r), 0);
	CHECK_EQ(in_child(resolve_locked, r), 0);
	CHECK_EQ(in_child(resolve_unlocked, r), SIGABRT);
	CHECK_EQ(in_child(resolve_while_other_holds, r), SIGABRT);
	CHECK_EQ(in_child(io_exclusive, r), 0);
	CHECK_EQ(in_child(io_unlocked, r), SIGABRT);
	CHECK_EQ(in_child(io_shared, r), SIGABRT);
	vr_res_free(r);
	vr_backend_close(&b);
	vr_keyring_free(keys);
	return check_summary();
}
