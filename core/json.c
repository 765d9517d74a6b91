/* json.c - cJSON parsing that tells a failed allocation from text that is not JSON. */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether object V names a member twice: pairwise when small, else sorted (so a hostile text
 * of a million members costs n log n, not n squared). -ENOMEM without memory. */
static int object_repeats(const cJSON *v)
{
	const cJSON *a, *b;
	const char **names;
	size_t n = 0, i = 0;
	int ret = 0;

	for (a = v->child; a; a = a->next)
		n++;
	if (n <= 16) {
		for (a = v->child; a; a = a->next)
			for (b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0) /* members have names */
					return 1;
		return 0;
	}
	names = malloc(n * sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (a = v->child; a; a = a->next)
		names[i++] = a->string;
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 1; i < n && !ret; i++)
		ret = strcmp(names[i - 1], names[i]) == 0;
	free(names);
	return ret;
}

/* Whether an object in V, or below it, names a member twice (1), or -ENOMEM. The recursion is
 * as deep as the text nests, which cJSON bounds (CJSON_NESTING_LIMIT). */
static int repeats_a_name(const cJSON *v)
{
	int ret = cJSON_IsObject(v) ? object_repeats(v) : 0;

	for (const cJSON *a = v->child; a && !ret; a = a->next)
		ret = repeats_a_name(a);
	return ret;
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
	int rep = v ? repeats_a_name(v) : 0;

	if (rep) {
		cJSON_Delete(v);
		v = NULL;
		*err = rep < 0 ? rep : -ENOTUNIQ;
	}
	return v;
}
