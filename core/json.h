/* json.h - cJSON parsing that tells a failed allocation from text that is not JSON. */
#ifndef VR_JSON_H
#define VR_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* What a refusal of a repeated member name says (VR_JSON_REPEATED's text). */
#define VR_JSON_REPEATED_WHY                                                                       \
	"a JSON object names a member twice (parsers differ on which they keep)"

/*
 * Parses LEN bytes of TEXT as one JSON value (END, if not NULL, gets where it ended; text may
 * follow). Returns the value, or NULL with *ERR set to -ENOMEM (an allocation failed: the
 * text may be fine), -EINVAL (the text is not JSON) or -ENOTUNIQ (an object names a member
 * twice: one parser would keep the first, another the last, so a signed text could be read two
 * ways). cJSON's own NULL says none of these.
 */
cJSON *vr_json_parse(const char *text, size_t len, const char **end, int *err);

#endif
