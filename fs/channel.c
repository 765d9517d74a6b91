/* channel.c - the daemon's side of /dev/fuse: what passes is read, an fstat is helped, and
 * directories' names are kept. */
#include "channel.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUCKETS 1024

/* A handle an open returned for an inode (libfuse's node id), while it is open. */
struct open_fh {
	uint64_t nodeid, fh;
	unsigned lent;	/* requests given this handle, not yet answered */
	bool releasing; /* its release arrived: lent to no more requests */
	struct open_fh *next;
};

/* A request whose answer the channel waits to read: an open's (for its handle), or a
 * request it lent a handle to. */
struct pending {
	uint64_t unique, nodeid;
	uint32_t opcode;
	struct open_fh *lent;
	struct pending *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t answered = PTHREAD_COND_INITIALIZER;
static struct open_fh *opens[BUCKETS];
static struct pending *waiting[BUCKETS];
static atomic_uint nwaiting; /* answers skip the lock while nothing waits */

static struct open_fh *live_fh(uint64_t nodeid) /* [lock] */
{
	for (struct open_fh *o = opens[nodeid % BUCKETS]; o; o = o->next)
		if (o->nodeid == nodeid && !o->releasing)
			return o;
	return NULL;
}

/* Waits for the answer to request UNIQUE; false if out of memory (then an open is not
 * remembered, and an fstat after its file's removal reads ESTALE, as without the channel). */
static bool wait_for(uint64_t unique, uint64_t nodeid, uint32_t opcode,
		     struct open_fh *lent) /* [lock] */
{
	struct pending *p = malloc(sizeof(*p));

	if (!p)
		return false;
	p->unique = unique;
	p->nodeid = nodeid;
	p->opcode = opcode;
	p->lent = lent;
	p->next = waiting[unique % BUCKETS];
	waiting[unique % BUCKETS] = p;
	atomic_fetch_add(&nwaiting, 1);
	return true;
}

static struct pending *take_waiting(uint64_t unique) /* [lock] */
{
	for (struct pending **pp = &waiting[unique % BUCKETS]; *pp; pp = &(*pp)->next)
		if ((*pp)->unique == unique) {
			struct pending *p = *pp;

			*pp = p->next;
			atomic_fetch_sub(&nwaiting, 1);
			return p;
		}
	return NULL;
}

static void remember(uint64_t nodeid, uint64_t fh) /* [lock] */
{
	struct open_fh *o = calloc(1, sizeof(*o));

	if (!o)
		return;
	o->nodeid = nodeid;
	o->fh = fh;
	o->next = opens[nodeid % BUCKETS];
	opens[nodeid % BUCKETS] = o;
}

/* A release: its handle is lent no more, and it goes once the requests lent it are answered. */
static void release(uint64_t nodeid, uint64_t fh) /* [lock] */
{
	for (struct open_fh **pp = &opens[nodeid % BUCKETS]; *pp; pp = &(*pp)->next) {
		struct open_fh *o = *pp;

		if (o->nodeid != nodeid || o->fh != fh)
			continue;
		o->releasing = true;
		while (o->lent)
			pthread_cond_wait(&answered, &lock);
		/* the list may have changed while waiting: find it again */
		for (pp = &opens[nodeid % BUCKETS]; *pp != o; pp = &(*pp)->next)
			;
		*pp = o->next;
		free(o);
		return;
	}
}

/* Lends request H a handle open on its inode, if there is one, into *FH; whether it did. */
static bool lend(const struct fuse_in_header *h, uint64_t *fh)
{
	pthread_mutex_lock(&lock);
	struct open_fh *o = live_fh(h->nodeid);
	bool lent = o && wait_for(h->unique, h->nodeid, h->opcode, o);

	if (lent) {
		o->lent++;
		*fh = o->fh;
	}
	pthread_mutex_unlock(&lock);
	return lent;
}

static ssize_t channel_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	struct fuse_in_header *h = buf;

	(void)userdata;
	if (n < (ssize_t)sizeof(*h))
		return n;
	size_t body = (size_t)n - sizeof(*h);

