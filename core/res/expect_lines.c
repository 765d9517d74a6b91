/* expect_lines.c - verify's lines for the sources (model.sig, SHA256SUMS, checksums.blake3): the
 * names they list that are missing, listed links checked through their targets, and linked sources.
 */
#include "res_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/memops.h>

/* Where verify's source lines go: T and FAILED; or, with JOBS, nowhere: the walk only collects
 * the listed links whose targets' bytes must be hashed first (shards, BLAKE2b). */
struct lines {
	struct vr_text *t;
	unsigned *failed;
	struct res_link_jobs *jobs;
};

static void line(struct lines *o, const char *verdict, const char *path, const char *why)
{
	if (o->jobs || !o->t || !o->failed)
		return; /* collecting the links to hash: no lines */
	vr_text_line(o->t, verdict, path, why);
	(*o->failed) += strcmp(verdict, "FAILED") == 0 || strcmp(verdict, "MISSING") == 0;
}

/* Keeps link LINK to sealed file F, listed by S's entry E, for its bytes' check. [T] */
static void add_job(struct res_link_jobs *l, struct vr_node *link, struct vr_node *f,
		    const struct res_source *s, const struct vr_manifest_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct res_link_job *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return; /* unchecked: its line then fails the report */
		l->v = v;
		l->cap = cap;
	}
	if (res_bytes_job_of(s, e, f->seal->fsverity, &l->v[l->n].j) != 0)
		return;
	link->refs++;
	f->refs++;
	l->v[l->n].link = link;
	l->v[l->n].target = f;
	l->n++;
}

/*
 * Why LINK to sealed F (at TPATH) fails S's entry E that only bytes answer (shards, BLAKE2b):
 * the verdict res_link_jobs_run kept on LINK for these bytes; false when it passes. [T]
 */
static bool bytes_link_why(const struct vr_node *link, const struct vr_node *f,
			   const struct res_source *s, const struct vr_manifest_entry *e,
			   const char *tpath, char *why, size_t cap)
{
	if (link->bytes_serial != s->serial || link->bytes_key != e ||
	    !nettle_memeql_sec(link->bytes_fsv, f->seal->fsverity, VR_DIGEST_SIZE))
		snprintf(why, cap,
			 "is a symbolic link to %s, whose bytes were not checked against the "
			 "listed %s (its target changed while verify ran, or no memory)",
			 tpath, s->m->shard_size ? "shards" : "blake2b digest");
	else if (!link->bytes_ok)
		snprintf(why, cap,
			 "is a symbolic link to %s, whose bytes differ from the listed "
			 "digest (%s)",
			 tpath, link->bytes_why ? link->bytes_why : "");
	else
		return false;
	return true;
}

/*
 * A listed name that is a symbolic link, LINK at PATH: verified through what
 * it leads to. It fails (a FAILED line) where the source does not allow links
 * (an OMS statement without allow_symlinks), where it leads to nothing inside
 * the tree, or to anything but a sealed file whose SHA-256 is the listed one;
 * a link that passes adds no line (its target's own line, where the verify
 * covers it, checks the device bytes). [T]
 */
