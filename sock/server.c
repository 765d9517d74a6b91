/* server.c - the daemon's unix socket: one thread per connection, leases held by connections;
 * map, verify and unmap (import is in import.c). */
#include "server.h"
#include "server_private.h"

#include "log.h"
#include "name.h"
#include "safe.h"
#include "vr_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Sends the reply R with PAYLOAD and descriptors FDS (in batches). Returns 0 or -errno. */
static int send_reply(int fd, struct vr_proto_reply *r, const void *payload, size_t plen,
		      const int *fds, uint32_t nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VR_PROTO_FDS_PER_MSG)];
		struct cmsghdr align;
	} ctl;
	struct vr_proto_more more = {VR_PROTO_MAGIC, VR_PROTO_VERSION, VR_OP_MORE, 0};
	struct iovec iov[2] = {{r, sizeof(*r)}, {(void *)payload, plen}};
	uint32_t sent = 0;
	bool first = true;

	r->magic = VR_PROTO_MAGIC;
	r->version = VR_PROTO_VERSION;
	do {
		uint32_t n =
		    nfds - sent < VR_PROTO_FDS_PER_MSG ? nfds - sent : VR_PROTO_FDS_PER_MSG;
		struct msghdr m = {0};

		if (first) {
			m.msg_iov = iov;
			m.msg_iovlen = plen ? 2 : 1;
		} else {
			more.count = n;
			iov[0] = (struct iovec){&more, sizeof(more)};
			m.msg_iov = iov;
			m.msg_iovlen = 1;
		}
		if (n) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			m.msg_control = ctl.buf;
			m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
			c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * n);
			memcpy(CMSG_DATA(c), fds + sent, sizeof(int) * n);
		}
		if (sendmsg(fd, &m, MSG_NOSIGNAL) < 0)
			return -errno;
		sent += n;
		first = false;
	} while (sent < nfds);
	return 0;
}

/* Replies with STATUS and, on failure, the text WHY. */
int srv_reply_status(struct conn *c, uint16_t op, int status, const char *why, uint64_t size)
{
	struct vr_proto_reply r = {.op = op, .status = status, .size = size};
	size_t len = why ? strlen(why) : 0;

	r.msg_len = (uint32_t)len;
	return send_reply(c->fd, &r, why, len, NULL, 0);
}

int srv_reply_import(struct conn *c, int status, const char *why, uint64_t loaded, uint64_t ino)
{
	struct vr_proto_reply r = {.op = VR_OP_IMPORT,
				   .status = status,
				   .size = loaded,
				   .lease = (uint32_t)ino,
				   .kind = (uint32_t)(ino >> 32)};
	size_t len = why ? strlen(why) : 0;

	r.msg_len = (uint32_t)len;
	return send_reply(c->fd, &r, why, len, NULL, 0);
}

const char *srv_errno_why(int err, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", strerror(-err));
	return buf;
}

/*
 * Whether C may take one more lease: at most MAX_LEASES_PER_CONN live on the
 * connection, and, for a user other than root, MAX_LEASES_PER_UID over all of
 * theirs (a lease pins a file against rm and replacement, and costs the
 * daemon memory). Returns 0, or -EAGAIN with WHY (logged).
 */
static int lease_room(struct conn *c, char *why, size_t cap)
{
	struct vr_server *s = c->srv;
	uint32_t mine = 0;

	why[0] = '\0';
	if (c->live >= MAX_LEASES_PER_CONN) {
		snprintf(why, cap, "this connection holds %u leases already (the limit)",
			 MAX_LEASES_PER_CONN);
	} else if (c->peer.uid != 0) {
		pthread_mutex_lock(&s->lock);
		for (const struct conn *o = s->conns; o; o = o->next)
			if (o->peer.uid == c->peer.uid)
				mine += o->live;
		pthread_mutex_unlock(&s->lock);
		if (mine >= MAX_LEASES_PER_UID)
			snprintf(why, cap, "this user holds %u leases already (the limit)",
				 MAX_LEASES_PER_UID);
	}
	if (!why[0])
		return 0;
	vr_log(LOG_INFO, "socket: a map by pid %d (uid %u) refused: %s", (int)c->peer.pid,
	       (unsigned)c->peer.uid, why);
	return -EAGAIN;
}

