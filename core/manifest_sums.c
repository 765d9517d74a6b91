/* manifest_sums.c - the manifest as data (names, lookup, ignored paths) and the parsers of
 * SHA256SUMS and checksums.blake3. */
#include "manifest_private.h"
#include "name.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Writes the reason into WHY and returns ERR. Every refusal of the parsers
 * goes through here, so each says in one line what was wrong. The text is cut
 * to VR_WHY_MAX, and what a reason quotes from the input is cut shorter by its
 * format ("%.100s"), so a hostile source cannot crowd out the reason itself.
 */
int mf_fail(char why[VR_WHY_MAX], int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, VR_WHY_MAX, fmt, ap);
	va_end(ap);
	return err;
}

/* ---- names ---- */

/*
 * Normalizes relative path P in place (drops leading "./", a trailing '/')
 * and checks it: non-empty, no leading '/', no empty, "." or ".." component,
 * components of at most 255 bytes. Returns NULL or why it is bad.
 *
 * A listed name is looked up below the source's own directory, so only a
 * path that stays inside it is accepted: an absolute path or a ".." would
 * name a file the source has no say over. Apart from the leading "./" that
 * "find . -type f | xargs sha256sum" writes, one file has one spelling
 * ("a//b" and "a/./b" are refused, not rewritten), so a source cannot list
 * one file twice under two names and have the duplicate check miss it. Names longer than a file
 * system allows (PATH_MAX, NAME_MAX) could never match and are refused.
 */
const char *mf_normalize_rel(char *p)
{
	size_t len;

	while (p[0] == '.' && p[1] == '/') {
		size_t n = 2;

		while (p[n] == '/')
			n++;
		memmove(p, p + n, strlen(p + n) + 1);
	}
	len = strlen(p);
	if (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	if (len == 0)
		return "an empty name";
	if (len > VR_MANIFEST_NAME_MAX)
		return "a name longer than 4095 bytes";
	if (p[0] == '/')
		return "an absolute path";
	for (const char *c = p;;) {
		const char *slash = strchr(c, '/');
		size_t n = slash ? (size_t)(slash - c) : strlen(c);

		if (n == 0)
			return "an empty path component";
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return "a '.' or '..' component";
		if (n > 255)
			return "a component longer than 255 bytes";
		/* a control character or invalid UTF-8: no file in the mount can have such a
		 * name (and echoed in a report it could forge lines on a terminal) */
		if (vr_name_syntax(c, n) != 0)
			return "a name with a control character or invalid UTF-8, which no file "
			       "here "
			       "can have";
		if (!slash)
			return NULL;
		c = slash + 1;
	}
}

const char *mf_normalize_file(char *p)
{
	size_t len = strlen(p);

	if (len && p[len - 1] == '/')
		return "a name ending in '/' (a folder, not a file)";
	return mf_normalize_rel(p);
}

/*
 * Orders two entries by name, byte by byte (strcmp): the one order that
 * sorting, vr_manifest_find's bsearch and the OMS subject digest all use.
 */
static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct vr_manifest_entry *)a)->name,
		      ((const struct vr_manifest_entry *)b)->name);
}

/*
 * Frees M and all it owns. Accepts NULL, and a manifest a parser gave up on
 * half-way: COUNT and NIGNORE count only what was filled in.
 */
void vr_manifest_free(struct vr_manifest *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->count; i++) {
		free(m->entries[i].name);
		free(m->entries[i].shards);
	}
	free(m->entries);
	for (size_t i = 0; i < m->nignore; i++)
		free(m->ignore[i]);
	free(m->ignore);
	free(m);
}

/*
 * Looks REL up by its exact bytes. REL comes from the tree, already a
 * normalized relative path, so it is not normalized again: the entries were
 * normalized when parsed, and one spelling meets the other. An empty
 * manifest (ENTRIES may be NULL) finds nothing.
 */
const struct vr_manifest_entry *vr_manifest_find(const struct vr_manifest *m, const char *rel)
{
	struct vr_manifest_entry key = {.name = (char *)rel};

	if (!m->count)
		return NULL;
	return bsearch(&key, m->entries, m->count, sizeof(key), by_name);
}

/*
 * Whether REL is an ignored path or lies below one. The prefix must end at a
 * component boundary, so ignoring "a" does not ignore "ab" as well.
 */
