/* json.h - cJSON parsing that tells a failed allocation from text that is not JSON. */
#ifndef VR_JSON_H
#define VR_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * Parses LEN bytes of TEXT as one JSON value (END, if not NULL, gets where it ended; text may
 * follow). Returns the value, or NULL with *ERR set to -ENOMEM (an allocation failed: the
 * text may be fine) or -EINVAL (the text is not JSON). cJSON's own NULL says neither.
 */
cJSON *vr_json_parse(const char *text, size_t len, const char **end, int *err);

#endif