static int do_map(struct conn *c, const struct vr_proto_req *q, const char *path)
{
	struct vr_dev_export exp = {0};
	struct vr_lease *l = NULL;
	char why[128];
	int ret = lease_room(c, why, sizeof(why));

	if (ret == 0)
		ret = vr_res_lease(c->srv->cfg.res, path, &c->peer, q->flags & VR_MAP_VERIFY, &l,
				   &exp);
	if (ret)
		return srv_reply_status(
		    c, VR_OP_MAP, ret,
		    ret == -EAGAIN && why[0] ? why : srv_errno_why(ret, why, sizeof(why)), 0);
	/* the number of a lease that ended is taken again: the table never outgrows what a
	 * connection holds at once */
	uint32_t slot = 0;

	while (slot < c->nleases && c->leases[slot])
		slot++;
	/* an array of pointers: its element is rightly a pointer's size */
	// NOLINTBEGIN(bugprone-sizeof-expression)
	struct vr_lease **n =
	    slot < c->nleases ? c->leases : realloc(c->leases, sizeof(*n) * (c->nleases + 1));
	// NOLINTEND(bugprone-sizeof-expression)
	size_t seal_len, plen;
	const char *seal = vr_lease_seal(l, &seal_len);
	uint8_t *payload;

	plen = sizeof(uint64_t) * exp.count + seal_len;
	payload =
	    n && plen <= VR_PROTO_REPLY_MAX - sizeof(struct vr_proto_reply) ? malloc(plen) : NULL;
	if (n)
		c->leases = n;
	if (!payload) {
		vr_dev_export_clear(&exp);
		vr_res_lease_end(c->srv->cfg.res, l);
		return srv_reply_status(c, VR_OP_MAP, -ENOMEM, "out of memory, or too many chunks",
					0);
	}
	c->leases[slot] = l;
	c->live++;
	if (slot == c->nleases)
		c->nleases++;
	memcpy(payload, exp.lens, sizeof(uint64_t) * exp.count);
	memcpy(payload + sizeof(uint64_t) * exp.count, seal, seal_len);
	struct vr_proto_reply r = {.op = VR_OP_MAP,
				   .lease = slot + 1,
				   .kind = exp.kind == VR_EXPORT_CUDA_FD ? VR_PROTO_KIND_CUDA
									 : VR_PROTO_KIND_HOST,
				   .count = exp.count,
				   .size = vr_lease_size(l),
				   .seal_len = (uint32_t)seal_len};

	ret = send_reply(c->fd, &r, payload, plen, exp.fds, exp.count);
	free(payload);
	vr_dev_export_clear(&exp); /* the receiver has its own now */
	return ret;
}

/* The live lease numbered Q->lease, or NULL. */
static struct vr_lease *lease_of(struct conn *c, const struct vr_proto_req *q)
{
	return q->lease >= 1 && q->lease <= c->nleases ? c->leases[q->lease - 1] : NULL;
}

static int do_verify(struct conn *c, const struct vr_proto_req *q)
{
	struct vr_lease *l = lease_of(c, q);
	char why[256] = "";
	int ret;

	if (!l)
		return srv_reply_status(c, VR_OP_VERIFY, -EBADF, "no such lease on this connection",
					0);
	ret = vr_res_lease_verify(c->srv->cfg.res, l, why, sizeof(why));
	return srv_reply_status(c, VR_OP_VERIFY, ret, ret ? why : NULL, 0);
}

static int do_unmap(struct conn *c, const struct vr_proto_req *q)
{
	struct vr_lease *l = lease_of(c, q);
	char why[256] = "";
	int ret;

	if (!l)
		return srv_reply_status(c, VR_OP_UNMAP, -EBADF, "no such lease on this connection",
					0);
	c->leases[q->lease - 1] = NULL;
	c->live--;
	/* ended either way; a revoked one says so (ESTALE) */
	ret = vr_res_lease_release(c->srv->cfg.res, l, false, why, sizeof(why));
	return srv_reply_status(c, VR_OP_UNMAP, ret, ret ? why : NULL, 0);
}

static int do_revoke(struct conn *c, const char *path)
{
	char why[128];
	unsigned ended = 0;
	int ret = vr_res_revoke(c->srv->cfg.res, path, &c->peer, &ended);

	return srv_reply_status(c, VR_OP_REVOKE, ret,
				ret ? srv_errno_why(ret, why, sizeof(why)) : NULL, ended);
}

static int do_evict(struct conn *c, const struct vr_proto_req *q, const char *path)
{
	char why[256];
	unsigned moved = 0;
	int ret = vr_res_evict(c->srv->cfg.res, path, &c->peer, q->flags & VR_EVICT_RESTORE, &moved,
			       why, sizeof(why));

	return srv_reply_status(c, VR_OP_EVICT, ret, why[0] ? why : NULL, moved);
}

/* Receives one request: header, path (NUL-terminated into PATH) and at most one descriptor.
 * Returns 1, 0 at the end of the connection, or -errno. */
