/* client_private.h - what libvram-client's files share and do not export. */
#ifndef VR_CLIENT_PRIVATE_H
#define VR_CLIENT_PRIVATE_H

#include "vram_client.h"

/* vr_client_import, and *INO (may be NULL) gets the new file's inode number (as stat(2) on
 * the mount shows it), so a load that undoes itself removes only the files it made. */
__attribute__((visibility("hidden"))) int vr_client_import_ino(struct vr_client *c, int fd,
							       const char *dest, mode_t mode,
							       uint64_t *loaded, uint64_t *ino);

#endif
