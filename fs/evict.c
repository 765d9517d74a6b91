/* evict.c - eviction's side of the daemon: the host store evicted files wait in (a mock backend
 * over host memory, or over files in evict_dir), and the policy's thread polling NVML. */
#include "evict.h"

#include "backends.h"
#include "log.h"
#include "nvml.h"
#include "residency.h"
#include "size.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Defaults (docs/operations.md, "Sharing the GPU"). */
#define KEEP_FREE_PCT	10   /* of the device's memory, left free for other processes */
#define MARGIN_PCT	5    /* more, free after a restore: the hysteresis */
#define INTERVAL_S	2.0  /* NVML polled this often */
#define MIN_RESIDENT_S	30.0 /* a file stays this long after a load or restore */
#define RESTORE_DELAY_S 10.0 /* no pressure this long before restores */
#define SECONDS_MAX	86400.0
#define INTERVAL_MIN_S	0.05

struct vr_evict {
	struct vr_backend store;
	bool have_store;
	bool nvml;	 /* evict=nvml */
	double interval; /* seconds */
	char uuid[128];
	int index;
	struct vr_residency *res;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* [lock] */
};

/* "N%" into *PCT (0..100) or a size into *BYTES; returns 0 or -EINVAL. */
static int parse_share(const char *s, unsigned *pct, uint64_t *bytes)
{
	size_t len = strlen(s);

	*pct = 0;
	*bytes = 0;
	if (len > 1 && s[len - 1] == '%') {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end != s + len - 1 || v > 100 || s[0] < '0' || s[0] > '9')
			return -EINVAL;
		*pct = (unsigned)v;
		return 0;
	}
	return vr_size_parse(s, bytes);
}

/* Seconds in [MIN, SECONDS_MAX]; returns 0 or -EINVAL. */
static int parse_seconds(const char *s, double min, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !isfinite(v) || v < min || v > SECONDS_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

int vr_evict_opts_check(const struct vr_evict_opts *o)
{
	unsigned pct;
	uint64_t b;
	double s;

	if (o->mode && strcmp(o->mode, "off") && strcmp(o->mode, "nvml")) {
		fprintf(stderr, "vram-residency: evict=%s: use off or nvml\n", o->mode);
		return -2;
	}
	if (o->restore && strcmp(o->restore, "auto") && strcmp(o->restore, "manual")) {
		fprintf(stderr, "vram-residency: restore=%s: use auto or manual\n", o->restore);
		return -2;
	}
	if ((o->keep_free && parse_share(o->keep_free, &pct, &b)) ||
	    (o->margin && parse_share(o->margin, &pct, &b))) {
		fprintf(stderr, "vram-residency: evict_free= and evict_margin= take a size such "
				"as 4G or a share of the device such as 10%%\n");
		return -2;
	}
	if ((o->interval && parse_seconds(o->interval, INTERVAL_MIN_S, &s)) ||
	    (o->min_resident && parse_seconds(o->min_resident, 0, &s)) ||
	    (o->restore_delay && parse_seconds(o->restore_delay, 0, &s))) {
		fprintf(stderr, "vram-residency: evict_interval= (at least 0.05), "
				"evict_min_resident= and evict_restore_delay= take seconds, such "
				"as 2 or 0.5\n");
		return -2;
	}
	if (o->host_max && (vr_size_parse(o->host_max, &b) != 0 || (b && b < (1ULL << 20)))) {
		fprintf(stderr,
			"vram-residency: evict_host_max=%s: use a size of at least 1M, such as 16G "
			"(whole MiB count), or 0 for no eviction\n",
			o->host_max);
		return -2;
	}
	return 0;
}

/* A share of TOTAL: PCT percent of it, or BYTES. */
static uint64_t share(const char *s, uint64_t total, uint64_t fallback_pct)
{
	unsigned pct = (unsigned)fallback_pct;
	uint64_t bytes = 0;

	if (s)
		parse_share(s, &pct, &bytes);
	return bytes ? bytes : total / 100 * pct;
}

/* Half the host's memory, whole MiB: the store's default limit. */
static uint64_t default_host_max(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || size <= 0)
		return 1ULL << 30;
	return (uint64_t)pages * (uint64_t)size / 2;
}

