/* name.h - validation of every name a user can create in the tree. */
#ifndef VR_NAME_H
#define VR_NAME_H

#include <stddef.h>

#define VR_NAME_MAX    255
#define VR_SEAL_SUFFIX ".seal"
/* A file's name leaves room for its seal's, "<name>.seal", within VR_NAME_MAX. */
#define VR_FILE_NAME_MAX (VR_NAME_MAX - 5)

/*
 * Checks one path component a user wants to create. Returns 0; -EINVAL for an
 * empty name, ".", "..", a '/', a control character or invalid UTF-8;
 * -ENAMETOOLONG over 255 bytes; -EEXIST for "verify" and "status" (they exist
 * in every directory); -EPERM for a name ending in ".seal".
 */
int vr_name_validate(const char *name);
/* Same, for LEN bytes that need not be NUL-terminated (a NUL inside is -EINVAL). */
int vr_name_validate_n(const char *name, size_t len);
/* Same for a file's name: -ENAMETOOLONG over VR_FILE_NAME_MAX (250) bytes. */
int vr_name_validate_file_n(const char *name, size_t len);

#endif
