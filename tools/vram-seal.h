/* vram-seal.h - inside vram-seal: what its files share. vram-seal.c holds the commands on a
 * file and on the audit log, vram-seal-tree.c those on a directory. */
#ifndef VR_VRAM_SEAL_H
#define VR_VRAM_SEAL_H

#include <stddef.h>

/* Maps FD (SIZE bytes, may be 0) read-only; returns 0 or -errno. */
int map_file(int fd, size_t size, const void **out);
/* Reads a whole small file into a malloc'd buffer; returns 0 or -errno. */
int slurp(const char *path, size_t max, char **out, size_t *len);

/* vram-seal manifest DIR: prints the SHA256SUMS of every file below DIR; the exit status. */
int cmd_manifest(int argc, char **argv);
/* vram-seal verify-model --trust KEY DIR: checks DIR against its model.sig; the exit status. */
int cmd_verify_model(int argc, char **argv);

#endif