/* Opens the store: the mock over host memory, capacity LIMIT, in DIR's files when given. */
static int open_store(struct vr_evict *e, uint64_t limit, const char *dir, bool restoring)
{
	char cap[32];
	struct vr_backend_opt opts[2] = {{"capacity", cap}, {"vram", dir}};
	struct vr_backend_params p = {.opts = opts, .nopts = dir ? 2 : 1, .restoring = restoring};
	int ret;

	snprintf(cap, sizeof(cap), "%lluM", (unsigned long long)(limit >> 20));
	ret = vr_backend_open(&vr_mock_ops, &p, &e->store);
	if (ret) {
		vr_log(LOG_ERR, "cannot open the host store for evicted files%s%s: %s",
		       dir ? " in evict_dir=" : "", dir ? dir : "", strerror(-ret));
		return -1;
	}
	e->have_store = true;
	return 0;
}

int vr_evict_open(const struct vr_evict_opts *o, const struct vr_device_info *dev, bool restoring,
		  struct vr_evict **out, struct vr_res_config *cfg)
{
	struct vr_evict *e = calloc(1, sizeof(*e));
	uint64_t limit = default_host_max();
	struct vr_res_evict_policy *p = &cfg->evict;

	if (!e)
		return -1;
	pthread_condattr_t ca;

	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* pause_for's deadlines */
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (o->host_max)
		vr_size_parse(o->host_max, &limit);
	if (limit >= (1ULL << 20) && open_store(e, limit, o->dir, restoring) != 0) {
		vr_evict_free(e);
		return -1;
	}
	cfg->evict_store = e->have_store ? &e->store : NULL;
	cfg->restore_manual = o->restore && strcmp(o->restore, "manual") == 0;
	e->nvml = o->mode && strcmp(o->mode, "nvml") == 0 && e->have_store;
	*p = (struct vr_res_evict_policy){.on = e->nvml,
					  .keep_free =
					      share(o->keep_free, dev->total_bytes, KEEP_FREE_PCT),
					  .margin = share(o->margin, dev->total_bytes, MARGIN_PCT),
					  .min_resident = MIN_RESIDENT_S,
					  .restore_delay = RESTORE_DELAY_S};
	e->interval = INTERVAL_S;
	if (o->interval)
		parse_seconds(o->interval, INTERVAL_MIN_S, &e->interval);
	if (o->min_resident)
		parse_seconds(o->min_resident, 0, &p->min_resident);
	if (o->restore_delay)
		parse_seconds(o->restore_delay, 0, &p->restore_delay);
	snprintf(e->uuid, sizeof(e->uuid), "%s", dev->uuid);
	e->index = dev->index;
	if (o->mode && strcmp(o->mode, "nvml") == 0 && !e->have_store)
		vr_log(LOG_WARNING, "evict=nvml with evict_host_max=0: no eviction, no policy");
	*out = e;
	return 0;
}

/* Waits SECONDS or until stopped; returns whether to go on. */
static bool pause_for(struct vr_evict *e, double seconds)
{
	struct timespec t;
	bool go;

	clock_gettime(CLOCK_MONOTONIC, &t);
	time_t whole = (time_t)seconds; /* at least 0.05, at most a day */

	t.tv_sec += whole;
	t.tv_nsec += (long)((seconds - (double)whole) * 1e9);
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&e->lock);
	while (!e->stop && pthread_cond_timedwait(&e->cond, &e->lock, &t) == 0)
		;
	go = !e->stop;
	pthread_mutex_unlock(&e->lock);
	return go;
}

/* Says what the policy does now, in status (and, when LEVEL >= 0, in the log). */
static void say(struct vr_evict *e, int level, const char *fmt, ...)
{
	char text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (level >= 0)
		vr_log(level, "evict=nvml: %s", text);
	vr_res_evict_state(e->res, text);
}

