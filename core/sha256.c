/* sha256.c - plain SHA-256 of file contents: streams (libcrypto), streams on a thread of their
 * own beside the caller, and hex. */
#include "digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct vr_sha256_stream {
	EVP_MD_CTX *ctx;
};

int vr_sha256_stream_new(struct vr_sha256_stream **out)
{
	struct vr_sha256_stream *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int vr_sha256_stream_update(struct vr_sha256_stream *s, const void *data, size_t len)
{
	return EVP_DigestUpdate(s->ctx, data, len) == 1 ? 0 : -EIO;
}

int vr_sha256_stream_final(struct vr_sha256_stream *s, uint8_t out[VR_DIGEST_SIZE])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(s->ctx, out, &n) != 1 || n != VR_DIGEST_SIZE)
		return -EIO;
	return EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

void vr_sha256_stream_free(struct vr_sha256_stream *s)
{
	if (s) {
		EVP_MD_CTX_free(s->ctx);
		free(s);
	}
}

struct async_piece {
	uint8_t *data;	 /* the piece's copy */
	const void *ref; /* or the caller's bytes, hashed in place (feed_ref) */
	size_t len, cap;
};

struct vr_sha256_async {
	struct vr_sha256_stream *st;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t more, room;
	struct async_piece q[VR_SHA_ASYNC_DEPTH]; /* [head, head+count) wait or are hashed */
	size_t head, count;			  /* under LOCK */
	uint64_t fed, hashed;			  /* under LOCK: pieces queued, and done */
	bool closing;				  /* under LOCK: no more pieces come */
	int err;				  /* under LOCK: the first hashing error */
};

/* Hashes the pieces in order; a piece stays counted until it is hashed, so feed() never
 * overwrites one in use. */
static void *async_worker(void *arg)
{
	struct vr_sha256_async *a = arg;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->count == 0 && !a->closing)
			pthread_cond_wait(&a->more, &a->lock);
		if (a->count == 0)
			break;
		struct async_piece *p = &a->q[a->head];
		bool skip = a->err != 0;

		pthread_mutex_unlock(&a->lock);
		int ret =
		    skip ? 0 : vr_sha256_stream_update(a->st, p->ref ? p->ref : p->data, p->len);

		pthread_mutex_lock(&a->lock);
		if (ret && !a->err)
			a->err = ret;
		a->head = (a->head + 1) % VR_SHA_ASYNC_DEPTH;
		a->count--;
		a->hashed++;
		/* a feeder waits for room, a lender of bytes for its piece */
		pthread_cond_broadcast(&a->room);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int vr_sha256_async_new(struct vr_sha256_async **out)
{
	struct vr_sha256_async *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	ret = vr_sha256_stream_new(&a->st);
	if (ret) {
		free(a);
		return ret;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->more, NULL);
	pthread_cond_init(&a->room, NULL);
	ret = -pthread_create(&a->thread, NULL, async_worker, a);
	if (ret) {
		vr_sha256_stream_free(a->st);
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->more);
		pthread_cond_destroy(&a->room);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

int vr_sha256_async_feed(struct vr_sha256_async *a, const void *data, size_t len)
{
	struct async_piece *p;
	int ret;

	pthread_mutex_lock(&a->lock);
	while (a->count == VR_SHA_ASYNC_DEPTH)
		pthread_cond_wait(&a->room, &a->lock);
	ret = a->err;
	p = &a->q[(a->head + a->count) % VR_SHA_ASYNC_DEPTH];
	pthread_mutex_unlock(&a->lock);
	if (ret)
		return ret;
	/* the slot is the feeder's until it is counted */
	if (p->cap < len) {
		uint8_t *n = realloc(p->data, len);

		if (!n)
			return -ENOMEM;
		p->data = n;
		p->cap = len;
	}
	memcpy(p->data, data, len);
	p->ref = NULL;
	p->len = len;
	pthread_mutex_lock(&a->lock);
	a->count++;
	a->fed++;
	pthread_cond_signal(&a->more);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int vr_sha256_async_feed_ref(struct vr_sha256_async *a, const void *data, size_t len,
			     uint64_t *ticket)
{
	struct async_piece *p;
	int ret;

	pthread_mutex_lock(&a->lock);
	while (a->count == VR_SHA_ASYNC_DEPTH)
		pthread_cond_wait(&a->room, &a->lock);
	ret = a->err;
	if (ret == 0) {
		p = &a->q[(a->head + a->count) % VR_SHA_ASYNC_DEPTH];
		p->ref = data;
		p->len = len;
		a->count++;
		*ticket = ++a->fed;
		pthread_cond_signal(&a->more);
	}
	pthread_mutex_unlock(&a->lock);
	return ret;
}

void vr_sha256_async_wait(struct vr_sha256_async *a, uint64_t ticket)
{
	pthread_mutex_lock(&a->lock);
	while (a->hashed < ticket)
		pthread_cond_wait(&a->room, &a->lock);
	pthread_mutex_unlock(&a->lock);
}

/* Ends the worker after it hashed what is queued (DISCARD: what is queued is dropped). */
static void async_stop(struct vr_sha256_async *a, bool discard)
{
	pthread_mutex_lock(&a->lock);
	if (discard && !a->err)
		a->err = -ECANCELED; /* the worker skips the rest */
	a->closing = true;
	pthread_cond_signal(&a->more);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
}

int vr_sha256_async_final(struct vr_sha256_async *a, uint8_t out[VR_DIGEST_SIZE])
{
	async_stop(a, false);
	return a->err ? a->err : vr_sha256_stream_final(a->st, out);
}

void vr_sha256_async_free(struct vr_sha256_async *a)
{
	if (!a)
		return;
	if (!a->closing)
		async_stop(a, true);
	for (int i = 0; i < VR_SHA_ASYNC_DEPTH; i++) {
		/* staged file bytes do not linger in freed heap memory */
		if (a->q[i].data)
			explicit_bzero(a->q[i].data, a->q[i].cap);
		free(a->q[i].data);
	}
	vr_sha256_stream_free(a->st);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->more);
	pthread_cond_destroy(&a->room);
	free(a);
}

void vr_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int vr_unhex(const char *in, uint8_t *out, size_t len)
{
	uint8_t tmp[64];

	if (len > sizeof(tmp) || strlen(in) != 2 * len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(out, tmp, len);
	return 0;
}
