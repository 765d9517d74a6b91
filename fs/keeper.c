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

#define CHUNK_NAME  "vr-c-%016" PRIx64 "-%" PRIu32 /* a file's chunk: its keep id, its index */
#define RECORD_NAME "vr-r-%" PRIu64		   /* the tree's record, by generation */
#define RECORD_MAX  ((off_t)1 << 30)
#define COALESCE_NS 20000000L /* changes within 20 ms make one record */

/* A descriptor handed over at this start, by name. */
struct handed {
	char *name;
	int fd; /* -1 once taken or closed */
};

struct vr_keeper {
	int sock; /* connected to NOTIFY_SOCKET */
	struct vr_backend *backend;
	struct vr_res_keeper hooks;
	struct vr_residency *r;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards the four below; taken under the tree lock, never above */
	pthread_cond_t wake;
	bool dirty, stop;
	uint64_t gen; /* the generation of the record the keeper holds now (0: none) */
	bool warned;  /* a send failed; said once until one succeeds */
	struct handed *handed;
	size_t nhanded;
};

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

static void remove_name(struct vr_keeper *k, const char *name)
{
	char text[320];

	snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	send_msg(k, text, -1);
}

static void drop(void *ctx, uint64_t id, uint32_t chunks)
{
	struct vr_keeper *k = ctx;
	char name[64];

	for (uint32_t i = 0; i < chunks; i++) {
		snprintf(name, sizeof(name), CHUNK_NAME, id, i);
		remove_name(k, name);
	}
}

static int store(void *ctx, struct vr_dev_file *dev, uint64_t *id, uint32_t *chunks,
		 uint64_t **lens)
{
	struct vr_keeper *k = ctx;
	struct vr_dev_export e;
	char name[64];
	uint64_t v = 0;
	int ret = vr_dev_keep(dev, &e);

	if (ret)
		return ret;
	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = 0;
	for (uint32_t i = 0; i < e.count && ret == 0; i++) {
		snprintf(name, sizeof(name), CHUNK_NAME, v, i);
		ret = store_fd(k, name, e.fds[i]);
		if (ret)
			drop(k, v, i);
	}
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
	k->dirty = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
}

/* Writes the tree's record as generation K->gen + 1, then lets the one before go. */
static void write_record(struct vr_keeper *k)
{
	char *text = NULL, name[64];
	size_t len = 0, off = 0;
	int fd, ret = vr_res_record(k->r, k->gen + 1, &text, &len);

	if (ret) {
		vr_log(LOG_ERR, "the tree's record for the keeper could not be made: %s",
		       strerror(-ret));
		return;
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
		return;
	}
	snprintf(name, sizeof(name), RECORD_NAME, k->gen + 1);
	ret = store_fd(k, name, fd);
	close(fd);
	if (ret)
		return;
	if (k->gen) {
		snprintf(name, sizeof(name), RECORD_NAME, k->gen);
		remove_name(k, name);
	}
	k->gen++;
	pthread_mutex_lock(&k->lock);
	k->warned = false;
	pthread_mutex_unlock(&k->lock);
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
		if (!k->stop) {
			/* what changes meanwhile goes into the same record */
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += COALESCE_NS;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (!k->stop &&
			       pthread_cond_timedwait(&k->wake, &k->lock, &until) != ETIMEDOUT)
				;
		}
		k->dirty = false;
		pthread_mutex_unlock(&k->lock);
		write_record(k);
		pthread_mutex_lock(&k->lock);
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
	k->backend = b;
	k->hooks =
	    (struct vr_res_keeper){.ctx = k, .store = store, .drop = drop, .changed = changed};
	vr_log(LOG_NOTICE, "device memory is kept across restarts by the keeper at %s (%s)", notify,
	       fdstore && atol(fdstore) > 0 ? "FDSTORE= says it holds descriptors" : "keep=on");
	*out = k;
	return 0;
}

const struct vr_res_keeper *vr_keeper_hooks(struct vr_keeper *k)
{
	return k ? &k->hooks : NULL;
}

/* The descriptors this start was handed (LISTEN_FDS, for this process), by name. */
static int take_handed(struct vr_keeper *k)
{
	const char *pid = getenv("LISTEN_PID"), *nfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long n = nfds ? atol(nfds) : 0;
	char *copy, *save = NULL, *tok;

	if (!pid || atol(pid) != (long)getpid() || n <= 0)
		return 0;
	k->handed = calloc((size_t)n, sizeof(*k->handed));
	copy = strdup(names ? names : "");
	if (!k->handed || !copy) {
		free(copy);
		return -ENOMEM;
	}
	tok = strtok_r(copy, ":", &save);
	for (long i = 0; i < n; i++) {
		k->handed[i].fd = (int)(3 + i);
		fcntl(k->handed[i].fd, F_SETFD, FD_CLOEXEC);
		k->handed[i].name = strdup(tok ? tok : "unknown");
		tok = tok ? strtok_r(NULL, ":", &save) : NULL;
	}
	k->nhanded = (size_t)n;
	free(copy);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

static int take_chunk(void *ctx, uint64_t id, uint32_t i)
{
	struct vr_keeper *k = ctx;
	char name[64];

	snprintf(name, sizeof(name), CHUNK_NAME, id, i);
	for (size_t j = 0; j < k->nhanded; j++)
		if (k->handed[j].fd >= 0 && k->handed[j].name &&
		    strcmp(k->handed[j].name, name) == 0) {
			int fd = k->handed[j].fd;

			k->handed[j].fd = -1;
			return fd;
		}
	return -1;
}

/* The newest record handed over (its index), or -1. */
static long newest_record(const struct vr_keeper *k, uint64_t *gen)
{
	long best = -1;

	for (size_t j = 0; j < k->nhanded; j++) {
		unsigned long long g;
		char tail;

		if (k->handed[j].name && sscanf(k->handed[j].name, "vr-r-%llu%c", &g, &tail) == 1 &&
		    (best < 0 || g > *gen)) {
			best = (long)j;
			*gen = g;
		}
	}
	return best;
}

/* The whole of record descriptor FD, malloc'd; NULL having said why. */
static char *read_record(int fd, size_t *len)
{
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > RECORD_MAX) {
		vr_log(LOG_ERR, "restore: the keeper's record is not a record");
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && off < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);

		if (n <= 0) {
			free(buf);
			return NULL;
		}
		off += (size_t)n;
	}
	if (buf)
		buf[off] = '\0';
	*len = off;
	return buf;
}