bool vr_manifest_ignored(const struct vr_manifest *m, const char *rel)
{
	for (size_t i = 0; i < m->nignore; i++) {
		size_t n = strlen(m->ignore[i]);

		if (strncmp(rel, m->ignore[i], n) == 0 && (rel[n] == '\0' || rel[n] == '/'))
			return true;
	}
	return false;
}

/*
 * Which source a file named NAME is: only these exact, case-sensitive names.
 * A file that merely looks like one ("sha256sums", "SHA256SUMS.txt") is an
 * ordinary file, so the set of sources in a tree is plain to see.
 */
enum vr_manifest_kind vr_manifest_kind_of(const char *name)
{
	if (strcmp(name, VR_SUMS_NAME) == 0)
		return VR_MANIFEST_SUMS;
	if (strcmp(name, VR_OMS_NAME) == 0)
		return VR_MANIFEST_OMS;
	if (strcmp(name, VR_B3SUMS_NAME) == 0)
		return VR_MANIFEST_B3SUMS;
	return 0;
}

/* The kind's name in messages and status; any other kind reads "SHA256SUMS". */
const char *vr_manifest_kind_name(enum vr_manifest_kind kind)
{
	if (kind == VR_MANIFEST_OMS)
		return "OMS";
	return kind == VR_MANIFEST_B3SUMS ? VR_B3SUMS_NAME : VR_SUMS_NAME;
}

bool vr_manifest_blake3(enum vr_manifest_kind kind)
{
	return kind == VR_MANIFEST_B3SUMS;
}

const char *vr_hash_name(enum vr_hash h)
{
	return h == VR_HASH_BLAKE2B ? "blake2b" : h == VR_HASH_BLAKE3 ? "blake3" : "sha256";
}

size_t vr_hash_size(enum vr_hash h)
{
	return h == VR_HASH_BLAKE2B ? 64 : VR_DIGEST_SIZE;
}

/*
 * Appends an entry (NAME is taken over, and freed when this fails); CAP is
 * the room in M->ENTRIES. Refuses the entry past VR_MANIFEST_MAX_ENTRIES
 * (-E2BIG): a source's size bounds what the daemon allocates for it, so the
 * doubling below cannot overflow either. Returns 0, -ENOMEM or -E2BIG.
 */
int mf_add_entry(struct vr_manifest *m, size_t *cap, char *name, const uint8_t *sha)
{
	return mf_add_entry_n(m, cap, name, sha, VR_DIGEST_SIZE);
}

int mf_add_entry_n(struct vr_manifest *m, size_t *cap, char *name, const uint8_t *digest,
		   size_t dlen)
{
	if (m->count == VR_MANIFEST_MAX_ENTRIES) {
		free(name);
		return -E2BIG;
	}
	if (m->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct vr_manifest_entry *ne = realloc(m->entries, ncap * sizeof(*ne));

		if (!ne) {
			free(name);
			return -ENOMEM;
		}
		m->entries = ne;
		*cap = ncap;
	}
	memset(&m->entries[m->count], 0, sizeof(*m->entries));
	m->entries[m->count].name = name;
	if (digest)
		memcpy(m->entries[m->count].digest, digest, dlen);
	m->count++;
	return 0;
}

/*
 * Sorts the entries by name (for bsearch) and finds a name listed twice:
 * returns the index of its second entry, or -1. The callers refuse such a
 * source rather than pick one of two digests for one file.
 */
long mf_sort_entries(struct vr_manifest *m)
{
	if (m->count > 1)
		qsort(m->entries, m->count, sizeof(*m->entries), by_name);
	for (size_t i = 1; i < m->count; i++)
		if (strcmp(m->entries[i - 1].name, m->entries[i].name) == 0)
			return (long)i;
	return -1;
}

/* ---- SHA256SUMS ---- */

/*
 * Reads the 64 hex digits at P (AVAIL bytes there) into OUT. Accepts either
 * case, as sha256sum -c does. Refuses fewer than 64 bytes and any other
 * character, a NUL included (vr_unhex then sees a short string). Returns 0 or
 * -EINVAL.
 */
static int read_hex64(const char *p, size_t avail, uint8_t out[VR_DIGEST_SIZE])
{
	char low[2 * VR_DIGEST_SIZE + 1];

	if (avail < 2 * VR_DIGEST_SIZE)
		return -EINVAL;
	for (int i = 0; i < 2 * VR_DIGEST_SIZE; i++)
		low[i] = (char)tolower((unsigned char)p[i]);
	low[2 * VR_DIGEST_SIZE] = '\0';
	return vr_unhex(low, out, VR_DIGEST_SIZE);
}

