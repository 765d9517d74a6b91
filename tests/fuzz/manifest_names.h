/* manifest_names.h - what the fuzz targets of the sums parsers promise of an accepted manifest's
 * names: sorted, unique, relative, normalized, and found again by name (abort() otherwise). */
#ifndef VR_FUZZ_MANIFEST_NAMES_H
#define VR_FUZZ_MANIFEST_NAMES_H

#include "manifest.h"

#include <stdlib.h>
#include <string.h>

static inline void check_manifest_names(const struct vr_manifest *m)
{
	for (size_t i = 0; i < m->count; i++) {
		const char *n = m->entries[i].name;

		if (i && strcmp(m->entries[i - 1].name, n) >= 0)
			abort();
		if (!n[0] || n[0] == '/' || strncmp(n, "./", 2) == 0 || strstr(n, "//") ||
		    strcmp(n, "..") == 0 || strncmp(n, "../", 3) == 0 || strstr(n, "/../") ||
		    (strlen(n) >= 3 && strcmp(n + strlen(n) - 3, "/..") == 0))
			abort();
		if (vr_manifest_find(m, n) != &m->entries[i])
			abort();
	}
}

#endif
