/* vnames.h - the generated entries (verify, status, <file>.seal): which names are taken where. */
#ifndef VR_VNAMES_H
#define VR_VNAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "name.h"

/* What a file's seal is called beside it: "<file>.seal". */
#define VR_SEAL_SUFFIX ".seal"

/* A file's name leaves room for its seal's, "<name>.seal", within VR_NAME_MAX. */
#define VR_FILE_NAME_MAX (VR_NAME_MAX - (sizeof(VR_SEAL_SUFFIX) - 1))

/*
 * Whether a user may create NAME (LEN bytes, not NUL-terminated) in a
 * directory, the root when AT_ROOT, as a file when IS_FILE: the one rule that
 * create, mkdir, symlink, rename and import all ask. Returns 0; what
 * vr_name_syntax() says of the name; -ENAMETOOLONG for a file's name over
 * VR_FILE_NAME_MAX (its seal's name must fit); and what the table of
 * generated entries says for that directory: -EEXIST for a name generated
 * there ("verify" in every directory, "status" and "metrics" at the root),
 * -EPERM for a name of the form generated beside files ("<anything>.seal").
 */
int res_name_creatable(const char *name, size_t len, bool at_root, bool is_file);

#endif
