/* expect_bytes.c - a file's device bytes against what only they can answer: an OMS statement's
 * shards (each shard's digest) or a BLAKE2b, hashed on the host from the resident bytes. The
 * verdict is kept on the node for the source, the entry and the bytes it was taken for. */
#include "log.h"
#include "res_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int res_bytes_job_take(const struct res_expect *e, const uint8_t *fsv, struct res_bytes_job *j)
{
	const struct vr_manifest *m = e->bytes_src->source->m;
	const struct vr_manifest_entry *en = e->bytes_entry;

	memset(j, 0, sizeof(*j));
	j->serial = e->bytes_src->source->serial;
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
	n->bytes_serial = j->serial;
	n->bytes_key = j->key;
	memcpy(n->bytes_fsv, j->fsv, VR_DIGEST_SIZE);
	n->bytes_ok = ret == 0;
	free(n->bytes_why);
	n->bytes_why = ret ? strdup(why) : NULL;
	res_unlock(r);
	return 0;
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