/*
 * Undoes sha256sum's escaping of name S in place: a name holding a
 * backslash or a line break is written on a line that starts with '\\', with
 * the escapes \\, \n and \r. Refuses any other escape and a '\\' at the end
 * (-EINVAL): sha256sum writes neither, and a guess could name another file.
 */
static int unescape(char *s)
{
	char *w = s;

	for (const char *p = s; *p; p++) {
		if (*p != '\\') {
			*w++ = *p;
			continue;
		}
		p++;
		if (*p == '\\')
			*w++ = '\\';
		else if (*p == 'n')
			*w++ = '\n';
		else if (*p == 'r')
			*w++ = '\r';
		else
			return -EINVAL;
	}
	*w = '\0';
	return 0;
}

/*
 * Takes the name P (LEFT bytes, the rest of line LINENO; ESCAPED: its line
 * began with '\\') listed with DIGEST into M: refuses a NUL byte (as a C
 * string it would be cut short and name another file), a bad escape, a name
 * mf_normalize_file refuses, and the entry past VR_MANIFEST_MAX_ENTRIES.
 */
static int take_name(struct vr_manifest *m, size_t *cap, const char *p, size_t left, bool escaped,
		     const uint8_t *digest, unsigned lineno, char why[VR_WHY_MAX])
{
	const char *bad;
	char *name;
	int ret;

	if (memchr(p, '\0', left))
		return mf_fail(why, -EINVAL, "line %u: a NUL byte in the name", lineno);
	name = strndup(p, left);
	if (!name)
		return mf_fail(why, -ENOMEM, "out of memory");
	if (escaped && unescape(name)) {
		free(name);
		return mf_fail(why, -EINVAL, "line %u: a bad escape in the name", lineno);
	}
	bad = mf_normalize_file(name);
	if (bad) {
		free(name);
		return mf_fail(why, -EINVAL, "line %u: the name is %s", lineno, bad);
	}
	ret = mf_add_entry(m, cap, name, digest);
	if (ret == -E2BIG)
		return mf_fail(why, ret, "line %u: more than %u files listed", lineno,
			       VR_MANIFEST_MAX_ENTRIES);
	return ret;
}

/*
 * Parses one non-blank, non-comment line LINE (LEN bytes, no newline) into M:
 * "<64 hex> <' ' or '*'><name>", with a leading '\\' when the name is escaped.
 * The '*' (binary mode) is accepted and means nothing: a digest is of the
 * bytes either way. Refuses the BSD format (sha256sum --tag) by name, so the
 * reason says how to fix it; a name holding a NUL byte (as a C string it
 * would be cut short and name another file); a bad escape; a name that
 * mf_normalize_rel refuses; and the entry past VR_MANIFEST_MAX_ENTRIES.
 */
static int sums_line(struct vr_manifest *m, size_t *cap, const char *line, size_t len,
		     unsigned lineno, char why[VR_WHY_MAX])
{
	uint8_t sha[VR_DIGEST_SIZE];
	bool escaped = line[0] == '\\';
	const char *p = line + escaped;
	size_t left = len - escaped;

	if (len > 7 && memcmp(line, "SHA256 (", 8) == 0)
		return mf_fail(why, -EINVAL,
			       "line %u: BSD-style lines (sha256sum --tag) are not supported; "
			       "use sha256sum's default format",
			       lineno);
	if (read_hex64(p, left, sha) || left < 2 * VR_DIGEST_SIZE + 3 ||
	    p[2 * VR_DIGEST_SIZE] != ' ' ||
	    (p[2 * VR_DIGEST_SIZE + 1] != ' ' && p[2 * VR_DIGEST_SIZE + 1] != '*'))
		return mf_fail(why, -EINVAL,
			       "line %u: not \"<64 hex digits>  <name>\" as sha256sum writes",
			       lineno);
	p += 2 * VR_DIGEST_SIZE + 2;
	left -= 2 * VR_DIGEST_SIZE + 2;
	return take_name(m, cap, p, left, escaped, sha, lineno, why);
}

/*
 * Parses one line of a checksums.blake3 (LEN bytes, no '\n') into M, as b3sum
 * --check reads it: "<64 lowercase hex>  <name>", a leading '\\' when the
 * name is escaped. b3sum refuses what sha256sum's reader skips or forgives (a
 * blank line, a '#' comment, uppercase hex, one space or a '*') and keeps a
 * '\r' as part of the name; each is refused here, the reason naming it.
 */
