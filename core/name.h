/* name.h - validation of every name a user can create in the tree. */
#ifndef VR_NAME_H
#define VR_NAME_H

#include <stdbool.h>
#include <stddef.h>

#include "vnames.h"

#define VR_NAME_MAX 255
/* A file's name leaves room for its seal's, "<name>.seal", within VR_NAME_MAX. */
#define VR_FILE_NAME_MAX (VR_NAME_MAX - (sizeof(VR_SEAL_SUFFIX) - 1))

/*
 * The syntax of one path component (LEN bytes, not NUL-terminated): 0, or
 * -EINVAL for an empty name, ".", "..", a '/', a NUL, a control character or
 * invalid UTF-8, -ENAMETOOLONG over 255 bytes. Nothing about where the name
 * is: a seal's path is checked with this alone, since "status" or "metrics"
 * is a fine name below the root (issue 21).
 */
int vr_name_syntax(const char *name, size_t len);
/*
 * Checks one path component (LEN bytes, not NUL-terminated; a NUL inside is
 * -EINVAL) that a user wants to create in a directory, the root when AT_ROOT.
 * Returns 0; -EINVAL for an empty name, ".", "..", a '/', a control
 * character or invalid UTF-8; -ENAMETOOLONG over 255 bytes, or for a file
 * (IS_FILE) over VR_FILE_NAME_MAX (250); and what vnames.h's table says of
 * generated names: -EEXIST for "verify" (every directory) and "status" (the
 * root), -EPERM for a name ending in ".seal".
 */
int vr_name_validate_at(const char *name, size_t len, bool at_root, bool is_file);
/* The same for a directory at the root, the strictest place. */
int vr_name_validate(const char *name);
int vr_name_validate_n(const char *name, size_t len);
/* The same for a file at the root. */
int vr_name_validate_file_n(const char *name, size_t len);

#endif