/*
 * Frees chunk descriptor FD as the backend frees a file's memory (scrubbed; with vram=DIR its
 * file removed), or closes it when the backend does not take it.
 */
static void free_chunk(struct vr_keeper *k, int fd)
{
	int fds[1] = {fd};
	uint64_t lens[1];
	struct stat st;
	struct vr_dev_export e = {.kind = k->backend->ops->host_memory ? VR_EXPORT_HOST_FD
								       : VR_EXPORT_CUDA_FD,
				  .count = 1,
				  .fds = fds,
				  .lens = lens};
	struct vr_dev_file *f;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		close(fd);
		return;
	}
	lens[0] = (uint64_t)st.st_size;
	/* vr_dev_adopt closes what it does not take; e's arrays are not the heap's */
	if (k->backend->ops->adopt &&
	    k->backend->ops->adopt(k->backend->ctx, &e, lens[0], &f) == 0) {
		f->backend = k->backend;
		f->size = lens[0];
		vr_dev_file_free(f);
	}
	if (fds[0] >= 0)
		close(fds[0]);
}

/* Lets go of every handed descriptor not taken, in the keeper's store too (but the record of
 * generation KEEP_GEN, replaced by the next one). */
static void let_go(struct vr_keeper *k, uint64_t keep_gen)
{
	char name[64];
	unsigned n = 0;

	snprintf(name, sizeof(name), RECORD_NAME, keep_gen);
	for (size_t j = 0; j < k->nhanded; j++) {
		if (k->handed[j].fd >= 0) {
			if (!keep_gen || strcmp(k->handed[j].name, name) != 0) {
				remove_name(k, k->handed[j].name);
				n++;
			}
			if (strncmp(k->handed[j].name, "vr-c-", 5) == 0)
				free_chunk(k, k->handed[j].fd);
			else
				close(k->handed[j].fd);
		}
		free(k->handed[j].name);
	}
	free(k->handed);
	k->handed = NULL;
	k->nhanded = 0;
	if (n)
		vr_log(LOG_INFO,
		       "restore: let go of %u descriptors the keeper held that nothing "
		       "names any more",
		       n);
}

/* A record of the daemon's own (this uid and pid). */
static void audit(struct vr_audit *a, const char *event, const char *outcome, const char *detail)
{
	struct vr_audit_rec rec = {
	    .event = event, .uid = getuid(), .pid = getpid(), .outcome = outcome, .detail = detail};

	if (a)
		vr_audit_log(a, &rec);
}

int vr_keeper_restore(struct vr_keeper *k, struct vr_residency *r, struct vr_audit *a)
{
	struct vr_res_restored got;
	char why[256], detail[512];
	uint64_t gen = 0;
	size_t len = 0;
	long at;
	int ret;

	k->r = r;
	ret = take_handed(k);
	if (ret || !k->nhanded)
		return ret;
	at = newest_record(k, &gen);
	char *rec = at >= 0 ? read_record(k->handed[at].fd, &len) : NULL;

	if (!rec) {
		vr_log(LOG_ERR,
		       "restore: the keeper handed %zu descriptors but no record of the "
		       "tree; none is used",
		       k->nhanded);
		let_go(k, 0);
		return 0;
	}
	ret = vr_res_restore(r, rec, len, take_chunk, k, &got, why, sizeof(why));
	free(rec);
	if (ret) {
		vr_log(LOG_ERR,
		       "restore: the keeper's record (generation %" PRIu64 ") is refused: "
		       "%s; nothing is restored, its memory let go",
		       gen, ret == -ENOMEM ? strerror(ENOMEM) : why);
		audit(a, "vram_restore_refused", "failed", ret == -ENOMEM ? strerror(ENOMEM) : why);
		let_go(k, 0);
		return ret == -ENOMEM ? ret : 0;
	}
	snprintf(detail, sizeof(detail),
		 "%u files (%" PRIu64 " bytes) checked on the device against their seals, %u "
		 "folders, %u links; %u quarantined, %u not restored; in %.3f s (record "
		 "generation %" PRIu64 ")",
		 got.files, got.bytes, got.dirs, got.links, got.quarantined, got.refused,
		 got.seconds, gen);
	vr_log(LOG_NOTICE, "restored from the keeper: %s", detail);
	audit(a, "vram_restored", got.quarantined || got.refused ? "failed" : "ok", detail);
	k->gen = gen;
	let_go(k, gen);
	k->dirty = true; /* the record of this start, at once */
	return 0;
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
		remove_name(k, name);
		k->gen = 0;
	}
}

void vr_keeper_free(struct vr_keeper *k)
{
	if (!k)
		return;
	if (k->handed)
		let_go(k, 0);
	close(k->sock);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->wake);
	free(k);
}
