/* import.c - the socket's import: a client's descriptor read into a new file of the tree, which
 * seals it as a cp would, with the reading and the loading overlapped. */
#include "server_private.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A source's read of 0 bytes (its end: 0) or -errno at OFF (WHY says so: -errno). */
static int read_ended(ssize_t n, uint64_t off, char *why, size_t cap)
{
	if (n < 0)
		snprintf(why, cap, "reading the source failed at byte %llu: %s",
			 (unsigned long long)off, strerror((int)-n));
	return (int)n;
}

/* A piece's load at OFF that answered RET: 0, or RET with WHY saying so. */
static int piece_loaded(int ret, uint64_t off, char *why, size_t cap)
{
	if (ret)
		snprintf(why, cap, "loading failed at byte %llu: %s", (unsigned long long)off,
			 strerror(-ret));
	return ret;
}

/* Whether the client at the other end of connection FD hung up (it was killed, say). */
static bool client_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/*
 * Reads up to CAP bytes of SRC at OFF into BUF, as many as it has (a
 * pipe-like short read is read on); returns the count (0 at the end) or
 * -errno. A source the client opened with O_DIRECT is read so (BUF and OFF
 * are page-aligned, as a stage's slots are) until a read it refuses (EINVAL:
 * a filesystem without it, or the unaligned offset after a short read), which
 * turns it off for the rest (*DIRECT false) and is read again as usual.
 */
static ssize_t read_full(int src, void *buf, size_t cap, uint64_t off, bool *direct)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = pread(src, (uint8_t *)buf + got, cap - got, (off_t)(off + got));

		if (n < 0 && errno == EINVAL && *direct) {
			int fl = fcntl(src, F_GETFL);

			*direct = false;
			if (fl >= 0 && fcntl(src, F_SETFL, fl & ~O_DIRECT) == 0)
				continue;
			errno = EINVAL;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * Loads what SRC reads into H through staging S the device lent: each piece
 * read straight into a slot, hashed there on the hash thread and uploaded
 * from there while the next slot fills, so the CPU copies each byte once.
 * Returns 0 or -errno with WHY; *LOADED gets the bytes. A client that hangs
 * up (connection CONN_FD) cancels it: nobody is left to see the result, and
 * a tree's load would otherwise be half kept. The stage is given back (its
 * uploads waited for: one that failed fails the load) before this returns.
 */
static int load_staged(struct vr_residency *r, struct vr_handle *h, struct vr_res_stage *s, int src,
		       int conn_fd, const struct vr_caller *who, uint64_t *loaded, char *why,
		       size_t cap)
{
	int fl = fcntl(src, F_GETFL);
	bool direct = fl >= 0 && (fl & O_DIRECT);
	uint64_t off = 0;
	int ret = 0;

	for (;;) {
		void *buf;
		size_t room;

		if (client_gone(conn_fd)) {
			ret = -ECONNABORTED;
			snprintf(why, cap, "the client went away at byte %llu: cancelled",
				 (unsigned long long)off);
			break;
		}
		ret = vr_res_stage_buf(r, h, s, &buf, &room, who);
		if (ret) {
			snprintf(why, cap, "loading failed before byte %llu: %s",
				 (unsigned long long)off, strerror(-ret));
			break;
		}
		ssize_t n = read_full(src, buf, room, off, &direct);

		if (n <= 0) {
			ret = read_ended(n, off, why, cap);
			break;
		}
		ret =
		    piece_loaded(vr_res_write_staged(r, h, s, (size_t)n, off, who), off, why, cap);
		if (ret)
			break;
		off += (uint64_t)n;
	}
	int e = vr_res_stage_close(r, h, s, who);

	if (e && !ret) {
		ret = e;
		snprintf(why, cap, "loading failed: an upload: %s", strerror(-ret));
	}
	*loaded = off;
	return ret;
}

/* Loads SRC into H through staging the device lends for it (its pinned slots on a GPU, host
 * memory on the mock). Returns as load_staged. */
static int load_file(struct vr_residency *r, struct vr_handle *h, int src, int conn_fd,
		     const struct vr_caller *who, uint64_t *loaded, char *why, size_t cap)
{
	struct vr_res_stage *s;
	int ret = vr_res_stage_open(r, h, who, &s);

	if (ret) {
		snprintf(why, cap, "no staging for it: %s", strerror(-ret));
		return ret;
	}
	return load_staged(r, h, s, src, conn_fd, who, loaded, why, cap);
}

/*
 * Ends the import of PATH through H after its load returned RET (LOADED
 * bytes): a failed one is removed (as a writer killed mid-load: never
 * sealed); a good one sealed by the close, as cp's close does. Success means
 * sealed; a file refused at sealing stays, as cp's does, and *INO tells the
 * client which inode it is, to undo its own load. Returns 0 or -errno (WHY).
 */
