/* expect_bytes.c - a file's device bytes against what only they can answer: an OMS statement's
 * shards (each shard's digest) or a BLAKE2b, hashed on the host from the resident bytes. The
 * verdict is kept on the node for the source, the entry and the bytes it was taken for. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int res_bytes_job_take(const struct res_expect *e, const uint8_t *fsv, struct res_bytes_job *j)
{
	return res_bytes_job_of(e->bytes_src->source, e->bytes_entry, fsv, j);
}

int res_bytes_job_of(const struct res_source *s, const struct vr_manifest_entry *en,
		     const uint8_t *fsv, struct res_bytes_job *j)
{
	const struct vr_manifest *m = s->m;

	memset(j, 0, sizeof(*j));
	j->serial = s->serial;
	j->key = en;
	j->m.hash = m->hash;
	j->m.shard_size = m->shard_size;
	memcpy(j->e.digest, en->digest, sizeof(j->e.digest));
	memcpy(j->fsv, fsv, VR_DIGEST_SIZE);
	if (en->nshards) {
		j->e.shards = malloc(en->nshards * sizeof(*en->shards));
		if (!j->e.shards)
			return -ENOMEM;
		memcpy(j->e.shards, en->shards, en->nshards * sizeof(*en->shards));
		j->e.nshards = en->nshards;
	}
	return 0;
}

void res_bytes_job_free(struct res_bytes_job *j)
{
	free(j->e.shards);
	j->e.shards = NULL;
}

static int read_dev(void *ctx, uint64_t off, void *buf, size_t len)
{
	return vr_dev_read(ctx, off, buf, len);
}

/* Keeps J's verdict (RET: 0 or -EBADMSG, WHY) on node INTO. [T] */
static void keep_verdict(struct vr_node *into, const struct res_bytes_job *j, int ret,
			 const char *why)
{
	into->bytes_serial = j->serial;
	into->bytes_key = j->key;
	memcpy(into->bytes_fsv, j->fsv, VR_DIGEST_SIZE);
	into->bytes_ok = ret == 0;
	free(into->bytes_why);
	into->bytes_why = ret ? strdup(why) : NULL;
}

int res_bytes_run(struct vr_residency *r, struct vr_node *n, const struct res_bytes_job *j)
{
	char why[VR_WHY_MAX];
	uint64_t size;
	int ret;

	res_lock(r);
	size = n->size;
	res_unlock(r);
	/* IO held: the bytes cannot change or be freed meanwhile */
	ret = vr_manifest_check_read(&j->m, &j->e, read_dev, n->dev, size, why);
	if (ret && ret != -EBADMSG)
		return ret;
	res_lock(r);
	keep_verdict(n, j, ret, why);
	res_unlock(r);
	return 0;
}

void res_link_jobs_run(struct vr_residency *r, struct res_link_jobs *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct res_link_job *k = &l->v[i];
		struct vr_node *f = k->target;
		char why[VR_WHY_MAX];
		int ret = -ESTALE;

		pthread_rwlock_rdlock(&f->io);
		res_lock(r);
		/* still the bytes the job was made for: else its line says they changed */
		bool same = f->state == ST_SEALED && f->seal &&
			    memcmp(f->seal->fsverity, k->j.fsv, VR_DIGEST_SIZE) == 0;
		uint64_t size = f->size;

		res_unlock(r);
		if (same)
			ret = vr_manifest_check_read(&k->j.m, &k->j.e, read_dev, f->dev, size, why);
		if (same && ret && ret != -EBADMSG)
			snprintf(why, sizeof(why), "its bytes could not be read back: %s",
				 strerror(-ret));
		pthread_rwlock_unlock(&f->io);
		res_lock(r);
		if (same)
			keep_verdict(k->link, &k->j, ret, why);
		res_node_put(r, k->link);
		res_node_put(r, f);
		res_unlock(r);
		res_bytes_job_free(&k->j);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int res_bytes_settle(struct vr_residency *r, struct vr_node *n, bool fresh)
{
	struct res_expect e;
	int ret = 0;

	/* twice at most: a source replaced while its check ran leaves the file to its
	 * successor's arrival, which checks the files below it */
	for (int tries = 0; ret == 0 && tries < 2; tries++) {
		struct res_bytes_job j;

		res_lock(r);
		bool need = n->state == ST_SEALED && n->seal;

		/* verify: from the bytes every time (the verdict kept stays in force meanwhile,
		 * for checks running beside this one) */
		if (need && fresh && tries == 0)
			res_expect_bytes_of(n, n->seal, &e);
		else if (need)
			res_expect_of_seal(n, n->seal, &e);
		need = need && e.need_bytes;
		ret = need ? res_bytes_job_take(&e, n->seal->fsverity, &j) : 0;
		res_unlock(r);
		if (!need || ret)
			break;
		ret = res_bytes_run(r, n, &j);
		res_bytes_job_free(&j);
	}
	return ret;
}
