/*
 * test_channel.c - fs/channel.c against hand-made kernel messages: which handle a GETATTR
 * without one is lent, when a release lets it go, which lookups' answers keep a directory's
 * name, and that a failed allocation only loses the help, never a message. The requests and
 * answers pass through a pipe, as they pass through /dev/fuse.
 */
#include "channel.h"

#include "check.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* vr_channel_install hands its I/O to libfuse: kept here instead */
static const struct fuse_custom_io *io;

int __wrap_fuse_session_custom_io(struct fuse_session *se, const struct fuse_custom_io *cio,
				  int fd);
int __wrap_fuse_session_fd(struct fuse_session *se);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

int __wrap_fuse_session_custom_io(struct fuse_session *se, const struct fuse_custom_io *cio, int fd)
{
	(void)se;
	(void)fd;
	io = cio;
	return 0;
}

int __wrap_fuse_session_fd(struct fuse_session *se)
{
	(void)se;
	return -1;
}

/* the channel's own allocations, refused while this is set */
static atomic_bool refuse;

void *__wrap_malloc(size_t n)
{
	return atomic_load(&refuse) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return atomic_load(&refuse) ? NULL : __real_calloc(n, size);
}

static int pipefd[2];

/* A request as the kernel writes it, read through the channel into BUF (which it may change). */
static void request(void *buf, size_t cap, uint32_t opcode, uint64_t unique, uint64_t nodeid,
		    const void *body, size_t blen)
{
	struct fuse_in_header h = {.len = (uint32_t)(sizeof(h) + blen),
				   .opcode = opcode,
				   .unique = unique,
				   .nodeid = nodeid};
	char msg[512];

	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), body, blen);
	CHECK(write(pipefd[1], msg, sizeof(h) + blen) == (ssize_t)(sizeof(h) + blen));
	CHECK(io->read(pipefd[0], buf, cap, NULL) == (ssize_t)(sizeof(h) + blen));
}

/* An answer written through the channel in the pieces IOV gives; the bytes as they reached
 * the kernel are read back into OUT. */
static void answer(struct iovec *iov, int count, void *out, size_t cap)
{
	size_t total = 0;

	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	CHECK(io->writev(pipefd[1], iov, count, NULL) == (ssize_t)total);
	CHECK(read(pipefd[0], out, cap) == (ssize_t)total);
}

/* A GETATTR without a handle: returns the handle the channel lent it (0: none). */
static uint64_t getattr(uint64_t unique, uint64_t nodeid)
{
	struct fuse_getattr_in g = {0};
	char buf[256];

	request(buf, sizeof(buf), FUSE_GETATTR, unique, nodeid, &g, sizeof(g));
	memcpy(&g, buf + sizeof(struct fuse_in_header), sizeof(g));
	return (g.getattr_flags & FUSE_GETATTR_FH) ? g.fh : 0;
}

static void answer_plain(uint64_t unique, int error)
{
	struct fuse_out_header h = {.len = sizeof(h), .error = error, .unique = unique};
	struct iovec iov = {&h, sizeof(h)};
	char out[64];

	answer(&iov, 1, out, sizeof(out));
}

static void open_file(uint64_t unique, uint64_t nodeid, uint64_t fh)
{
	struct fuse_open_in in = {0};
	char buf[256];

	request(buf, sizeof(buf), FUSE_OPEN, unique, nodeid, &in, sizeof(in));
	struct {
		struct fuse_out_header h;
		struct fuse_open_out o;
	} a = {{sizeof(a), 0, unique}, {.fh = fh}};
	struct iovec iov = {&a, sizeof(a)};
	char out[256];

	answer(&iov, 1, out, sizeof(out));
}

static void release(uint64_t unique, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in r = {.fh = fh};
	char buf[256];

	request(buf, sizeof(buf), FUSE_RELEASE, unique, nodeid, &r, sizeof(r));
}