static int recv_request(struct conn *c, struct vr_proto_req *q, char *path, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {{q, sizeof(*q)}, {path, VR_PROTO_PATH_MAX}};
	struct msghdr m = {.msg_iov = iov,
			   .msg_iovlen = 2,
			   .msg_control = ctl.buf,
			   .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);

	*fd = -1;
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	if (n == 0)
		return 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
		if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
			size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int fds[4];

			memcpy(fds, CMSG_DATA(h), sizeof(int) * (k < 4 ? k : 4));
			for (size_t i = 0; i < k && i < 4; i++) {
				if (*fd < 0)
					*fd = fds[i];
				else
					close(fds[i]); /* one is all a request takes */
			}
		}
	if ((size_t)n < sizeof(*q) || (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    q->magic != VR_PROTO_MAGIC || q->len != (size_t)n - sizeof(*q) ||
	    memchr(path, '\0', q->len))
		return -EPROTO;
	path[q->len] = '\0';
	return 1;
}

/*
 * Whether PATH (relative, from a request) is made of names the mount would take: each
 * component passes vr_name_syntax() (UTF-8, no control character, not "." or ".."); empty
 * components (a doubled or trailing '/') are skipped, as the tree's lookup does.
 */
static bool path_ok(const char *path)
{
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");

		if (len && vr_name_syntax(p, len) != 0)
			return false;
		p += len;
		p += strspn(p, "/");
	}
	return true;
}

/* Refuses a request whose path is not valid, logging who sent it but none of its bytes. */
static int refuse_path(struct conn *c, const struct vr_proto_req *q)
{
	vr_log(LOG_INFO,
	       "socket: pid %d (uid %u) sent a path that is not valid (not UTF-8, a control "
	       "character, . or ..): refused, its bytes not logged",
	       (int)c->peer.pid, (unsigned)c->peer.uid);
	return srv_reply_status(c, q->op, -EINVAL,
				"the path is not valid: each name must be UTF-8, without control "
				"characters, and not . or ..",
				0);
}

static void serve(struct conn *c)
{
	char *path = malloc(VR_PROTO_PATH_MAX + 2);
	struct vr_proto_req q = {0};
	int fd, ret;

	if (!path)
		return;
	path[0] = '/';
	while ((ret = recv_request(c, &q, path + 1, &fd)) > 0) {
		if (q.version != VR_PROTO_VERSION)
			ret = srv_reply_status(c, q.op, -EPROTONOSUPPORT,
					       "this daemon speaks protocol version 1", 0);
		else if ((q.op == VR_OP_MAP || q.op == VR_OP_IMPORT || q.op == VR_OP_REVOKE ||
			  q.op == VR_OP_EVICT) &&
			 !path_ok(path + 1))
			ret = refuse_path(c, &q);
		else if (q.op == VR_OP_MAP)
			ret = do_map(c, &q, path);
		else if (q.op == VR_OP_VERIFY)
			ret = do_verify(c, &q);
		else if (q.op == VR_OP_UNMAP)
			ret = do_unmap(c, &q);
		else if (q.op == VR_OP_IMPORT)
			ret = srv_import(c, &q, path, fd);
		else if (q.op == VR_OP_REVOKE)
			ret = do_revoke(c, path);
		else if (q.op == VR_OP_EVICT)
			ret = do_evict(c, &q, path);
		else
			ret = srv_reply_status(c, q.op, -EOPNOTSUPP, "unknown operation", 0);
		if (fd >= 0)
			close(fd);
		if (ret)
			break;
	}
	if (ret == -EPROTO) {
		vr_log(LOG_INFO, "socket: pid %d (uid %u) sent a malformed request: disconnected",
		       (int)c->peer.pid, (unsigned)c->peer.uid);
		srv_reply_status(c, 0, -EPROTO, "malformed request", 0);
	}
	free(path);
}

