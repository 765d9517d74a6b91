/* vram_client.c - libvram-client: the socket protocol's client side (libc only; the GPU half is
 * client_cuda.c). */
#include "vram_client.h"
#include "client_cuda.h"
#include "client_private.h"
#include "vr_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct map_node {
	struct vr_mapping m;
	uint32_t count; /* CUDA: the chunks mapped at PTR, for the unmap */
	uint64_t *lens; /* CUDA */
	struct map_node *next;
};

struct vr_client {
	int fd;
	char mount[PATH_MAX]; /* the mount point, resolved */
	char error[512];
	struct map_node *maps; /* made through this connection, not yet unmapped */
	uint8_t *buf;	       /* one reply */
};

static int fail(struct vr_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c) {
		va_start(ap, fmt);
		vsnprintf(c->error, sizeof(c->error), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *vr_client_error(const struct vr_client *c)
{
	return c ? c->error : "no connection";
}

/* The root of the mount holding PATH (resolved): the highest directory on its device. */
static int mount_root(const char *path, char *out)
{
	char cur[PATH_MAX];
	struct stat st, up;

	if (!realpath(path, cur))
		return -errno;
	if (stat(cur, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		char *slash = strrchr(cur, '/');

		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	for (;;) {
		char parent[PATH_MAX + 3];

		if (strcmp(cur, "/") == 0)
			break;
		snprintf(parent, sizeof(parent), "%s/..", cur);
		if (stat(parent, &up) != 0 || up.st_dev != st.st_dev)
			break;
		char *slash = strrchr(cur, '/');

		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	memcpy(out, cur, strlen(cur) + 1);
	return 0;
}

/* The string value of KEY (quoted, as "\"path\"") at or after FROM in JSON text, unescaped
 * into OUT; -ENOENT where it is missing or not a string (null). */
static int json_string_at(const char *from, const char *key, char *out, size_t cap)
{
	const char *p = from ? strstr(from, key) : NULL;
	size_t n = 0;

	if (!p)
		return -ENOENT;
	p += strlen(key);
	while (*p == ' ' || *p == '\t' || *p == ':' || *p == '\n')
		p++;
	if (*p != '"')
		return -ENOENT;
	for (p++; *p && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\') {
			p++;
			ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
			if (!ch || *p == 'u')
				return -EINVAL; /* a path needing \u escapes: not one we bind */
		}
		if (n + 1 >= cap)
			return -ENAMETOOLONG;
		out[n++] = ch;
	}
	if (*p != '"')
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

/* The string value of "path" inside the "socket" object of status JSON TEXT, unescaped. */
static int socket_from_status(const char *text, char *out, size_t cap)
{
	return json_string_at(strstr(text, "\"socket\""), "\"path\"", out, cap);
}

/*
 * Whether the daemon at the other end of FD may serve MOUNT: it runs as root or as the
 * mount's owner (its root directory's), as SO_PEERCRED says. A socket path taken from a
 * status file others could have placed, or a socket someone else bound, is not trusted with
 * the bytes a process will run on. Returns 0, -EPERM or -errno.
 */
static int server_trusted(int fd, const char *mount)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || stat(mount, &st) != 0)
		return -errno;
	return cr.uid == 0 || cr.uid == st.st_uid ? 0 : -EPERM;
}

int vr_client_connect_socket(const char *socket_path, const char *mount, struct vr_client **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct vr_client *c;

	if (strlen(socket_path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->buf = malloc(VR_PROTO_REPLY_MAX);
	if (!c->buf || !realpath(mount, c->mount)) {
		int e = c->buf ? -errno : -ENOMEM;

		free(c->buf);
		free(c);
		return e;
	}
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	int e = c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0
		    ? -errno
		    : server_trusted(c->fd, c->mount);

	if (e) {
		if (c->fd >= 0)
			close(c->fd);
		free(c->buf);
		free(c);
		return e;
	}
	*out = c;
	return 0;
}

int vr_client_connect(const char *mount_path, struct vr_client **out)
{
	char root[PATH_MAX], status[PATH_MAX + 8], sock[PATH_MAX];
	char *text = malloc(1 << 16);
	ssize_t n = -1;
	int fd, ret;

	if (!text)
		return -ENOMEM;
	ret = mount_root(mount_path, root);
	if (ret == 0) {
		snprintf(status, sizeof(status), "%s/status", strcmp(root, "/") ? root : "");
		fd = open(status, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			ret = errno == ENOENT ? -ENOENT : -errno;
		else {
			n = read(fd, text, (1 << 16) - 1);
			ret = n < 0 ? -errno : 0;
			close(fd);
		}
	}
	if (ret == 0) {
		text[n] = '\0';
		ret = socket_from_status(text, sock, sizeof(sock));
	}
	free(text);
	if (ret)
		return ret;
	return vr_client_connect_socket(sock, root, out);
}

/* Sends a request; FD (or -1) travels with it. Returns 0 or -errno. */
static int request(struct vr_client *c, uint16_t op, uint32_t flags, uint32_t lease, uint32_t mode,
		   const char *path, int fd)
{
	struct vr_proto_req q = {VR_PROTO_MAGIC, VR_PROTO_VERSION, op, flags, lease, mode, 0};
	struct iovec iov[2] = {{&q, sizeof(q)}, {(void *)path, path ? strlen(path) : 0}};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = path ? 2 : 1};

	q.len = (uint32_t)iov[1].iov_len;
	if (q.len > VR_PROTO_PATH_MAX)
		return fail(c, -ENAMETOOLONG, "path longer than %u bytes", VR_PROTO_PATH_MAX);
	if (fd >= 0) {
		struct cmsghdr *h;

		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	if (sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0) {
		/* the daemon stopped (or the mount ended): mappings made stay readable */
		if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
			return fail(c, -ECONNRESET,
				    "the daemon closed the connection (it stopped or restarted, or "
				    "the mount ended): connect again to map or check; mappings "
				    "already made keep their bytes");
		return fail(c, -errno, "sending to the daemon: %s", strerror(errno));
	}
	return 0;
}

/*
 * Receives one message into c->buf, its descriptors appended to FDS (room
 * for CAP, *NFDS so far; extras are closed). Returns its length or -errno.
 */
static ssize_t receive(struct vr_client *c, int *fds, uint32_t cap, uint32_t *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VR_PROTO_FDS_PER_MSG)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {c->buf, VR_PROTO_REPLY_MAX};
	struct msghdr m = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = ctl.buf,
			   .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;

	do
		n = recvmsg(c->fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(c, -errno, "receiving from the daemon: %s", strerror(errno));
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		/* every descriptor that came is kept or closed (the data need not be aligned) */
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (fds && *nfds < cap)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return fail(c, -ECONNRESET,
			    "the daemon closed the connection (it stopped or restarted): connect "
			    "again to map or check; mappings already made keep their bytes");
	if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return fail(c, -EPROTO, "a reply did not fit");
	return n;
}

/* Receives the reply to OP: header checked, status turned into the return with its text. */
static int reply(struct vr_client *c, uint16_t op, struct vr_proto_reply *r, int *fds, uint32_t cap,
		 uint32_t *nfds)
{
	ssize_t n = receive(c, fds, cap, nfds);

	if (n < 0)
		return (int)n;
	if ((size_t)n < sizeof(*r))
		return fail(c, -EPROTO, "a short reply");
	memcpy(r, c->buf, sizeof(*r));
	if (r->magic != VR_PROTO_MAGIC || r->version != VR_PROTO_VERSION ||
	    (uint64_t)r->seal_len + r->msg_len + sizeof(uint64_t) * (uint64_t)r->count +
		    sizeof(*r) !=
		(uint64_t)n)
		return fail(c, -EPROTO, "a malformed reply");
	if (r->status != 0) {
		const char *msg = (const char *)c->buf + n - r->msg_len;

		fail(c, r->status, "%.*s", (int)r->msg_len, msg);
		return r->status < 0 ? r->status : -EPROTO;
	}
	if (r->op != op)
		return fail(c, -EPROTO, "a reply to another request");
	return 0;
}

/* PATH relative to C's mount, symbolic links resolved; written into OUT. */
static int relative(struct vr_client *c, const char *path, char *out)
{
	char full[PATH_MAX * 2 + 2], real[PATH_MAX];
	size_t ml = strlen(c->mount);

	if (path[0] == '/')
		snprintf(full, sizeof(full), "%s", path);
	else
		snprintf(full, sizeof(full), "%s/%s", c->mount, path);
	if (!realpath(full, real))
		return fail(c, -errno, "%s", strerror(errno));
	if (strcmp(real, c->mount) == 0) {
		out[0] = '\0'; /* the mount point itself */
		return 0;
	}
	if (strcmp(c->mount, "/") == 0)
		ml = 0;
	if (strncmp(real, c->mount, ml) != 0 || real[ml] != '/')
		return fail(c, -EXDEV, "not on the mount %s", c->mount);
	memcpy(out, real + ml + 1, strlen(real + ml + 1) + 1);
	return 0;
}

/* Maps COUNT host descriptors end to end, read-only; returns the base or NULL (errno). */
static void *map_host(const int *fds, const uint64_t *lens, uint32_t count, uint64_t total)
{
	uint8_t *base =
	    mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t off = 0;

	if (base == MAP_FAILED)
		return NULL;
	for (uint32_t i = 0; i < count; off += lens[i++])
		if (mmap(base + off, lens[i], PROT_READ, MAP_SHARED | MAP_FIXED, fds[i], 0) ==
		    MAP_FAILED) {
			int e = errno;

			munmap(base, total);
			errno = e;
			return NULL;
		}
	return base;
}

/* The 16 bytes of the GPU UUID ("GPU-xxxxxxxx-xxxx-...") named in SEAL's device; 0 or -EINVAL. */
static int seal_uuid(const char *seal, unsigned char out[16])
{
	const char *p = strstr(seal, "\"uuid\"");
	int n = 0;

	if (!p || !(p = strstr(p, "\"GPU-")))
		return -EINVAL;
	for (p += 5; *p && *p != '"' && n < 32; p++) {
		unsigned v;

		if (*p == '-')
			continue;
		if (sscanf(p, "%1x", &v) != 1)
			return -EINVAL;
		out[n / 2] = (unsigned char)(n % 2 ? out[n / 2] | v : v << 4);
		n++;
	}
	return n == 32 ? 0 : -EINVAL;
}

/* Imports COUNT CUDA chunk descriptors read-only end to end; *OUT the device address. */
static int map_cuda(struct vr_client *c, const char *seal, const int *fds, const uint64_t *lens,
		    uint32_t count, uint64_t total, void **out)
{
	unsigned char uuid[16];
	char why[sizeof(c->error)];
	int ret;

	if (seal_uuid(seal, uuid) != 0)
		return fail(c, -EPROTO, "the seal names no GPU");
	ret = client_cuda_map(uuid, fds, lens, count, total, out, why, sizeof(why));
	return ret ? fail(c, ret, "%s", why) : 0;
}

static void unmap_memory(struct map_node *n)
{
	if (!n->m.ptr)
		return;
	if (n->m.kind == VR_CLIENT_CUDA)
		client_cuda_unmap(n->m.ptr, n->lens, n->count, n->m.mapped);
	else
		munmap(n->m.ptr, n->m.mapped);
}

/* Ends lease L on the daemon's side. */
static int end_lease(struct vr_client *c, uint32_t lease)
{
	struct vr_proto_reply r = {0};
	int ret = request(c, VR_OP_UNMAP, 0, lease, 0, NULL, -1);

	return ret ? ret : reply(c, VR_OP_UNMAP, &r, NULL, 0, NULL);
}

/*
 * Receives the descriptors that follow map reply R until it has its COUNT (*NFDS so far,
 * room in FDS for all); 0 or -errno.
 */
static int receive_more(struct vr_client *c, const struct vr_proto_reply *r, int *fds,
			uint32_t *nfds)
{
	while (*nfds < r->count) {
		struct vr_proto_more mo;
		ssize_t n = receive(c, fds, r->count, nfds);

		if (n < 0)
			return (int)n;
		memcpy(&mo, c->buf, n < (ssize_t)sizeof(mo) ? 0 : sizeof(mo));
		if (n < (ssize_t)sizeof(mo) || mo.magic != VR_PROTO_MAGIC || mo.op != VR_OP_MORE)
			return fail(c, -EPROTO, "a malformed reply");
	}
	if (*nfds != r->count)
		return fail(c, -EPROTO, "%u descriptors for %u chunks", *nfds, r->count);
	return 0;
}

/* *TOTAL: the chunks' LENS added up, which must cover the file R names; 0 or -EPROTO. */
static int chunks_total(struct vr_client *c, const struct vr_proto_reply *r, const uint64_t *lens,
			uint64_t *total)
{
	for (uint32_t i = 0; i < r->count; i++)
		*total += lens[i];
	if (*total < r->size)
		return fail(c, -EPROTO, "the chunks do not cover the file");
	return 0;
}

/*
 * Fills NODE from map reply R and maps the file's chunks (FDS, *LENS, TOTAL bytes) into
 * this process, GPU or host memory as R says; a CUDA mapping takes *LENS. 0 or -errno.
 */
static int map_memory(struct vr_client *c, const struct vr_proto_reply *r, struct map_node *node,
		      const int *fds, uint64_t **lens, uint64_t total)
{
	node->m.size = r->size;
	node->m.seal = (const char *)(node + 1);
	node->m.seal_len = r->seal_len;
	node->m.lease = r->lease;
	node->m.kind = r->kind == VR_PROTO_KIND_CUDA ? VR_CLIENT_CUDA : VR_CLIENT_HOST;
	if (r->kind != VR_PROTO_KIND_HOST && r->kind != VR_PROTO_KIND_CUDA)
		return fail(c, -EPROTO, "an unknown kind of memory");
	if (total && r->kind == VR_PROTO_KIND_CUDA) {
		int ret = map_cuda(c, node->m.seal, fds, *lens, r->count, total, &node->m.ptr);

		if (ret)
			return ret;
		node->m.mapped = total;
		node->count = r->count;
		node->lens = *lens;
		*lens = NULL;
	} else if (total) {
		node->m.ptr = map_host(fds, *lens, r->count, total);
		if (!node->m.ptr)
			return fail(c, -errno, "mapping it: %s", strerror(errno));
		node->m.mapped = total;
	}
	return 0;
}

/* Whether the seal the daemon sent (SEAL, NUL-terminated) names REL, the file asked for: a
 * reply with another file's seal (and memory) is refused. Returns 0 or -EPROTO. */
static int seal_names(struct vr_client *c, const char *seal, const char *rel)
{
	char named[PATH_MAX];

	if (json_string_at(seal, "\"path\"", named, sizeof(named)) != 0 || strcmp(named, rel) != 0)
		return fail(c, -EPROTO, "the daemon's seal does not name %s", rel);
	return 0;
}

int vr_client_map(struct vr_client *c, const char *path, unsigned flags, struct vr_mapping **out)
{
	char rel[PATH_MAX];
	struct vr_proto_reply r = {0};
	struct map_node *node = NULL;
	uint32_t nfds = 0;
	int *fds = NULL, ret;
	uint64_t *lens = NULL, total = 0;

	ret = relative(c, path, rel);
	if (ret)
		return ret;
	ret = request(c, VR_OP_MAP, flags & VR_CLIENT_VERIFY ? VR_MAP_VERIFY : 0, 0, 0, rel, -1);
	if (ret)
		return ret;
	/* descriptors come with the reply and, beyond VR_PROTO_FDS_PER_MSG, after it */
	fds = malloc(sizeof(int) * VR_PROTO_FDS_PER_MSG);
	if (!fds)
		return fail(c, -ENOMEM, "out of memory");
	ret = reply(c, VR_OP_MAP, &r, fds, VR_PROTO_FDS_PER_MSG, &nfds);
	if (ret)
		goto out;
	node = calloc(1, sizeof(*node) + r.seal_len + 1);
	lens = malloc(sizeof(uint64_t) * (r.count ? r.count : 1));
	int *more = realloc(fds, sizeof(int) * (r.count > nfds ? r.count : nfds + 1));

	if (more)
		fds = more;
	if (!node || !lens || !more) {
		ret = fail(c, -ENOMEM, "out of memory");
		goto end;
	}
	memcpy(lens, c->buf + sizeof(r), sizeof(uint64_t) * r.count);
	memcpy(node + 1, c->buf + sizeof(r) + sizeof(uint64_t) * r.count, r.seal_len);
	ret = seal_names(c, (const char *)(node + 1), rel);
	if (ret == 0)
		ret = receive_more(c, &r, fds, &nfds);
	if (ret == 0)
		ret = chunks_total(c, &r, lens, &total);
	if (ret == 0)
		ret = map_memory(c, &r, node, fds, &lens, total);
	if (ret == 0) {
		node->next = c->maps;
		c->maps = node;
		*out = &node->m;
		node = NULL;
	}
end:
	if (ret)
		end_lease(c, r.lease);
out:
	for (uint32_t i = 0; i < nfds; i++)
		close(fds[i]); /* a mapping keeps its memory; the descriptors are not needed */
	free(fds);
	free(lens);
	free(node);
	return ret;
}

int vr_client_read(struct vr_client *c, const struct vr_mapping *m, uint64_t off, void *buf,
		   size_t len)
{
	if (off > m->size || len > m->size - off)
		return fail(c, -EINVAL, "outside the file");
	if (len == 0)
		return 0;
	if (m->kind == VR_CLIENT_HOST) {
		memcpy(buf, (const uint8_t *)m->ptr + off, len);
		return 0;
	}
	if (client_cuda_read(buf, m->ptr, off, len) != 0)
		return fail(c, -EIO, "copying from GPU memory failed");
	return 0;
}

int vr_client_verify(struct vr_client *c, struct vr_mapping *m)
{
	struct vr_proto_reply r = {0};
	int ret = request(c, VR_OP_VERIFY, 0, m->lease, 0, NULL, -1);

	return ret ? ret : reply(c, VR_OP_VERIFY, &r, NULL, 0, NULL);
}

int vr_client_unmap(struct vr_client *c, struct vr_mapping *m)
{
	struct map_node **p;

	if (!m)
		return 0;
	for (p = &c->maps; *p && &(*p)->m != m; p = &(*p)->next)
		;
	if (!*p)
		return fail(c, -EINVAL, "not a mapping of this connection");
	struct map_node *node = *p;

	*p = node->next;
	/* unmapped before the lease ends: once it ends the daemon may scrub the memory */
	unmap_memory(node);
	int ret = end_lease(c, m->lease);

	free(node->lens);
	free(node);
	return ret;
}

int vr_client_import(struct vr_client *c, int fd, const char *dest, mode_t mode, uint64_t *loaded)
{
	return vr_client_import_ino(c, fd, dest, mode, loaded, NULL);
}

int vr_client_import_ino(struct vr_client *c, int fd, const char *dest, mode_t mode,
			 uint64_t *loaded, uint64_t *ino)
{
	char full[PATH_MAX * 2 + 2], rel[PATH_MAX * 2 + 2], name[NAME_MAX + 1];
	struct vr_proto_reply r = {0};
	char *slash;
	int ret;

	/* the destination need not exist yet: resolve its directory, keep its name */
	if (dest[0] == '/')
		snprintf(full, sizeof(full), "%s", dest);
	else
		snprintf(full, sizeof(full), "%s/%s", c->mount, dest);
	slash = strrchr(full, '/');
	if (strlen(slash + 1) > NAME_MAX)
		return fail(c, -ENAMETOOLONG, "name too long");
	strcpy(name, slash + 1);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return fail(c, -EINVAL, "name the file to create");
	if (slash == full)
		slash[1] = '\0';
	else
		*slash = '\0';
	ret = relative(c, full, rel);
	if (ret)
		return ret;
	size_t rl = strlen(rel);

	snprintf(rel + rl, sizeof(rel) - rl, "%s%s", rl ? "/" : "", name);
	ret = request(c, VR_OP_IMPORT, 0, 0, (uint32_t)mode, rel, fd);
	if (ret)
		return ret;
	ret = reply(c, VR_OP_IMPORT, &r, NULL, 0, NULL);
	if (ret == 0 && loaded)
		*loaded = r.size;
	/* on failure too: a file refused at sealing stays, and this is it (0: none) */
	if (ino && r.magic == VR_PROTO_MAGIC && r.op == VR_OP_IMPORT)
		*ino = (uint64_t)r.kind << 32 | r.lease;
	return ret;
}

/* A request on PATH that answers a count: OP with FLAGS; *COUNT (may be NULL) gets it. */
static int path_request(struct vr_client *c, uint16_t op, uint32_t flags, const char *path,
			unsigned *count)
{
	char rel[PATH_MAX * 2 + 2];
	struct vr_proto_reply r = {0};
	int ret = relative(c, path, rel);

	if (ret == 0)
		ret = request(c, op, flags, 0, 0, rel, -1);
	if (ret == 0)
		ret = reply(c, op, &r, NULL, 0, NULL);
	if (ret == 0) {
		/* what was left, and why: the reply's text, after the header (no chunks, no seal)
		 */
		fail(c, 0, "%.*s", (int)r.msg_len, (const char *)c->buf + sizeof(r));
		if (count)
			*count = (unsigned)r.size;
	}
	return ret;
}

int vr_client_revoke(struct vr_client *c, const char *path, unsigned *ended)
{
	return path_request(c, VR_OP_REVOKE, 0, path, ended);
}

int vr_client_evict(struct vr_client *c, const char *path, int restore, unsigned *moved)
{
	return path_request(c, VR_OP_EVICT, restore ? VR_EVICT_RESTORE : 0, path, moved);
}

void vr_client_close(struct vr_client *c)
{
	if (!c)
		return;
	while (c->maps) {
		struct map_node *n = c->maps;

		c->maps = n->next;
		unmap_memory(n);
		free(n->lens);
		free(n);
	}
	close(c->fd); /* the daemon ends the leases with the connection */
	free(c->buf);
	free(c);
}