static void link_line(struct vr_residency *r, const struct res_source *s,
		      const struct vr_manifest_entry *e, struct vr_node *link,
		      const struct vr_peer *p, const char *path, struct lines *o)
{
	const struct vr_manifest *m = s->m;
	char why[VR_WHY_MAX + VR_SEAL_PATH_MAX], tpath[VR_SEAL_PATH_MAX];
	struct vr_node *f = NULL;
	bool b3 = m->hash == VR_HASH_BLAKE3;
	/* followed as the reader would follow it: no digest of what they may not read */
	int ret = m->allow_symlinks ? res_follow(r, link, p, &f) : 0;

	if (!m->allow_symlinks)
		snprintf(why, sizeof(why), "%s",
			 "is a symbolic link (the signature does not "
			 "allow links: allow_symlinks is false)");
	else if (ret == -EACCES || (ret == 0 && !f->is_dir && !res_may_read(f, p)))
		snprintf(why, sizeof(why), "%s",
			 "is a symbolic link this user may not follow or read (Permission denied)");
	else if (ret)
		snprintf(why, sizeof(why),
			 "is a symbolic link that leads to nothing in the mount (%s)",
			 strerror(-ret));
	else if (res_node_path(f, tpath, sizeof(tpath)) != 0 || f->is_dir)
		snprintf(why, sizeof(why), "%s", "is a symbolic link to a directory, not a file");
	else if (f->state != ST_SEALED || !f->seal)
		snprintf(why, sizeof(why), "is a symbolic link to %s, which is not sealed", tpath);
	else if (!vr_manifest_seal_comparable(m) && o->jobs) {
		add_job(o->jobs, link, f, s, e); /* checked from its bytes, then asked again */
		return;
	} else if (!vr_manifest_seal_comparable(m)) {
		if (!bytes_link_why(link, f, s, e, tpath, why, sizeof(why)))
			return;
	} else if (!b3 && f->seal->no_sha256)
		snprintf(
		    why, sizeof(why),
		    "is a symbolic link to %s, sealed without a SHA-256 to compare (sha256=off)",
		    tpath);
	else if (b3 && !f->seal->has_blake3)
		snprintf(why, sizeof(why),
			 "is a symbolic link to %s, sealed without a BLAKE3 to compare (no "
			 "checksums.blake3 names it where it is)",
			 tpath);
	else if (!nettle_memeql_sec(b3 ? f->seal->blake3 : f->seal->sha256, e->digest,
				    VR_DIGEST_SIZE))
		snprintf(why, sizeof(why),
			 "is a symbolic link to %s, whose bytes differ from the listed digest",
			 tpath);
	else
		return;
	line(o, "FAILED", path, why);
}

/* The deepest folder that exists on the way from source SRC's folder to its listed NAME. [T] */
static const struct vr_node *deepest_folder(const struct vr_node *src, const char *name)
{
	const struct vr_node *d = src->parent;
	char part[VR_MANIFEST_NAME_MAX + 1]; /* a listed name's components fit (name syntax) */

	for (const char *p = name; *p;) {
		size_t len = strcspn(p, "/");

		if (!p[len])
			break; /* the last component: the file's own name */
		memcpy(part, p, len);
		part[len] = '\0';
		const struct vr_node *c = res_child(d, part);

		if (!c || !c->is_dir)
			break;
		d = c;
		p += len + 1;
	}
	return d;
}

static int add_missing(struct vr_residency *r, const struct vr_node *src, const char *dirpath,
		       const struct vr_peer *p, struct lines *o)
{
	const struct res_source *s = src->source;
	char srcpath[VR_SEAL_PATH_MAX], full[VR_SEAL_PATH_MAX + VR_MANIFEST_NAME_MAX + 2];
	char detail[VR_SEAL_PATH_MAX + 16];
	size_t dl = strlen(dirpath);

	res_node_path(src, srcpath, sizeof(srcpath));
	size_t pl = res_path_len(src->parent);

	snprintf(detail, sizeof(detail), "listed in %s", srcpath);
	for (size_t i = 0; i < s->m->count; i++) {
		struct res_lookup l;
		int n = snprintf(full, sizeof(full), "/%.*s%s", (int)pl, srcpath,
				 s->m->entries[i].name);

		if (n < 0 || (size_t)n >= sizeof(full))
			continue;
		/* only what lies below the directory being verified */
		if (dl && (strncmp(full + 1, dirpath, dl) != 0 || full[1 + dl] != '/'))
			continue;
		/* looked up as the reader would: a name below a folder it may not search is
		 * neither MISSING nor present to it (EACCES), so no line tells which */
		int rr = res_resolve_as(r, full, p, &l);

		if (rr == -EACCES)
			continue;
		bool found = rr == 0;

		if (found && l.node == src) {
			/* a file cannot hold its own digest: sha256sum -c fails it too */
			line(o, "FAILED", full + 1, "lists itself");
		} else if (found && l.kind == VR_KIND_LINK &&
			   !res_may_vouch(src, src->parent, l.node)) {
			continue; /* another user's link: this source's owner may not vouch for it
				   */
		} else if (found && l.kind == VR_KIND_LINK) {
			link_line(r, s, &s->m->entries[i], l.node, p, full + 1, o);
		} else if (!found || l.kind != VR_KIND_FILE || l.node->state == ST_FAILED ||
			   l.node->state == ST_REMOVED) {
			const struct vr_node *at = deepest_folder(src, s->m->entries[i].name);

			/* a name in another user's folder below: not this source's to promise */
			if (at != src->parent && !res_may_vouch(src, src->parent, at))
				continue;
			line(o, "MISSING", full + 1, detail);
		}
	}
	return 0;
}

