/* vnames.h - the generated entries (verify, status, <file>.seal): which names are taken where. */
#ifndef VR_VNAMES_H
#define VR_VNAMES_H

#include <stdbool.h>
#include <stddef.h>

/* What a file's seal is called beside it: "<file>.seal". */
#define VR_SEAL_SUFFIX ".seal"

/*
 * Whether a user may create NAME (LEN bytes) in a directory, as far as the
 * generated entries go: -EEXIST for a name that is generated in every such
 * directory ("verify" everywhere, "status" at the root), -EPERM for a name
 * of the form the generated entries use beside files ("<anything>.seal"),
 * 0 otherwise. The one table in vnames.c decides; name.c and the tree ask it.
 */
int vr_vname_reserved(const char *name, size_t len, bool at_root);

#endif