static int b3sums_line(struct vr_manifest *m, size_t *cap, const char *line, size_t len,
		       unsigned lineno, char why[VR_WHY_MAX])
{
	char hex[2 * VR_DIGEST_SIZE + 1] = "";
	uint8_t digest[VR_DIGEST_SIZE];
	bool escaped = len && line[0] == '\\';
	const char *p = line + escaped;
	size_t left = len - escaped;

	if (len == 0)
		return mf_fail(why, -EINVAL, "line %u: an empty line, which b3sum --check refuses",
			       lineno);
	if (line[len - 1] == '\r')
		return mf_fail(why, -EINVAL,
			       "line %u: ends in a carriage return (a Windows line end), which "
			       "b3sum --check reads as part of the name",
			       lineno);
	if (left >= sizeof(hex) - 1) {
		memcpy(hex, p, sizeof(hex) - 1);
		hex[sizeof(hex) - 1] = '\0';
	}
	if (left < 2 * VR_DIGEST_SIZE + 3 || vr_unhex(hex, digest, VR_DIGEST_SIZE) ||
	    p[2 * VR_DIGEST_SIZE] != ' ' || p[2 * VR_DIGEST_SIZE + 1] != ' ')
		return mf_fail(why, -EINVAL,
			       "line %u: not \"<64 lowercase hex digits>  <name>\" as b3sum writes",
			       lineno);
	p += 2 * VR_DIGEST_SIZE + 2;
	left -= 2 * VR_DIGEST_SIZE + 2;
	return take_name(m, cap, p, left, escaped, digest, lineno, why);
}

/*
 * Parses TEXT line by line ('\n') as KIND: a SHA256SUMS (sha256sum's output:
 * a '\r' before the '\n', as a file saved on Windows has, is dropped, blank
 * lines and '#' comments are skipped) or a checksums.blake3 (b3sums_line
 * refuses each of those, as b3sum --check does). Refuses a text over VR_MANIFEST_MAX_BYTES and a
 * line over VR_SUMS_LINE_MAX before reading them, which bounds the work; a bad line refuses the
 * whole source rather than being skipped, since a source read in part would leave files unchecked
 * without a word; so does a name listed twice.
 */
static int parse_lines(const char *text, size_t len, enum vr_manifest_kind kind,
		       struct vr_manifest **out, char why[VR_WHY_MAX])
{
	bool b3 = kind == VR_MANIFEST_B3SUMS;
	struct vr_manifest *m;
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	if (len > VR_MANIFEST_MAX_BYTES)
		return mf_fail(why, -EFBIG, "larger than %u MiB", VR_MANIFEST_MAX_BYTES >> 20);
	m = calloc(1, sizeof(*m));
	if (!m)
		return mf_fail(why, -ENOMEM, "out of memory");
	m->kind = kind;
	m->hash = b3 ? VR_HASH_BLAKE3 : VR_HASH_SHA256;
	m->allow_symlinks = true; /* sha256sum and b3sum read through links */
	for (size_t pos = 0; pos < len && ret == 0;) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl != NULL);
		lineno++;
		if (!b3 && n && line[n - 1] == '\r')
			n--;
		if (n > VR_SUMS_LINE_MAX)
			ret = mf_fail(why, -EINVAL, "line %u: longer than %u bytes", lineno,
				      VR_SUMS_LINE_MAX);
		else if (b3)
			ret = b3sums_line(m, &cap, line, n, lineno, why);
		else if (n && line[0] != '#')
			ret = sums_line(m, &cap, line, n, lineno, why);
	}
	long dup = ret ? -1 : mf_sort_entries(m);

	if (dup >= 0)
		ret = mf_fail(why, -EINVAL, "\"%.200s\" is listed twice", m->entries[dup].name);
	if (ret == -ENOMEM)
		mf_fail(why, ret, "out of memory");
	if (ret) {
		vr_manifest_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

int vr_sums_parse(const char *text, size_t len, struct vr_manifest **out, char why[VR_WHY_MAX])
{
	return parse_lines(text, len, VR_MANIFEST_SUMS, out, why);
}

int vr_b3sums_parse(const char *text, size_t len, struct vr_manifest **out, char why[VR_WHY_MAX])
{
	return parse_lines(text, len, VR_MANIFEST_B3SUMS, out, why);
}
