/* vram_client.h - libvram-client: map sealed files from a vram-residency mount, import files. */
#ifndef VRAM_CLIENT_H
#define VRAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every call returns 0 or a negative errno; vr_client_error() then says why
 * in words (the daemon's reason where it gave one), without repeating the
 * path the caller gave. A connection is not for use by two threads at once.
 */
struct vr_client;

/* What a mapping's memory is. */
enum vr_client_kind {
	VR_CLIENT_HOST = 1, /* host memory (the mock backend): PTR is a host address */
	VR_CLIENT_CUDA = 2, /* device memory: PTR is a CUDA device address (CUdeviceptr) */
};

struct vr_mapping {
	void *ptr;     /* the file's first byte, read-only; NULL for an empty file */
	uint64_t size; /* the file's size */
	enum vr_client_kind kind;
	const char *seal; /* the signed seal (JSON), NUL-terminated */
	size_t seal_len;
	/* the library's own: */
	uint32_t lease;
	uint64_t mapped; /* bytes of address space mapped at PTR */
};

/* Flags of vr_client_map. */
#define VR_CLIENT_VERIFY 1u /* re-check the digest on the device before handing it out */

/*
 * Connects to the daemon serving the mount that holds MOUNT_PATH (the mount
 * point or any path inside it); the socket's path is read from the mount's
 * status. Returns 0, -ENOENT (not a vram-residency mount, or it has no
 * socket), -EACCES, -ECONNREFUSED, -ENOMEM.
 */
int vr_client_connect(const char *mount_path, struct vr_client **out);
/* Connects to the socket at SOCKET_PATH; MOUNT is the mount point paths are relative to. */
int vr_client_connect_socket(const char *socket_path, const char *mount, struct vr_client **out);
/*
 * Maps sealed file PATH (on the mount: absolute, or relative to the mount
 * point; symbolic links are resolved here) read-only into this process,
 * without a copy: the very memory the daemon verifies. FLAGS:
 * VR_CLIENT_VERIFY. The lease lasts until vr_client_unmap or the
 * connection's end; meanwhile the file cannot be removed or replaced.
 * Returns 0, -ENOENT, -EACCES, -EAGAIN (not sealed yet), -EIO (it failed a
 * check), -EOPNOTSUPP (this build cannot import the daemon's memory kind).
 */
int vr_client_map(struct vr_client *c, const char *path, unsigned flags, struct vr_mapping **out);
/* Copies LEN bytes at OFF of mapping M into host memory BUF (from the GPU for device memory,
 * for callers without CUDA code of their own). Returns 0, -EINVAL or -EIO. */
int vr_client_read(struct vr_client *c, const struct vr_mapping *m, uint64_t off, void *buf,
		   size_t len);
/* Re-checks the mapped file's digest on the device now. Returns 0, or -EIO: it differs from
 * its seal (the daemon has quarantined it) or a check failed; -ESTALE: the file's owner or
 * root ended the lease (vr_client_revoke); -ECONNRESET: the daemon stopped (the mapping
 * keeps the bytes it had). */
int vr_client_verify(struct vr_client *c, struct vr_mapping *m);
/* Unmaps and ends the lease; NULL is fine. Returns 0 or -errno (the memory is unmapped
 * regardless). */
int vr_client_unmap(struct vr_client *c, struct vr_mapping *m);
/*
 * Loads what FD reads (a regular file open for reading) into DEST on the
 * mount with permission bits MODE, and seals it exactly as cp would: same
 * checks, seal and audit. The daemon reads FD itself, in large pieces.
 * *LOADED (may be NULL) gets the bytes loaded. Returns 0 or -errno (-EIO:
 * loaded but refused at sealing; the daemon's log and verify say why).
 */
int vr_client_import(struct vr_client *c, int fd, const char *dest, mode_t mode, uint64_t *loaded);
/* Where vr_client_load stands, after each file it sealed. */
struct vr_client_progress {
	uint64_t files_done, files; /* files sealed, of those to load */
	uint64_t bytes_done, bytes; /* their bytes, of all */
	const char *src, *dest;	    /* the file just sealed */
	uint64_t size;		    /* its bytes */
};
/* Returns 0 to go on; anything else stops the load, which then removes what it made. */
typedef int (*vr_client_progress_fn)(const struct vr_client_progress *p, void *arg);
/*
 * Loads SRC (a regular file, or a directory with everything below it) as
 * DEST on a mount, sealed as cp -rL would (links in the source are
 * followed: a Hugging Face snapshot's links load as their blobs; a link
 * back up the tree is refused as a loop), over up to JOBS connections at
 * once (0: one per two CPUs; at most 16), largest files first. Folders are
 * made first (writable by their maker until their files are in);
 * permission bits are the source's less the umask. Refused before anything
 * is made: a tree larger than the mount's free device memory (-ENOSPC), a
 * file loaded onto itself (-EINVAL), two sources into one name (-EEXIST),
 * a destination through another user's link in a shared sticky folder
 * (-EACCES, as fs.protected_symlinks). A failure partway stops the rest and
 * removes what this call made (each file and folder only if its name still
 * holds what was made; a file it replaced stays replaced), so a tree is
 * loaded whole or not at all. PROGRESS (may be NULL) is called after each
 * file, from the loading threads, one call at a time. ERR (CAP bytes, may
 * be NULL) gets the reason of a failure. Returns 0 or -errno. VR_CLIENT_DIRECT
 * or'd into JOBS opens each source with O_DIRECT where its filesystem allows
 * (a block device's; others are read as usual): the daemon then reads it
 * into its staging past the page cache, for a model not already cached.
 */
#define VR_CLIENT_DIRECT 0x10000u
int vr_client_load(const char *src, const char *dest, unsigned jobs, vr_client_progress_fn progress,
		   void *arg, char *err, size_t cap);
/* vr_client_load of N sources SRC[i] into DEST[i], all or nothing together. */
int vr_client_load_all(const char *const *src, const char *const *dest, size_t n, unsigned jobs,
		       vr_client_progress_fn progress, void *arg, char *err, size_t cap);
/*
 * Ends every lease on file PATH, whoever holds it (revoke): allowed to the file's owner and
 * root. Each holder's next call on its lease answers -ESTALE; the file may then be removed or
 * replaced, and the holders' mappings read zeros. *ENDED (may be NULL) gets how many ended.
 * Returns 0, -ENOENT, -EACCES, -EPERM (not the owner), -EISDIR or -EINVAL. Audited.
 */
int vr_client_revoke(struct vr_client *c, const char *path, unsigned *ended);
/*
 * Evicts file PATH, or every sealed file below folder PATH, to host memory: its device memory
 * is freed, its seal kept (docs/operations.md, "Sharing the GPU"). Allowed to the file's owner
 * and root; files open or mapped stay. With RESTORE (any user who may read it), brings it back
 * to the device, checked there against its seal first. *MOVED (may be NULL) gets how many
 * files moved; vr_client_error() then says what was left and why (empty when nothing was).
 * Returns 0, -ENOENT, -EACCES, -EPERM, -EBUSY, -ENOSPC, -EINVAL (not sealed), -EIO (its bytes
 * changed while evicted: quarantined) or -EOPNOTSUPP. Audited.
 */
int vr_client_evict(struct vr_client *c, const char *path, int restore, unsigned *moved);
/* The last failure's reason; never NULL. */
const char *vr_client_error(const struct vr_client *c);
/* Closes the connection: every mapping still made through it is unmapped and its lease
 * ends. NULL is fine. */
void vr_client_close(struct vr_client *c);

#ifdef __cplusplus
}
#endif

#endif