/* Whether C's peer may use the socket at all, as the mount would let it in. */
static bool admitted(struct conn *c)
{
	return c->srv->cfg.allow_other || c->peer.uid == 0 || c->peer.uid == geteuid();
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct vr_server *s = c->srv;

	if (admitted(c))
		serve(c);
	else
		srv_reply_status(
		    c, 0, -EACCES,
		    "this mount is not allow_other: only its owner and root may use it", 0);
	/* a connection's end, however it came (exit, kill, close), ends its leases; at the
	 * daemon's stop their memory is left to the lessees, unscrubbed */
	char why[256];

	pthread_mutex_lock(&s->lock);
	bool stopping = s->stopping;

	pthread_mutex_unlock(&s->lock);
	for (uint32_t i = 0; i < c->nleases; i++) /* NULL (ended) is fine */
		vr_res_lease_release(s->cfg.res, c->leases[i], stopping, why, sizeof(why));
	free(c->leases);
	close(c->fd);
	pthread_mutex_lock(&s->lock);
	for (struct conn **p = &s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	s->nconns--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	free(c);
	return NULL;
}

/* Fills C's peer from the socket; returns 0 or -errno. */
static int identify(struct conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return -errno;
	c->peer.uid = cred.uid;
	c->peer.gid = cred.gid;
	c->peer.pid = cred.pid;
	len = sizeof(c->groups);
	/* the supplementary groups as they were at connect (Linux 4.13) */
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
		c->peer.ngroups = len / sizeof(gid_t);
	c->peer.groups = c->groups;
	return 0;
}

/* Starts a thread for a new connection FD, within the limits; closes FD on refusal. */
static void admit(struct vr_server *s, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	unsigned mine = 0;
	pthread_attr_t attr;
	pthread_t t;
	bool ok;

	if (!c || (c->fd = fd, c->srv = s, identify(c) != 0)) {
		free(c);
		close(fd);
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (struct conn *o = s->conns; o; o = o->next)
		mine += o->peer.uid == c->peer.uid;
	ok =
	    !s->stopping && s->nconns < MAX_CONNS && (c->peer.uid == 0 || mine < MAX_CONNS_PER_UID);
	if (ok) {
		c->next = s->conns;
		s->conns = c;
		s->nconns++;
	}
	pthread_mutex_unlock(&s->lock);
	if (!ok) {
		vr_log(LOG_WARNING, "socket: connection of pid %d (uid %u) refused: too many",
		       (int)c->peer.pid, (unsigned)c->peer.uid);
		srv_reply_status(c, 0, -EAGAIN, "too many connections", 0);
		close(fd);
		free(c);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		pthread_mutex_lock(&s->lock);
		s->conns = c->next; /* still first: nothing else adds under us */
		s->nconns--;
		pthread_mutex_unlock(&s->lock);
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_thread(void *arg)
{
	struct vr_server *s = arg;
	struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vr_log(LOG_ERR, "socket: poll: %s; no more connections", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			admit(s, fd);
		else if (errno == EMFILE || errno == ENFILE)
			poll(NULL, 0, 100); /* let descriptors free up before the next try */
	}
}

/* Makes PATH free for binding: removes a socket nobody serves; refuses anything else. */
static int clear_path(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		vr_log(LOG_ERR, "socket=%s: a file that is not a socket is there; not replaced",
		       path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	if (ret == 0) {
		vr_log(LOG_ERR,
		       "socket=%s: another daemon is serving it; use socket= to pick another",
		       path);
		return -EADDRINUSE;
	}
	if (unlink(path) != 0)
		return -errno;
	vr_log(LOG_INFO, "socket=%s: a stale socket (nobody answered) was replaced", path);
	return 0;
}

int vr_server_start(const struct vr_server_config *cfg, struct vr_server **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct vr_server *s;
	int ret;

	if (strlen(cfg->path) >= sizeof(a.sun_path)) {
		vr_log(LOG_ERR, "socket=%s: longer than a unix socket's %zu bytes", cfg->path,
		       sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	/* not where another user could take the name first, or swap the socket for theirs */
	ret = vr_folder_private("socket", cfg->path);
	if (ret == 0)
		ret = clear_path(cfg->path);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->path = strdup(cfg->path);
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	if (!s->path || s->listen_fd < 0 || pipe2(s->stop_pipe, O_CLOEXEC) != 0) {
		ret = s->path ? -errno : -ENOMEM;
		goto fail;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", cfg->path);
	/* made with its mode by the umask, not chmod'ed after: a chmod by path would follow a
	 * link swapped into its place meanwhile (start-up runs no other thread that makes files) */
	mode_t old = umask(cfg->allow_other ? 0111 : 0177);

	ret = bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (ret != 0 || listen(s->listen_fd, 64) != 0) {
		ret = -errno;
		vr_log(LOG_ERR, "socket=%s: %s", cfg->path, strerror(errno));
		unlink(cfg->path);
		goto fail;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	ret = -pthread_create(&s->acceptor, NULL, accept_thread, s);
	if (ret) {
		unlink(cfg->path);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->idle);
		goto fail;
	}
	*out = s;
	return 0;

fail:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
	free(s->path);
	free(s);
	return ret ? ret : -EIO;
}

void vr_server_stop(struct vr_server *s)
{
	if (!s)
		return;
	if (write(s->stop_pipe[1], "x", 1) != 1)
		vr_log(LOG_WARNING, "socket: cannot wake the acceptor: %s", strerror(errno));
	pthread_join(s->acceptor, NULL);
	unlink(s->path);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	/* wake every connection's thread; each ends its leases and leaves */
	for (struct conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->nconns)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	close(s->listen_fd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->idle);
	free(s->path);
	free(s);
}