/*
 * A SHA256SUMS or model.sig in D that is a symbolic link vouches for nothing
 * (only a sealed file is read as a source): it fails the report rather than
 * leave the folder looking unchecked. [T]
 */
static void link_sources(const struct vr_node *d, struct lines *o)
{
	static const char *const names[] = {VR_SUMS_NAME, VR_OMS_NAME, VR_B3SUMS_NAME};
	char path[VR_SEAL_PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct vr_node *n = res_child(d, names[i]);

		if (n && n->target && res_node_path(n, path, sizeof(path)) == 0) {
			line(o, "FAILED", path,
			     "is a symbolic link: a source must be the file itself (cp -L "
			     "copies what a link names)");
		}
	}
}

/* Walks D's subtree for sources, adding their MISSING lines; a folder P may not search is left
 * out with all below it (its files are SKIPPED too), so no name there is shown. [T] */
static void missing_below(struct vr_residency *r, const struct vr_node *d, const char *dirpath,
			  const struct vr_peer *p, struct lines *o)
{
	const struct vr_node *srcs[RES_SOURCES_MAX];
	int k = res_sources_in(d, srcs);

	for (int i = 0; i < k; i++)
		if (srcs[i]->source->m && res_may_read(srcs[i], p))
			add_missing(r, srcs[i], dirpath, p, o);
	link_sources(d, o);
	for (const struct vr_node *c = d->children; c; c = c->next)
		if (c->is_dir && res_may(c, p, 1))
			missing_below(r, c, dirpath, p, o);
}

static void walk(struct vr_residency *r, const struct vr_node *dir, const struct vr_peer *p,
		 struct lines *o)
{
	res_held(r);

	char dirpath[VR_SEAL_PATH_MAX], srcpath[VR_SEAL_PATH_MAX];

	if (res_node_path(dir, dirpath, sizeof(dirpath)))
		return;
	missing_below(r, dir, dirpath, p, o);
	/* sources above the directory cover it too; a refused one fails it */
	for (const struct vr_node *d = dir->parent; d; d = d->parent) {
		const struct vr_node *srcs[RES_SOURCES_MAX];
		int k = res_sources_in(d, srcs);

		link_sources(d, o);
		for (int i = 0; i < k; i++) {
			bool readable = res_may_read(srcs[i], p);

			if (srcs[i]->source->m) {
				if (readable)
					add_missing(r, srcs[i], dirpath, p, o);
			} else if (!res_may_vouch(srcs[i], d, dir)) {
				continue; /* it could not vouch for DIR: its failure is not DIR's */
			} else if (res_node_path(srcs[i], srcpath, sizeof(srcpath)) == 0) {
				/* it fails what it covers, whoever asks; why, only to its readers
				 */
				line(o, "FAILED", srcpath,
				     readable ? srcs[i]->source->why
					      : "refused (this user may not read why)");
			}
		}
	}
}

void res_expect_lines(struct vr_residency *r, const struct vr_node *dir, const struct vr_peer *p,
		      struct vr_text *t, unsigned *failed)
{
	struct lines o = {.t = t, .failed = failed};

	walk(r, dir, p, &o);
}

void res_expect_link_jobs(struct vr_residency *r, const struct vr_node *dir,
			  const struct vr_peer *p, struct res_link_jobs *jobs)
{
	struct lines o = {.jobs = jobs};

	walk(r, dir, p, &o);
}
