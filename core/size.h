/* size.h - parsing of sizes with K, M, G, T suffixes (powers of 1024). */
#ifndef VR_SIZE_H
#define VR_SIZE_H

#include <stdint.h>

/* Parses "2G", "512M", "4096"; returns 0, or -EINVAL for bad syntax or overflow. */
int vr_size_parse(const char *text, uint64_t *out);

#endif
