/* mock.c - the mock backend: "device memory" in a shared host mapping, for GPU-less machines. */
#include "backends.h"
#include "digest.h"
#include "log.h"
#include "size.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOCK_EXTENT	      ((uint64_t)1 << 20) /* a whole number of fs-verity units */
#define MOCK_DEFAULT_CAPACITY ((uint64_t)1 << 30)

/* Where a fault is injected (option fault=OP:N[:ERR]): the Nth call of a kind fails. */
enum fault_op { FAULT_ALLOC, FAULT_WRITE, FAULT_READ, FAULT_DIGEST, FAULT_OPS };

/*
 * Locking: LOCK guards the free stack and the fault counters, nothing else;
 * a file's extents belong to its caller (backend.h's contract), so copies and
 * digests run with no lock held and never wait for each other.
 */
struct mock {
	pthread_mutex_t lock;
	uint8_t *arena;
	uint64_t capacity;
	uint32_t nextents;
	uint32_t *free_stack; /* indices of free extents */
	uint32_t nfree;
	int index;
	unsigned calls[FAULT_OPS];
	unsigned fail_at[FAULT_OPS]; /* the fail_at[op]-th call (from 1) fails, with -fail_errno */
	int fail_errno[FAULT_OPS];
};

struct mock_file {
	struct vr_dev_file hdr; /* first: the file knows its device */
	uint64_t size;
	uint32_t count, cap;
	uint32_t *ext; /* extent indices, in file order */
};

static struct mock_file *mf(struct vr_dev_file *f)
{
	return (struct mock_file *)f;
}

/*
 * Test seam: a program that defines vr_test_digest_hook (the conformance
 * suite does) is called at the start of every digest, with no lock held, to
 * hold a digest in flight while it checks that other files are not blocked.
 */
void vr_test_digest_hook(void) __attribute__((weak));

/* Counts a call of OP and says whether it is the one to fail. */
static int fault(struct mock *m, enum fault_op op)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	m->calls[op]++;
	if (m->fail_at[op] && m->calls[op] == m->fail_at[op])
		ret = -(m->fail_errno[op] ? m->fail_errno[op] : EIO);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* Parses fault=OP:N[:ERR][+OP:N[:ERR]...] into M; returns 0 or -EINVAL (having said why). */
static int parse_fault(struct mock *m, const char *text)
{
	static const char *const ops[FAULT_OPS] = {"alloc", "write", "read", "digest"};
	char *copy = strdup(text), *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, "+", &save); item; item = strtok_r(NULL, "+", &save)) {
		char *op = item, *nth = strchr(item, ':'), *err = NULL;
		int i;

		if (nth) {
			*nth++ = '\0';
			err = strchr(nth, ':');
			if (err)
				*err++ = '\0';
		}
		for (i = 0; i < FAULT_OPS; i++)
			if (strcmp(op, ops[i]) == 0)
				break;
		if (i == FAULT_OPS || !nth || atoi(nth) < 1) {
			ret = -EINVAL;
			break;
		}
		m->fail_at[i] = (unsigned)atoi(nth);
		if (!err || strcmp(err, "eio") == 0)
			m->fail_errno[i] = EIO;
		else if (strcmp(err, "enomem") == 0)
			m->fail_errno[i] = ENOMEM;
		else if (strcmp(err, "enospc") == 0)
			m->fail_errno[i] = ENOSPC;
		else {
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	if (ret)
		vr_log(LOG_ERR,
		       "mock: mock_fault=%s: use OP:N[:eio|enomem|enospc], OP one of alloc, write, "
		       "read, digest, joined by +",
		       text);
	return ret;
}

static int mock_open(const struct vr_backend_params *p, void **ctx)
{
	const char *capacity = vr_backend_opt(p, "capacity");
	const char *vram = vr_backend_opt(p, "vram");
	const char *faults = vr_backend_opt(p, "fault");
	uint64_t cap = MOCK_DEFAULT_CAPACITY;
	struct mock *m;
	int fd = -1, ret;

	if (capacity && (vr_size_parse(capacity, &cap) != 0 || cap == 0)) {
		vr_log(LOG_ERR, "mock: capacity=%s: use a size such as 512M or 2G", capacity);
		return -EINVAL;
	}
	if (cap % MOCK_EXTENT || cap / MOCK_EXTENT > UINT32_MAX) {
		vr_log(LOG_ERR, "mock: capacity=%llu must be a whole number of MiB (e.g. 512M, 2G)",
		       (unsigned long long)cap);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (faults && (ret = parse_fault(m, faults)) != 0)
		goto free_mock;
	m->capacity = cap;
	m->index = p->device;
	m->nextents = (uint32_t)(cap / MOCK_EXTENT);
	m->free_stack = malloc(sizeof(uint32_t) * m->nextents);
	if (!m->free_stack) {
		ret = -ENOMEM;
		goto free_mock;
	}
	if (vram) {
		fd = open(vram, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			ret = -errno;
			vr_log(LOG_ERR, "mock: cannot open mock_vram=%s: %s", vram,
			       strerror(errno));
			goto free_stack;
		}
		/* start from zeroed memory, as a scrubbed device would be */
		if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)cap) != 0) {
			ret = -errno;
			vr_log(LOG_ERR, "mock: cannot size mock_vram=%s to %llu bytes: %s", vram,
			       (unsigned long long)cap, strerror(errno));
			goto close_fd;
		}
	}
	/* Reserved and populated now, as cudaMalloc would, so loads pay no first-touch faults. */
	m->arena = mmap(NULL, cap, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_POPULATE | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
	if (m->arena == MAP_FAILED) {
		ret = -errno;
		vr_log(LOG_ERR, "mock: cannot reserve %llu bytes of host memory: %s",
		       (unsigned long long)cap, strerror(errno));
		goto close_fd;
	}
	if (fd >= 0)
		close(fd);
	for (uint32_t i = 0; i < m->nextents; i++)
		m->free_stack[i] = m->nextents - 1 - i;
	m->nfree = m->nextents;
	pthread_mutex_init(&m->lock, NULL);
	*ctx = m;
	return 0;

close_fd:
	if (fd >= 0)
		close(fd);
free_stack:
	free(m->free_stack);
free_mock:
	free(m);
	return ret;
}

