/* keeper_restore.c - what a start takes back from the keeper: the descriptors it was handed,
 * the newest record, the tree rebuilt and checked (vr_res_restore), the rest let go. */
#include "keeper_private.h"

#include "audit.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int take_chunk(void *ctx, uint64_t id, uint32_t i, uid_t owner)
{
	struct vr_keeper *k = ctx;
	char name[64];

	snprintf(name, sizeof(name), CHUNK_NAME, id, i);
	for (size_t j = 0; j < k->nhanded; j++)
		if (k->handed[j].fd >= 0 && k->handed[j].name &&
		    strcmp(k->handed[j].name, name) == 0) {
			int fd = k->handed[j].fd;

			k->handed[j].fd = -1;
			/* what came back is counted, even past a share */
			keeper_account(k, owner, 1, true);
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
void keeper_let_go(struct vr_keeper *k, uint64_t keep_gen)
{
	char name[64];
	unsigned n = 0;

	snprintf(name, sizeof(name), RECORD_NAME, keep_gen);
	for (size_t j = 0; j < k->nhanded; j++) {
		if (k->handed[j].fd >= 0) {
			if (!keep_gen || strcmp(k->handed[j].name, name) != 0) {
				keeper_remove_name(k, k->handed[j].name);
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
		keeper_let_go(k, 0);
		return 0;
	}
	ret = vr_res_restore(r, rec, len, gen, take_chunk, k, &got, why, sizeof(why));
	free(rec);
	if (ret) {
		vr_log(LOG_ERR,
		       "restore: the keeper's record (generation %" PRIu64 ") is refused: "
		       "%s; nothing is restored, its memory let go",
		       gen, ret == -ENOMEM ? strerror(ENOMEM) : why);
		audit(a, "vram_restore_refused", "failed", ret == -ENOMEM ? strerror(ENOMEM) : why);
		keeper_let_go(k, 0);
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
	keeper_let_go(k, gen);
	k->dirty = true; /* the record of this start, at once */
	return 0;
}
