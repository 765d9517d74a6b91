/* json.c - cJSON parsing that tells a failed allocation from text that is not JSON. */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* set by the allocator cJSON is given when an allocation of this thread's fails */
static __thread bool json_oom;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *json_malloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		json_oom = true;
	return p;
}

static void install_hooks(void)
{
	cJSON_Hooks h = {json_malloc, free};

	cJSON_InitHooks(&h);
}

cJSON *vr_json_parse(const char *text, size_t len, const char **end, int *err)
{
	const char *stop = NULL;
	cJSON *v;

	pthread_once(&hooks_once, install_hooks);
	json_oom = false;
	v = cJSON_ParseWithLengthOpts(text, len, &stop, 0);
	if (end)
		*end = stop;
	*err = v ? 0 : json_oom ? -ENOMEM : -EINVAL;
	return v;
}
