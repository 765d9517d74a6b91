/* channel.h - the daemon's side of /dev/fuse: what passes is read, an fstat is helped, and
 * directories' names are kept. */
#ifndef VR_CHANNEL_H
#define VR_CHANNEL_H

#include "options.h" /* FUSE_USE_VERSION before <fuse.h> */

#include <fuse.h>

/*
 * Puts the channel between SE and the kernel (after the mount, before the loop). The kernel
 * asks for an fstat's attributes by inode, never by descriptor, and libfuse's path-based API
 * can answer an inode only while it has a name: an open file that was removed would read
 * ESTALE. The channel remembers which handle each open returned and gives such a request
 * one of them, so the file's attributes (with nlink 0) are answered through the handle; so
 * is a change of mode, owner or times (fchmod, fchown, futimens), never of size. A
 * handle is never given to a request once its release has arrived, and a release waits for
 * the requests given its handle. It also lets the kernel keep a directory's name for a second
 * (DIR_ENTRY_SECONDS in channel.c), where libfuse's options can only say one thing for every
 * name. Returns 0 or -errno (then nothing changed).
 */
int vr_channel_install(struct fuse_session *se);
/* Forgets what it remembers (after the loop). */
void vr_channel_clear(void);

#endif
