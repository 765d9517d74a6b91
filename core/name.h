/* name.h - the syntax of a name: what any path component may be, wherever it is. */
#ifndef VR_NAME_H
#define VR_NAME_H

#include <stddef.h>

#define VR_NAME_MAX 255

/*
 * The syntax of one path component (LEN bytes, not NUL-terminated): 0, or
 * -EINVAL for an empty name, ".", "..", a '/', a NUL, a control character or
 * invalid UTF-8, -ENAMETOOLONG over 255 bytes. Nothing about where the name
 * is: a seal's path is checked with this alone, since "status" or "metrics"
 * is a fine name below the root. Where a user may create a name is the
 * residency's to say (res_name_creatable() in core/res/vnames.h).
 */
int vr_name_syntax(const char *name, size_t len);
/*
 * Copies the NUL-terminated IN to OUT (CAP bytes, CAP > 0, always NUL-terminated, cut at a
 * character's end when short), writing each byte that is not part of a valid UTF-8 sequence
 * as the four characters "\xNN": a log line or a JSON string then always holds valid UTF-8
 * and shows what was sent. 4 * strlen(IN) + 1 bytes always suffice. Returns OUT.
 */
char *vr_utf8_escape(const char *in, char *out, size_t cap);

#endif
