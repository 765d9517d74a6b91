/* keeper.c - the daemon's side of the descriptor store: each sealed file's memory and the
 * tree's signed record handed to the keeper as they change, and taken back at the next start. */
#include "keeper.h"

#include "audit.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "keeper_private.h"

/* Whether OWNER is limited to a share of the store (not root, nor the mount's owner). */
static bool limited(uid_t owner)
{
	return owner != 0 && owner != getuid();
}

/* OWNER's entry (made when MAKE and there is room), or NULL. LOCK held. */
static unsigned *user_held(struct vr_keeper *k, uid_t owner, bool make)
{
	for (unsigned i = 0; i < USERS_MAX; i++) {
		if (k->users[i].held && k->users[i].uid == owner)
			return &k->users[i].held;
	}
	for (unsigned i = 0; make && i < USERS_MAX; i++) {
		if (!k->users[i].held) {
			k->users[i].uid = owner;
			return &k->users[i].held;
		}
	}
	return NULL;
}

/* Counts N more descriptors of OWNER's in the store: 0, or -ENOSPC / -EDQUOT when they do
 * not fit (FORCE: counted anyway, for what a restart took back). */
int keeper_account(struct vr_keeper *k, uid_t owner, unsigned n, bool force)
{
	int ret = 0;

	pthread_mutex_lock(&k->lock);
	unsigned *u = limited(owner) ? user_held(k, owner, true) : NULL;

	if (!force && k->held + n > k->cap)
		ret = -ENOSPC;
	else if (!force && limited(owner) &&
		 (!u || k->others + n > k->cap / OTHERS_PART || *u + n > k->cap / ONE_PART))
		ret = -EDQUOT;
	if (ret == 0) {
		k->held += n;
		if (limited(owner)) {
			k->others += n;
			if (u)
				*u += n;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static void unaccount(struct vr_keeper *k, uid_t owner, unsigned n)
{
	pthread_mutex_lock(&k->lock);
	unsigned *u = limited(owner) ? user_held(k, owner, false) : NULL;

	k->held -= n < k->held ? n : k->held;
	if (limited(owner))
		k->others -= n < k->others ? n : k->others;
	if (u)
		*u -= n < *u ? n : *u;
	pthread_mutex_unlock(&k->lock);
}

/* Sends TEXT to the keeper, with descriptor FD when not -1. Returns 0 or -errno. */
static int send_msg(struct vr_keeper *k, const char *text, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(k->sock, &m, MSG_NOSIGNAL) < 0) {
		int err = errno;

		pthread_mutex_lock(&k->lock);
		bool said = k->warned;

		k->warned = true;
		pthread_mutex_unlock(&k->lock);
		if (!said)
			vr_log(LOG_ERR,
			       "the keeper does not take descriptors: %s; what changes now "
			       "does not outlive the daemon",
			       strerror(err));
		return -err;
	}
	return 0;
}

static int store_fd(struct vr_keeper *k, const char *name, int fd)
{
	char text[320];

	snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
	return send_msg(k, text, fd);
}

void keeper_remove_name(struct vr_keeper *k, const char *name)
{
	char text[320];

	snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	send_msg(k, text, -1);
}

/* Lets go of the first CHUNKS names of ID. */
static void remove_chunks(struct vr_keeper *k, uint64_t id, uint32_t chunks)
{
	char name[64];

	for (uint32_t i = 0; i < chunks; i++) {
		snprintf(name, sizeof(name), CHUNK_NAME, id, i);
		keeper_remove_name(k, name);
	}
}

static void drop(void *ctx, uint64_t id, uint32_t chunks, uid_t owner)
{
	struct vr_keeper *k = ctx;

	remove_chunks(k, id, chunks);
	unaccount(k, owner, chunks);
}

static int store(void *ctx, struct vr_dev_file *dev, uid_t owner, uint64_t *id, uint32_t *chunks,
		 uint64_t **lens)
{
	struct vr_keeper *k = ctx;
	struct vr_dev_export e;
	char name[64];
	uint64_t v = 0;
	int ret = vr_dev_keep(dev, &e);

	if (ret)
		return ret;
	ret = keeper_account(k, owner, e.count, false);
	if (ret) {
		vr_dev_export_clear(&e);
		return ret;
	}
	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = 0;
	for (uint32_t i = 0; i < e.count && ret == 0; i++) {
		snprintf(name, sizeof(name), CHUNK_NAME, v, i);
		ret = store_fd(k, name, e.fds[i]);
		if (ret)
			remove_chunks(k, v, i);
	}
	if (ret)
		unaccount(k, owner, e.count);
	if (ret == 0) {
		*id = v;
		*chunks = e.count;
		*lens = e.lens;
		e.lens = NULL;
	}
	vr_dev_export_clear(&e);
	return ret;
}

static void changed(void *ctx)
{
	struct vr_keeper *k = ctx;

	pthread_mutex_lock(&k->lock);
	k->changes++;
	k->dirty = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
}

/* Writes the tree's record as generation K->gen + 1, then lets the one before go; whether the
 * keeper took it. */
static bool write_record(struct vr_keeper *k)
{
	char *text = NULL, name[64];
	size_t len = 0, off = 0;
	int fd, ret = vr_res_record(k->r, k->gen + 1, &text, &len);

	if (ret) {
		vr_log(LOG_ERR, "the tree's record for the keeper could not be made: %s",
		       strerror(-ret));
		return false;
	}
	fd = memfd_create("vram-residency-record", MFD_CLOEXEC);
	while (fd >= 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n <= 0) {
			close(fd);
			fd = -1;
			break;
		}
		off += (size_t)n;
	}
	free(text);
	if (fd < 0) {
		vr_log(LOG_ERR, "the tree's record for the keeper could not be written: %s",
		       strerror(errno));
		return false;
	}
	snprintf(name, sizeof(name), RECORD_NAME, k->gen + 1);
	ret = store_fd(k, name, fd);
	close(fd);
	if (ret)
		return false;
	if (k->gen) {
		snprintf(name, sizeof(name), RECORD_NAME, k->gen);
		keeper_remove_name(k, name);
	}
	k->gen++;
	pthread_mutex_lock(&k->lock);
	k->warned = false;
	pthread_mutex_unlock(&k->lock);
	return true;
}

/* The longest a change waits to be kept before its answer goes anyway (logged). */
#define SETTLE_S 2

static void settle(void *ctx)
{
	struct vr_keeper *k = ctx;
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SETTLE_S;
	pthread_mutex_lock(&k->lock);
	uint64_t want = k->changes;

	k->urgent = true;
	pthread_cond_signal(&k->wake);
	while (k->kept_changes < want && k->started && !k->stop && ret != ETIMEDOUT)
		ret = pthread_cond_timedwait(&k->settled, &k->lock, &until);
	pthread_mutex_unlock(&k->lock);
	if (ret == ETIMEDOUT)
		vr_log(LOG_WARNING,
		       "a change is answered before the keeper holds it (%d s): a crash "
		       "now could undo it",
		       SETTLE_S);
}

static void *record_thread(void *arg)
{
	struct vr_keeper *k = arg;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->dirty && !k->stop)
			pthread_cond_wait(&k->wake, &k->lock);
		if (!k->dirty)
			break;
		if (!k->stop && !k->urgent) {
			/* what changes meanwhile goes into the same record */
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += COALESCE_NS;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!k->stop && !k->urgent &&
			       pthread_cond_timedwait(&k->wake, &k->lock, &until) != ETIMEDOUT)
				;
		}
		k->dirty = false;
		k->urgent = false;
		uint64_t upto = k->changes; /* the record, made after this, holds them all */

		pthread_mutex_unlock(&k->lock);
		bool kept = write_record(k);

		pthread_mutex_lock(&k->lock);
		if (kept && upto > k->kept_changes)
			k->kept_changes = upto;
		pthread_cond_broadcast(&k->settled);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* A datagram socket connected to NOTIFY_SOCKET; -1 having said why. */