static int settle(struct vr_residency *r, struct vr_handle *h, const char *path,
		  struct vr_caller *who, int ret, uint64_t loaded, uint64_t *ino, char *why,
		  size_t cap)
{
	if (ret) {
		who->abandoned = true;
		vr_res_flush(r, h, who);
		vr_res_release(r, h);
		int gone = vr_res_unlink(r, path, who);

		/* ENOENT: removed meanwhile (by its owner, say), nothing of it left */
		if (gone != 0 && gone != -ENOENT)
			vr_log(LOG_WARNING, "import of %s failed and the partial file stays (%s)",
			       path, strerror(-gone));
		return ret;
	}
	/* nothing read (an empty source) is still a load: the close then seals it */
	if (loaded == 0)
		ret = vr_res_write(r, h, "", 0, 0, who);
	if (ret == 0)
		ret = vr_res_flush(r, h, who);
	if (!vr_res_handle_sealed(r, h, ino) && ret == 0)
		ret = -EIO;
	vr_res_release(r, h);
	if (ret)
		snprintf(why, cap, "not sealed: %s (see verify and the log)", strerror(-ret));
	return ret;
}

/*
 * Loads what descriptor SRC reads into PATH as cp would through the mount:
 * the same create (or replacement), writes, and seal at the close, so the
 * same checks, seal and audit records follow. A read error leaves nothing:
 * the partial file is removed. Returns 0 or -errno; *LOADED gets the bytes.
 */
static int import_file(struct conn *c, int src, const char *path, mode_t mode, uint64_t *loaded,
		       uint64_t *ino, char *why, size_t cap)
{
	struct vr_residency *r = c->srv->cfg.res;
	struct vr_caller who = {
	    .uid = c->peer.uid, .gid = c->peer.gid, .pid = c->peer.pid, .tgid = c->peer.pid};
	struct vr_handle *h = NULL;
	struct stat st;
	int ret, fl = fcntl(src, F_GETFL);

	*why = '\0';
	if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY || fstat(src, &st) != 0 ||
	    !S_ISREG(st.st_mode)) {
		snprintf(why, cap, "%s", "the descriptor must be a regular file open for reading");
		return -EBADF;
	}
	posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
	/* checked and created (or replaced) in one hold: no window to swap the name */
	ret = vr_res_import_open(r, path, mode & 07777, &c->peer, &who, &h);
	if (ret) {
		snprintf(why, cap, "%s: %s",
			 ret == -EACCES || ret == -EPERM ? "the caller may not create or replace it"
							 : "cannot open it for loading",
			 strerror(-ret));
		return ret;
	}
	/* the device memory for all of it taken before a byte moves: one that does not fit
	 * fails now, not after most of it was copied */
	if (st.st_size > 0) {
		ret = vr_res_fallocate(r, h, VR_FALLOC_KEEP_SIZE, 0, (uint64_t)st.st_size, &who);
		if (ret)
			snprintf(why, cap, "no room for its %llu bytes: %s",
				 (unsigned long long)st.st_size, strerror(-ret));
	}
	if (ret == 0)
		ret = load_file(r, h, src, c->fd, &who, loaded, why, cap);
	/* fewer bytes than the source had when it was opened: cut while it was read (a file
	 * that grows is read to its end, as cp reads it) */
	if (ret == 0 && *loaded < (uint64_t)st.st_size) {
		ret = -EIO;
		snprintf(why, cap,
			 "the source shrank while it was read (%llu of %llu bytes): not sealed",
			 (unsigned long long)*loaded, (unsigned long long)st.st_size);
	}
	/* gone once every byte was read (killed while the last pieces loaded): nobody is left to
	 * keep or undo what it loaded, so it is not sealed, as a hang-up midway */
	if (ret == 0 && client_gone(c->fd)) {
		ret = -ECONNABORTED;
		snprintf(why, cap, "the client went away before the seal: cancelled");
	}
	return settle(r, h, path, &who, ret, *loaded, ino, why, cap);
}

int srv_import(struct conn *c, const struct vr_proto_req *q, const char *path, int src)
{
	char why[256];
	uint64_t loaded = 0, ino = 0;
	int ret;

	if (src < 0)
		return srv_reply_status(c, VR_OP_IMPORT, -EBADF, "import needs one descriptor", 0);
	ret = import_file(c, src, path, (mode_t)q->mode, &loaded, &ino, why, sizeof(why));
	if (ret)
		vr_log(LOG_INFO, "import of %s for pid %d (uid %u) failed: %s", path,
		       (int)c->peer.pid, (unsigned)c->peer.uid, why);
	/* with the new file's inode number (0: none stays): a client undoing its load
	 * removes only that file */
	return srv_reply_import(c, ret, ret ? why : NULL, loaded, ino);
}