static void test_lends_open_handles(void)
{
	open_file(1, 5, 77);
	CHECK_EQ(getattr(2, 5), 77); /* an fstat of inode 5: through the handle */
	answer_plain(2, 0);
	CHECK_EQ(getattr(3, 6), 0); /* nothing open on inode 6 */
	answer_plain(3, 0);

	/* a GETATTR that names its handle already is left as it is */
	struct fuse_getattr_in g = {.getattr_flags = FUSE_GETATTR_FH, .fh = 12};
	char buf[256];

	request(buf, sizeof(buf), FUSE_GETATTR, 4, 5, &g, sizeof(g));
	memcpy(&g, buf + sizeof(struct fuse_in_header), sizeof(g));
	CHECK_EQ(g.fh, 12);
	/* a truncated one too */
	request(buf, sizeof(buf), FUSE_GETATTR, 5, 5, &g, 4);
	CHECK_EQ(((struct fuse_getattr_in *)(buf + sizeof(struct fuse_in_header)))->getattr_flags,
		 FUSE_GETATTR_FH);

	/* a failed open remembers nothing */
	struct fuse_open_in in = {0};

	request(buf, sizeof(buf), FUSE_OPEN, 6, 8, &in, sizeof(in));
	answer_plain(6, -EACCES);
	CHECK_EQ(getattr(7, 8), 0);
	answer_plain(7, 0);

	/* a create's handle, for the inode its entry names */
	struct fuse_create_in ci = {0};

	request(buf, sizeof(buf), FUSE_CREATE, 8, 1, &ci, sizeof(ci));
	struct {
		struct fuse_out_header h;
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} c = {{sizeof(c), 0, 8}, {.nodeid = 9}, {.fh = 88}};
	struct iovec iov = {&c, sizeof(c)};
	char out[512];

	answer(&iov, 1, out, sizeof(out));
	CHECK_EQ(getattr(9, 9), 88);
	answer_plain(9, 0);

	/* released: lent no more */
	release(10, 5, 77);
	CHECK_EQ(getattr(11, 5), 0);
	answer_plain(11, 0);
	release(12, 9, 88);
	release(13, 9, 99); /* a handle it never saw: nothing to do */
	/* a notification (unique 0) and a truncated release pass untouched */
	answer_plain(0, 0);
	request(buf, sizeof(buf), FUSE_RELEASE, 14, 9, &ci, 4);
}

/* A release of a handle lent to a GETATTR not yet answered waits for that answer. */
static atomic_bool released;

/* the releasing thread reads its request from its own pipe, as another loop thread would */
static void *releaser(void *arg)
{
	const int *rp = arg;
	struct {
		struct fuse_in_header h;
		struct fuse_release_in r;
	} m = {{.len = sizeof(m), .opcode = FUSE_RELEASE, .unique = 21, .nodeid = 30}, {.fh = 300}};
	char buf[256];

	if (write(rp[1], &m, sizeof(m)) == (ssize_t)sizeof(m) &&
	    io->read(rp[0], buf, sizeof(buf), NULL) == (ssize_t)sizeof(m))
		atomic_store(&released, true);
	return NULL;
}

static void test_release_waits_for_lent(void)
{
	pthread_t t;
	struct timespec pause = {0, 50 * 1000 * 1000};
	int rp[2];

	open_file(20, 30, 300);
	CHECK_EQ(getattr(22, 30), 300);
	CHECK(pipe(rp) == 0);
	CHECK(pthread_create(&t, NULL, releaser, rp) == 0);
	nanosleep(&pause, NULL);
	CHECK(!atomic_load(&released)); /* the handle is still lent */
	/* while its release waits, the handle is lent to no other request */
	CHECK_EQ(getattr(23, 30), 0);
	answer_plain(23, 0);
	answer_plain(22, 0); /* the lent request's answer: the release goes on */
	pthread_join(t, NULL);
	CHECK(atomic_load(&released));
	close(rp[0]);
	close(rp[1]);
}

/* A lookup's answer, in pieces as libfuse writes it; returns the entry_valid that reached the
 * kernel. */
static uint64_t lookup(uint64_t unique, mode_t mode, int error, int pieces)
{
	char buf[256], name[] = "d";
	struct {
		struct fuse_out_header h;
		struct fuse_entry_out e;
	} a = {{sizeof(a), error, unique}, {.nodeid = 40, .attr = {.mode = mode}}};
	struct iovec iov[3];
	char out[512];
	int n;

	request(buf, sizeof(buf), FUSE_LOOKUP, unique, 1, name, sizeof(name));
	if (error)
		a.h.len = sizeof(a.h);
	if (pieces == 1 || error) {
		iov[0] = (struct iovec){&a, error ? sizeof(a.h) : sizeof(a)};
		n = 1;
	} else if (pieces == 2) {
		iov[0] = (struct iovec){&a.h, sizeof(a.h)};
		iov[1] = (struct iovec){&a.e, sizeof(a.e)};
		n = 2;
	} else { /* entry_valid itself cut in two */
		size_t at = sizeof(a.h) + offsetof(struct fuse_entry_out, entry_valid) + 4;

		iov[0] = (struct iovec){&a, at};
		iov[1] = (struct iovec){(char *)&a + at, sizeof(a) - at};
		n = 2;
	}
	answer(iov, n, out, sizeof(out));
	if (error)
		return 0;
	memcpy(&a, out, sizeof(a));
	return a.e.entry_valid;
}