static int connect_notify(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd;

	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(a.sun_path)) {
		vr_log(LOG_ERR, "NOTIFY_SOCKET=%s is not a socket's path", path);
		return -1;
	}
	memcpy(a.sun_path, path, len);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a,
			       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0) {
		vr_log(LOG_ERR, "cannot reach the keeper at NOTIFY_SOCKET=%s: %s", path,
		       strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int vr_keeper_open(const char *mode, struct vr_backend *b, bool secret_given,
		   struct vr_keeper **out)
{
	const char *notify = getenv("NOTIFY_SOCKET"), *fdstore = getenv("FDSTORE");
	bool on = mode && strcmp(mode, "on") == 0;
	struct vr_keeper *k;

	*out = NULL;
	if (mode && strcmp(mode, "off") == 0)
		return 0;
	if (!notify || (!on && (!fdstore || atol(fdstore) <= 0))) {
		if (on) {
			vr_log(LOG_ERR, "keep=on: no keeper (NOTIFY_SOCKET is not set: run under "
					"vram-keeper or systemd); nothing mounted");
			return -1;
		}
		vr_log(LOG_INFO,
		       "no keeper of device memory (%s): a restart of the daemon loses "
		       "what is resident",
		       notify ? "the service manager keeps no descriptors: no FDSTORE=, no keep=on"
			      : "NOTIFY_SOCKET is not set");
		return 0;
	}
	if (!vr_backend_can_keep(b) || !secret_given) {
		vr_log(on ? LOG_ERR : LOG_WARNING,
		       "%s; a restart of the daemon loses what is resident%s",
		       !secret_given ? "keeping device memory across restarts needs secret=: an "
				       "ephemeral secret could not check the record after one"
				     : "this backend cannot hand its memory to a keeper yet",
		       on ? "; nothing mounted (keep=on)" : "");
		return on ? -1 : 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	k->sock = connect_notify(notify);
	if (k->sock < 0) {
		free(k);
		return -1;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->wake, NULL);
	pthread_cond_init(&k->settled, NULL);
	k->backend = b;
	/* FDSTORE= bounds the store: some of it for the records */
	k->cap = fdstore && atol(fdstore) > 16 && atol(fdstore) - 8 < KEEP_MAX
		     ? (unsigned)(atol(fdstore) - 8)
		     : KEEP_MAX;
	k->hooks = (struct vr_res_keeper){
	    .ctx = k, .store = store, .drop = drop, .changed = changed, .settle = settle};
	vr_log(LOG_NOTICE, "device memory is kept across restarts by the keeper at %s (%s)", notify,
	       fdstore && atol(fdstore) > 0 ? "FDSTORE= says it holds descriptors" : "keep=on");
	*out = k;
	return 0;
}

const struct vr_res_keeper *vr_keeper_hooks(struct vr_keeper *k)
{
	return k ? &k->hooks : NULL;
}

int vr_keeper_start(struct vr_keeper *k)
{
	int ret = pthread_create(&k->thread, NULL, record_thread, k);

	k->started = ret == 0;
	if (ret == 0 && k->dirty)
		changed(k);
	return -ret;
}

void vr_keeper_stop(struct vr_keeper *k, struct vr_residency *r, bool keep)
{
	char name[64];

	if (!k)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->lock);
		k->stop = true;
		pthread_cond_signal(&k->wake);
		pthread_cond_broadcast(&k->settled);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL); /* it writes what changed last before it ends */
		k->started = false;
	}
	if (keep) {
		vr_res_keep_at_stop(r);
		vr_log(LOG_NOTICE,
		       "stopping: what is resident stays with the keeper (record "
		       "generation %" PRIu64 ") for the next start",
		       k->gen);
	} else if (k->gen) {
		snprintf(name, sizeof(name), RECORD_NAME, k->gen);
		keeper_remove_name(k, name);
		k->gen = 0;
	}
}

void vr_keeper_free(struct vr_keeper *k)
{
	if (!k)
		return;
	if (k->handed)
		keeper_let_go(k, 0);
	close(k->sock);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->wake);
	pthread_cond_destroy(&k->settled);
	free(k);
}