static void mock_close(void *ctx)
{
	struct mock *m = ctx;

	/* nothing of a file may outlive the daemon in the backing file */
	explicit_bzero(m->arena, m->capacity);
	munmap(m->arena, m->capacity);
	pthread_mutex_destroy(&m->lock);
	free(m->free_stack);
	free(m);
}

static int mock_info(void *ctx, struct vr_device_info *out)
{
	struct mock *m = ctx;

	memset(out, 0, sizeof(*out));
	strcpy(out->backend, "mock");
	out->index = m->index;
	strcpy(out->name, "mock device (host memory, not a GPU)");
	snprintf(out->uuid, sizeof(out->uuid), "MOCK-%08x-0000-0000-0000-000000000000",
		 (unsigned)m->index);
	pthread_mutex_lock(&m->lock);
	out->total_bytes = m->capacity;
	out->free_bytes = (uint64_t)m->nfree * MOCK_EXTENT;
	pthread_mutex_unlock(&m->lock);
	out->integrated = false;
	return 0;
}

static int mock_file_new(void *ctx, struct vr_dev_file **out)
{
	struct mock_file *f = calloc(1, sizeof(*f));

	(void)ctx;
	if (!f)
		return -ENOMEM;
	*out = &f->hdr;
	return 0;
}

static uint8_t *extent_ptr(struct mock *m, uint32_t idx)
{
	return m->arena + (uint64_t)idx * MOCK_EXTENT;
}

static int mock_resize(void *ctx, struct vr_dev_file *file, uint64_t size)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	uint64_t want = size / MOCK_EXTENT + (size % MOCK_EXTENT != 0);
	int ret;

	if (want > UINT32_MAX)
		return -ENOSPC;
	if (want > f->count) {
		ret = fault(m, FAULT_ALLOC);
		if (ret)
			return ret;
		if (want > f->cap) {
			uint32_t ncap = f->cap ? f->cap : 8;

			while (ncap < want)
				ncap = ncap > UINT32_MAX / 2 ? UINT32_MAX : ncap * 2;
			uint32_t *n = realloc(f->ext, sizeof(uint32_t) * ncap);

			if (!n)
				return -ENOMEM;
			f->ext = n;
			f->cap = ncap;
		}
		pthread_mutex_lock(&m->lock);
		if (want - f->count > m->nfree) {
			pthread_mutex_unlock(&m->lock);
			return -ENOSPC;
		}
		/* free extents are always zero: scrubbed when freed */
		while (f->count < want)
			f->ext[f->count++] = m->free_stack[--m->nfree];
		pthread_mutex_unlock(&m->lock);
	} else {
		/* scrub what the cut leaves in the last kept extent, then free the rest */
		if (size % MOCK_EXTENT && want > 0)
			memset(extent_ptr(m, f->ext[want - 1]) + size % MOCK_EXTENT, 0,
			       MOCK_EXTENT - size % MOCK_EXTENT);
		for (uint64_t i = want; i < f->count; i++)
			memset(extent_ptr(m, f->ext[i]), 0, MOCK_EXTENT);
		pthread_mutex_lock(&m->lock);
		while (f->count > want)
			m->free_stack[m->nfree++] = f->ext[--f->count];
		pthread_mutex_unlock(&m->lock);
	}
	f->size = size;
	return 0;
}