static void test_directories_names_kept(void)
{
	CHECK_EQ(lookup(50, S_IFDIR | 0755, 0, 1), 1);
	CHECK_EQ(lookup(51, S_IFDIR | 0755, 0, 2), 1); /* header and entry apart, as libfuse */
	CHECK_EQ(lookup(52, S_IFREG | 0644, 0, 1), 0); /* a file's name: asked at every use */
	CHECK_EQ(lookup(53, S_IFLNK | 0777, 0, 2), 0);
	CHECK_EQ(lookup(54, S_IFDIR | 0755, -ENOENT, 1), 0);
	CHECK_EQ(lookup(55, S_IFDIR | 0755, 0, 3), 0); /* never patched half */

	/* a mkdir's answer too */
	struct fuse_mkdir_in m = {.mode = 0755};
	char buf[256];

	request(buf, sizeof(buf), FUSE_MKDIR, 56, 1, &m, sizeof(m));
	struct {
		struct fuse_out_header h;
		struct fuse_entry_out e;
	} a = {{sizeof(a), 0, 56}, {.nodeid = 41, .attr = {.mode = S_IFDIR | 0755}}};
	struct iovec iov = {&a, sizeof(a)};
	char out[512];

	answer(&iov, 1, out, sizeof(out));
	memcpy(&a, out, sizeof(a));
	CHECK_EQ(a.e.entry_valid, 1);
}

/* Out of memory: the channel loses its help (no handle lent, no name kept), never a message. */
static void test_out_of_memory(void)
{
	atomic_store(&refuse, true);
	open_file(60, 70, 700); /* not remembered: its wait could not be allocated */
	atomic_store(&refuse, false);
	CHECK_EQ(getattr(61, 70), 0);
	answer_plain(61, 0);

	struct fuse_open_in in = {0};
	char buf[256];

	request(buf, sizeof(buf), FUSE_OPEN, 62, 71, &in, sizeof(in));
	atomic_store(&refuse, true); /* the answer arrives, the handle cannot be kept */
	struct {
		struct fuse_out_header h;
		struct fuse_open_out o;
	} a = {{sizeof(a), 0, 62}, {.fh = 710}};
	struct iovec iov = {&a, sizeof(a)};
	char out[256];

	answer(&iov, 1, out, sizeof(out));
	atomic_store(&refuse, false);
	CHECK_EQ(getattr(63, 71), 0);
	answer_plain(63, 0);

	open_file(64, 72, 720);
	atomic_store(&refuse, true); /* lending needs a wait: none, so no handle */
	CHECK_EQ(getattr(65, 72), 0);
	atomic_store(&refuse, false);
	answer_plain(65, 0);
	CHECK_EQ(lookup(66, S_IFDIR | 0755, 0, 1), 1);
	atomic_store(&refuse, true);
	CHECK_EQ(lookup(67, S_IFDIR | 0755, 0, 1), 0);
	atomic_store(&refuse, false);
	release(68, 72, 720);
}