	switch (h->opcode) {
	case FUSE_LOOKUP:
	case FUSE_MKDIR:
	case FUSE_OPEN:
	case FUSE_CREATE:
		pthread_mutex_lock(&lock);
		wait_for(h->unique, h->nodeid, h->opcode, NULL);
		pthread_mutex_unlock(&lock);
		break;
	case FUSE_GETATTR: {
		struct fuse_getattr_in *g = (struct fuse_getattr_in *)(h + 1);

		if (body >= sizeof(*g) && !(g->getattr_flags & FUSE_GETATTR_FH) && lend(h, &g->fh))
			g->getattr_flags |= FUSE_GETATTR_FH;
		break;
	}
	case FUSE_SETATTR: {
		/* fchmod, fchown, futimens come without a handle, as an fstat does; a size change
		 * never borrows one (it would truncate through another opener's descriptor) */
		struct fuse_setattr_in *sa = (struct fuse_setattr_in *)(h + 1);

		if (body >= sizeof(*sa) && !(sa->valid & (FATTR_FH | FATTR_SIZE)) &&
		    lend(h, &sa->fh))
			sa->valid |= FATTR_FH;
		break;
	}
	case FUSE_RELEASE: {
		const struct fuse_release_in *r = (const struct fuse_release_in *)(h + 1);

		if (body < sizeof(*r))
			break;
		pthread_mutex_lock(&lock);
		release(h->nodeid, r->fh);
		pthread_mutex_unlock(&lock);
		break;
	}
	default:
		break;
	}
	return n;
}

/* Copies the first CAP bytes the iovec holds into OUT; returns how many it holds. */
static size_t gather(const struct iovec *iov, int count, void *out, size_t cap)
{
	size_t got = 0;

	for (int i = 0; i < count && got < cap; i++) {
		size_t n = iov[i].iov_len < cap - got ? iov[i].iov_len : cap - got;

		memcpy((char *)out + got, iov[i].iov_base, n);
		got += n;
	}
	return got;
}

/*
 * How long the kernel may keep a directory's name without asking again. Files' names are
 * asked for at every use (see vr_init), since the daemon removes files itself (a load that
 * failed) and their seals come and go with them; a directory is made,
 * renamed and removed only by the kernel's own requests, which keep its cache true. So a
 * path's directories are looked up once a second, not once per system call that names them:
 * `ls -l DIR` asks one question per file instead of two, a stat deep in a tree one instead of
 * one per level.
 */
#define DIR_ENTRY_SECONDS 1

/* Sets entry_valid in the fuse_entry_out that follows the out header in IOV. */
static void keep_dir_entry(struct iovec *iov, int count)
{
	size_t at = sizeof(struct fuse_out_header) + offsetof(struct fuse_entry_out, entry_valid);
	uint64_t secs = DIR_ENTRY_SECONDS;

	for (int i = 0; i < count; i++) {
		if (at >= iov[i].iov_len) {
			at -= iov[i].iov_len;
			continue;
		}
		if (iov[i].iov_len - at < sizeof(secs))
			return; /* split across buffers: libfuse never does; leave it at 0 */
		memcpy((char *)iov[i].iov_base + at, &secs, sizeof(secs));
		return;
	}
}

static ssize_t channel_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (atomic_load(&nwaiting) > 0) {
		struct {
			struct fuse_out_header h;
			union {
				struct fuse_entry_out entry;
				struct fuse_open_out open;
				struct {
					struct fuse_entry_out entry;
					struct fuse_open_out open;
				} create;
			} u;
		} a;
		size_t got = gather(iov, count, &a, sizeof(a));

		if (got >= sizeof(a.h) && a.h.unique != 0) {
			pthread_mutex_lock(&lock);
			struct pending *p = take_waiting(a.h.unique);

			if (p && p->lent) {
				p->lent->lent--;
				pthread_cond_broadcast(&answered);
			} else if (p && a.h.error == 0 && p->opcode == FUSE_OPEN &&
				   got >= sizeof(a.h) + sizeof(a.u.open)) {
				remember(p->nodeid, a.u.open.fh);
			} else if (p && a.h.error == 0 && p->opcode == FUSE_CREATE &&
				   got >= sizeof(a.h) + sizeof(a.u.create)) {
				remember(a.u.create.entry.nodeid, a.u.create.open.fh);
			} else if (p && a.h.error == 0 &&
				   (p->opcode == FUSE_LOOKUP || p->opcode == FUSE_MKDIR) &&
				   got >= sizeof(a.h) + sizeof(a.u.entry) &&
				   a.u.entry.nodeid != 0 && S_ISDIR(a.u.entry.attr.mode)) {
				keep_dir_entry(iov, count);
			}
			pthread_mutex_unlock(&lock);
			free(p);
		}
	}
	return writev(fd, iov, count);
}

int vr_channel_install(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {.read = channel_read, .writev = channel_writev};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

void vr_channel_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < BUCKETS; i++) {
		while (opens[i]) {
			struct open_fh *o = opens[i];

			opens[i] = o->next;
			free(o);
		}
		while (waiting[i]) {
			struct pending *p = waiting[i];

			waiting[i] = p->next;
			free(p);
		}
	}
	atomic_store(&nwaiting, 0);
	pthread_mutex_unlock(&lock);
}