static int mock_write(void *ctx, struct vr_dev_file *file, uint64_t off, const void *buf,
		      size_t len)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	const uint8_t *p = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = fault(m, FAULT_WRITE);
	if (ret)
		return ret;
	while (len > 0) {
		uint64_t in = off % MOCK_EXTENT;
		size_t n = MOCK_EXTENT - in < len ? (size_t)(MOCK_EXTENT - in) : len;

		memcpy(extent_ptr(m, f->ext[off / MOCK_EXTENT]) + in, p, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int mock_read(void *ctx, struct vr_dev_file *file, uint64_t off, void *buf, size_t len)
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	uint8_t *p = buf;
	int ret;

	if (off > f->size || len > f->size - off)
		return -EINVAL;
	ret = fault(m, FAULT_READ);
	if (ret)
		return ret;
	while (len > 0) {
		uint64_t in = off % MOCK_EXTENT;
		size_t n = MOCK_EXTENT - in < len ? (size_t)(MOCK_EXTENT - in) : len;

		memcpy(p, extent_ptr(m, f->ext[off / MOCK_EXTENT]) + in, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int mock_fsverity(void *ctx, struct vr_dev_file *file, uint8_t out[32])
{
	struct mock_file *f = mf(file);
	struct mock *m = ctx;
	struct vr_span *spans;
	size_t n = f->count ? f->count : 1;
	int ret;

	if (vr_test_digest_hook)
		vr_test_digest_hook();
	ret = fault(m, FAULT_DIGEST);
	if (ret)
		return ret;
	spans = calloc(n, sizeof(*spans));
	if (!spans)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->count; i++) {
		spans[i].data = extent_ptr(m, f->ext[i]);
		spans[i].len = MOCK_EXTENT;
	}
	if (f->count)
		spans[f->count - 1].len =
		    (size_t)(f->size - (uint64_t)(f->count - 1) * MOCK_EXTENT);
	else
		spans[0].data = "";
	ret = vr_fsv_digest_spans(spans, n, 0, out);
	free(spans);
	return ret;
}

static int mock_host_view(void *ctx, struct vr_dev_file *file, uint64_t off, const void **p,
			  size_t *len)
{
	struct mock_file *f = mf(file);
	uint64_t in = off % MOCK_EXTENT;

	if (off >= f->size)
		return -EINVAL;
	*p = extent_ptr(ctx, f->ext[off / MOCK_EXTENT]) + in;
	*len = (size_t)(f->size - off < MOCK_EXTENT - in ? f->size - off : MOCK_EXTENT - in);
	return 0;
}

static uint64_t mock_held(void *ctx, const struct vr_dev_file *file)
{
	(void)ctx;
	return (uint64_t)((const struct mock_file *)file)->count * MOCK_EXTENT;
}

static int mock_file_free(void *ctx, struct vr_dev_file *file)
{
	struct mock_file *f = mf(file);
	int ret = mock_resize(ctx, file, 0);

	free(f->ext);
	free(f);
	return ret;
}

const struct vr_backend_ops vr_mock_ops = {
    .name = "mock",
    .open = mock_open,
    .close = mock_close,
    .info = mock_info,
    .file_new = mock_file_new,
    .resize = mock_resize,
    .write = mock_write,
    .read = mock_read,
    .fsverity = mock_fsverity,
    .held = mock_held,
    .host_view = mock_host_view,
    .file_free = mock_file_free,
};