/* Inodes and requests whose numbers share a bucket are told apart; odd answers pass as written. */
static void test_collisions_and_odd_answers(void)
{
	open_file(100, 7, 70);
	open_file(101, 7 + 1024, 71); /* the same bucket */
	CHECK_EQ(getattr(102, 7 + 1024), 71);
	CHECK_EQ(getattr(102 + 1024, 7), 70); /* two answers awaited in one bucket */
	answer_plain(102 + 1024, 0);
	answer_plain(102, 0);
	release(103, 7 + 1024, 71);
	CHECK_EQ(getattr(104, 7), 70); /* the other one is still lent */
	answer_plain(104, 0);
	release(105, 7, 70);

	/* an open's answer cut short remembers nothing */
	struct fuse_open_in in = {0};
	char buf[256];

	request(buf, sizeof(buf), FUSE_OPEN, 106, 8, &in, sizeof(in));
	struct fuse_out_header h = {.len = sizeof(h) + 4, .unique = 106};
	char cut[sizeof(h) + 4] = {0};

	memcpy(cut, &h, sizeof(h));
	struct iovec iov = {cut, sizeof(cut)};
	char out[8192];

	answer(&iov, 1, out, sizeof(out));
	CHECK_EQ(getattr(107, 8), 0);
	answer_plain(107, 0);

	/* a lookup answered with no inode (a remembered absence) is left alone */
	char name[] = "gone";

	request(buf, sizeof(buf), FUSE_LOOKUP, 108, 1, name, sizeof(name));
	struct {
		struct fuse_out_header h;
		struct fuse_entry_out e;
	} a = {{sizeof(a), 0, 108}, {.nodeid = 0, .attr = {.mode = S_IFDIR | 0755}}};
	struct iovec one = {&a, sizeof(a)};

	answer(&one, 1, out, sizeof(out));
	memcpy(&a, out, sizeof(a));
	CHECK_EQ(a.e.entry_valid, 0);

	/* a long answer (a read's data) while answers are awaited passes whole */
	struct fuse_read_in rd = {.size = 4096};
	char data[4096];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	open_file(109, 9, 90);
	CHECK_EQ(getattr(110, 9), 90); /* keeps an answer awaited meanwhile */
	request(buf, sizeof(buf), FUSE_READ, 111, 9, &rd, sizeof(rd));
	struct fuse_out_header rh = {.len = sizeof(rh) + sizeof(data), .unique = 111};
	struct iovec parts[3] = {{&rh, sizeof(rh)}, {data, 100}, {data + 100, sizeof(data) - 100}};

	answer(parts, 3, out, sizeof(out));
	CHECK_MEM(out + sizeof(rh), data, sizeof(data));
	answer_plain(110, 0);
	release(112, 9, 90);

	/* an answer shorter than a header is written as it is */
	struct iovec tiny = {"abcd", 4};

	answer(&tiny, 1, out, sizeof(out));
	CHECK_MEM(out, "abcd", 4);
}

/* A SETATTR without a handle: returns the handle the channel lent it (0: none). */
static uint64_t setattr(uint64_t unique, uint64_t nodeid, uint32_t valid, uint64_t fh)
{
	struct fuse_setattr_in sa = {.valid = valid, .fh = fh, .mode = 0600};
	char buf[256];

	request(buf, sizeof(buf), FUSE_SETATTR, unique, nodeid, &sa, sizeof(sa));
	memcpy(&sa, buf + sizeof(struct fuse_in_header), sizeof(sa));
	return (sa.valid & FATTR_FH) ? sa.fh : 0;
}

/* fchmod, fchown, futimens come without a handle: lent one; a size change never is. */
static void test_setattr_lending(void)
{
	open_file(130, 13, 1300);
	CHECK_EQ(setattr(131, 13, FATTR_MODE, 0), 1300);
	answer_plain(131, 0);
	CHECK_EQ(setattr(132, 13, FATTR_UID | FATTR_GID | FATTR_ATIME | FATTR_MTIME, 0), 1300);
	answer_plain(132, 0);
	CHECK_EQ(setattr(133, 13, FATTR_SIZE, 0), 0); /* truncate(path) of an open file */
	CHECK_EQ(setattr(134, 13, FATTR_MODE | FATTR_SIZE, 0), 0);
	CHECK_EQ(setattr(135, 13, FATTR_MODE | FATTR_FH, 55), 55); /* its own handle */
	CHECK_EQ(setattr(136, 14, FATTR_MODE, 0), 0);		   /* nothing open */
	release(137, 13, 1300);
	CHECK_EQ(setattr(138, 13, FATTR_MODE, 0), 0);
}

/* A request shorter than a header is passed on as read. */
static void test_short_read(void)
{
	char buf[64];

	CHECK(write(pipefd[1], "abc", 3) == 3);
	CHECK_EQ(io->read(pipefd[0], buf, sizeof(buf), NULL), 3);
}

int main(void)
{
	CHECK(pipe(pipefd) == 0);
	CHECK_EQ(vr_channel_install(NULL), 0);
	CHECK(io != NULL);
	if (!io)
		return check_summary();
	test_lends_open_handles();
	test_release_waits_for_lent();
	test_directories_names_kept();
	test_out_of_memory();
	test_collisions_and_odd_answers();
	test_setattr_lending();
	test_short_read();
	/* an open still remembered, and an answer still awaited, are forgotten at the end */
	open_file(80, 90, 900);
	struct fuse_open_in in = {0};
	char buf[256];

	request(buf, sizeof(buf), FUSE_OPEN, 81, 91, &in, sizeof(in));
	vr_channel_clear();
	CHECK_EQ(getattr(82, 90), 0);
	answer_plain(82, 0);
	vr_channel_clear();
	return check_summary();
}