/* One sample and one step of the policy; *FAILING: NVML failed the last time (said once). */
static void step(struct vr_evict *e, struct vr_nvml *n, bool *failing)
{
	struct vr_gpu_sample g;
	struct timespec t;
	char why[256];

	if (vr_nvml_sample(n, getpid(), &g, why, sizeof(why)) != 0) {
		if (!*failing)
			say(e, LOG_WARNING, "NVML failing, no decision: %s", why);
		*failing = true;
		return;
	}
	if (*failing)
		say(e, LOG_INFO, "NVML answers again: polling every %.2f s", e->interval);
	*failing = false;
	clock_gettime(CLOCK_MONOTONIC, &t);
	struct vr_res_pressure s = {.total = g.total,
				    .free = g.free,
				    .others_bytes = g.others_bytes,
				    .others = g.others,
				    .now = (double)t.tv_sec + (double)t.tv_nsec / 1e9};

	vr_res_evict_tick(e->res, &s);
}

/* The policy's thread: a sample every interval, one step of the policy after it. */
static void *poll_loop(void *arg)
{
	struct vr_evict *e = arg;
	struct vr_nvml *n = NULL;
	char why[256];
	bool failing = false;

	if (vr_nvml_open(e->uuid, e->index, &n, why, sizeof(why)) != 0) {
		say(e, LOG_WARNING, "off: no eviction policy: %s", why);
		return NULL;
	}
	say(e, LOG_INFO, "polling NVML every %.2f s", e->interval);
	while (pause_for(e, e->interval))
		step(e, n, &failing);
	vr_nvml_close(n);
	return NULL;
}

int vr_evict_start(struct vr_evict *e, struct vr_residency *r)
{
	if (!e || !e->nvml)
		return 0;
	e->res = r;
	if (pthread_create(&e->thread, NULL, poll_loop, e) != 0) {
		vr_log(LOG_ERR, "evict=nvml: cannot start the policy's thread");
		return -1;
	}
	e->running = true;
	return 0;
}

void vr_evict_stop(struct vr_evict *e)
{
	if (!e || !e->running)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	e->running = false;
}

void vr_evict_free(struct vr_evict *e)
{
	if (!e)
		return;
	vr_evict_stop(e);
	if (e->have_store)
		vr_backend_close(&e->store);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void vr_evict_help(void)
{
	printf(
	    "    -o evict=off|nvml          nvml: give device memory back while other processes\n"
	    "                               need it, and bring the files back when they leave\n"
	    "                               (default off; vram-evict moves files by hand)\n"
	    "    -o evict_free=SIZE|N%%      device memory the policy keeps free while other\n"
	    "                               processes run (default 10%%)\n"
	    "    -o evict_margin=SIZE|N%%    more, free after a restore (default 5%%)\n"
	    "    -o evict_interval=S        seconds between NVML polls (default 2)\n"
	    "    -o evict_min_resident=S    seconds a file stays after a load or restore\n"
	    "                               before the policy may evict it (default 30)\n"
	    "    -o evict_restore_delay=S   seconds without pressure before restores (default\n"
	    "                               10)\n"
	    "    -o evict_host_max=SIZE     host memory evicted files may take (default half\n"
	    "                               the host's; 0: no eviction)\n"
	    "    -o evict_dir=DIR           keep evicted bytes in files in DIR (root's, mode\n"
	    "                               700), for sets larger than memory\n"
	    "    -o restore=auto|manual     manual: an open or map of an evicted file answers\n"
	    "                               EAGAIN instead of restoring it (default auto)\n");
}

void vr_evict_opts_free(struct vr_evict_opts *o)
{
	free(o->mode);
	free(o->keep_free);
	free(o->margin);
	free(o->interval);
	free(o->min_resident);
	free(o->restore_delay);
	free(o->host_max);
	free(o->dir);
	free(o->restore);
}
