/* nvml.c - the device's memory and the processes on it, from libnvidia-ml opened by dlopen. */
#include "nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The few NVML ABI types and values used, declared from NVIDIA's NVML API
 * reference (no nvml.h is needed to build): nvmlReturn_t is an enum (int),
 * nvmlDevice_t an opaque pointer.
 */
#define NVML_SUCCESS		     0
#define NVML_ERROR_INVALID_ARGUMENT  2
#define NVML_ERROR_NOT_FOUND	     6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_VALUE_NOT_AVAILABLE     (~0ULL)

struct nvml_device;

/* nvmlMemory_v2_t; its version is NVML_STRUCT_VERSION(Memory, 2) */
struct nvml_memory_v2 {
	unsigned int version;
	unsigned long long total;
	unsigned long long reserved;
	unsigned long long free;
	unsigned long long used;
};
#define NVML_MEMORY_V2 ((unsigned int)(sizeof(struct nvml_memory_v2) | (2u << 24)))

/* nvmlProcessInfo_t, as the _v3 process lists fill it */
struct nvml_proc {
	unsigned int pid;
	unsigned long long used; /* NVML_VALUE_NOT_AVAILABLE when NVML does not know */
	/* cppcheck-suppress unusedStructMember ; the ABI's, filled by NVML */
	unsigned int gpu_instance;
	/* cppcheck-suppress unusedStructMember ; the ABI's, filled by NVML */
	unsigned int compute_instance;
};

/* a process list's first guess, how often a list that grew between calls is asked again,
 * and a bound on what a count from NVML may make us allocate */
#define PROCS_FIRST 64
#define PROCS_TRIES 4
#define PROCS_MAX   (1u << 20)

typedef int (*nvml_procs_fn)(struct nvml_device *, unsigned int *, struct nvml_proc *);

/*
 * One NVML session on one device. No lock: one caller at a time (BUF is reused by every
 * sample); NVML's own calls are thread-safe, so distinct sessions may run side by side.
 */
struct vr_nvml {
	void *lib;
	struct nvml_device *dev;
	int (*init)(void);
	int (*shutdown)(void);
	const char *(*error_string)(int);
	int (*by_uuid)(const char *, struct nvml_device **);
	int (*by_index)(unsigned int, struct nvml_device **);
	int (*memory)(struct nvml_device *, struct nvml_memory_v2 *);
	nvml_procs_fn procs[2]; /* compute, graphics */
	struct nvml_proc *buf;	/* both lists of one sample, side by side */
	unsigned int cap;	/* entries in BUF */
};

/* Writes why into WHY (CAP bytes); returns ERR. */
static int say(char *why, size_t cap, int err, const char *fmt, ...)
{
	if (why && cap) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* NVML's text for R. */
static const char *nvml_text(const struct vr_nvml *n, int r)
{
	const char *s = n->error_string(r);

	return s ? s : "no error text";
}

/* Loads the library and its symbols into N; 0 or -ENOENT. */
static int nvml_load(struct vr_nvml *n, char *why, size_t cap)
{
	const char *name = getenv("VRAM_NVML_LIB");
	struct {
		const char *sym;
		void **slot;
	} fns[] = {{"nvmlInit_v2", (void **)&n->init},
		   {"nvmlShutdown", (void **)&n->shutdown},
		   {"nvmlErrorString", (void **)&n->error_string},
		   {"nvmlDeviceGetHandleByUUID", (void **)&n->by_uuid},
		   {"nvmlDeviceGetHandleByIndex_v2", (void **)&n->by_index},
		   {"nvmlDeviceGetMemoryInfo_v2", (void **)&n->memory},
		   {"nvmlDeviceGetComputeRunningProcesses_v3", (void **)&n->procs[0]},
		   {"nvmlDeviceGetGraphicsRunningProcesses_v3", (void **)&n->procs[1]}};

	if (!name || !*name)
		name = "libnvidia-ml.so.1";
	n->lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!n->lib) {
		const char *e = dlerror();

		/* returned apart from say(): clang-analyzer does not follow a variadic call, and
		 * would take the symbols for loaded */
		say(why, cap, -ENOENT, "NVML: %s", e ? e : name);
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		*fns[i].slot = dlsym(n->lib, fns[i].sym);
		if (!*fns[i].slot) {
			dlclose(n->lib);
			n->lib = NULL;
			say(why, cap, -ENOENT, "NVML: %s has no %s", name, fns[i].sym);
			return -ENOENT;
		}
	}
	return 0;
}

/* -ENODEV for NVML's answers meaning no such device (an index past its devices, a UUID none
 * has), else -EIO. */
static int find_errno(int r)
{
	return r == NVML_ERROR_INVALID_ARGUMENT || r == NVML_ERROR_NOT_FOUND ? -ENODEV : -EIO;
}

/* The device UUID or INDEX names, into N->dev; 0, -ENODEV or -EIO. */
static int nvml_find(struct vr_nvml *n, const char *uuid, int index, char *why, size_t cap)
{
	int r;

	if (uuid && strncmp(uuid, "GPU-", 4) == 0) {
		r = n->by_uuid(uuid, &n->dev);
		if (r == NVML_SUCCESS)
			return 0;
		return say(why, cap, find_errno(r), "NVML: no device %s: %s", uuid,
			   nvml_text(n, r));
	}
	if (index < 0)
		return say(why, cap, -ENODEV, "NVML: no device %d", index);
	r = n->by_index((unsigned int)index, &n->dev);
	if (r == NVML_SUCCESS)
		return 0;
	return say(why, cap, find_errno(r), "NVML: no device %d: %s", index, nvml_text(n, r));
}

/* Opens NVML for the device whose UUID is UUID (CUDA's "GPU-…" text) or, when UUID is NULL or
 * does not start with "GPU-", device INDEX. WHY (CAP bytes) says what failed, for one log line.
 * Returns 0, -ENOENT (no libnvidia-ml, or a symbol missing), -ENODEV (no such device), -ENOMEM
 * or -EIO (NVML failed: its nvmlErrorString in WHY). */
int vr_nvml_open(const char *uuid, int index, struct vr_nvml **out, char *why, size_t cap)
{
	struct vr_nvml *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return say(why, cap, -ENOMEM, "NVML: out of memory");
	r = nvml_load(n, why, cap);
	if (r)
		goto err_free;
	r = n->init();
	if (r != NVML_SUCCESS) {
		r = say(why, cap, -EIO, "NVML: nvmlInit_v2: %s", nvml_text(n, r));
		goto err_unload;
	}
	r = nvml_find(n, uuid, index, why, cap);
	if (r)
		goto err_shutdown;
	*out = n;
	return 0;

err_shutdown:
	n->shutdown();
err_unload:
	dlclose(n->lib);
err_free:
	free(n);
	return r;
}

/* Makes room for WANT entries in N->buf (what it held is kept); 0 or -ENOMEM. */
static int procs_room(struct vr_nvml *n, unsigned int want, char *why, size_t cap)
{
	struct nvml_proc *p;

	if (want <= n->cap)
		return 0;
	p = realloc(n->buf, (size_t)want * sizeof(*p));
	if (!p)
		return say(why, cap, -ENOMEM, "NVML: out of memory for %u processes", want);
	n->buf = p;
	n->cap = want;
	return 0;
}

/* Process list WHICH (0 compute, 1 graphics) into N->buf from entry AT on; its length in *GOT.
 * Returns 0, -ENOMEM or -EIO. */
static int procs_get(struct vr_nvml *n, int which, unsigned int at, unsigned int *got, char *why,
		     size_t cap)
{
	static const char *const names[] = {"nvmlDeviceGetComputeRunningProcesses_v3",
					    "nvmlDeviceGetGraphicsRunningProcesses_v3"};
	unsigned long long want = (unsigned long long)at + PROCS_FIRST;

	for (int tries = 0; tries < PROCS_TRIES; tries++) {
		unsigned int count;
		int r;

		if (want > PROCS_MAX)
			return say(why, cap, -EIO, "NVML: %s: %llu processes", names[which], want);
		r = procs_room(n, (unsigned int)want, why, cap);
		if (r)
			return r;
		count = n->cap - at;
		r = n->procs[which](n->dev, &count, n->buf + at);
		if (r == NVML_SUCCESS) {
			*got = count < n->cap - at ? count : n->cap - at;
			return 0;
		}
		if (r != NVML_ERROR_INSUFFICIENT_SIZE)
			return say(why, cap, -EIO, "NVML: %s: %s", names[which], nvml_text(n, r));
		/* COUNT is what the list holds now: leave room for a few that start meanwhile,
		 * and grow even if NVML's count does not */
		want = (unsigned long long)at + count + count / 4 + 8;
		if (want <= n->cap)
			want = 2ULL * n->cap;
	}
	return say(why, cap, -EIO, "NVML: %s: the list kept growing", names[which]);
}

static int proc_cmp(const void *a, const void *b)
{
	unsigned int x = ((const struct nvml_proc *)a)->pid;
	unsigned int y = ((const struct nvml_proc *)b)->pid;

	return (x > y) - (x < y);
}

/* Sums the first LEN entries of N->buf (sorted here) into S: each pid once, at the largest
 * amount NVML gives for it, SELF left out. */
static void procs_sum(struct vr_nvml *n, unsigned int len, pid_t self, struct vr_gpu_sample *s)
{
	qsort(n->buf, len, sizeof(*n->buf), proc_cmp);
	for (unsigned int i = 0, j; i < len; i = j) {
		unsigned long long most = NVML_VALUE_NOT_AVAILABLE;

		for (j = i; j < len && n->buf[j].pid == n->buf[i].pid; j++)
			if (n->buf[j].used != NVML_VALUE_NOT_AVAILABLE &&
			    (most == NVML_VALUE_NOT_AVAILABLE || n->buf[j].used > most))
				most = n->buf[j].used;
		if ((pid_t)n->buf[i].pid == self)
			continue;
		s->others++;
		if (most == NVML_VALUE_NOT_AVAILABLE)
			s->unknown++;
		else /* saturating: a driver's nonsense must not wrap to little */
			s->others_bytes = most > UINT64_MAX - s->others_bytes
					      ? UINT64_MAX
					      : s->others_bytes + most;
	}
}

/* One sample of the device's memory and of the processes on it other than SELF; returns 0,
 * -ENOMEM or -EIO (WHY says why). */
int vr_nvml_sample(struct vr_nvml *n, pid_t self, struct vr_gpu_sample *out, char *why, size_t cap)
{
	struct nvml_memory_v2 mem = {.version = NVML_MEMORY_V2};
	struct vr_gpu_sample s = {0};
	unsigned int compute = 0, graphics = 0;
	int r;

	r = n->memory(n->dev, &mem);
	if (r != NVML_SUCCESS)
		return say(why, cap, -EIO, "NVML: nvmlDeviceGetMemoryInfo_v2: %s", nvml_text(n, r));
	r = procs_get(n, 0, 0, &compute, why, cap);
	if (r)
		return r;
	r = procs_get(n, 1, compute, &graphics, why, cap);
	if (r)
		return r;
	procs_sum(n, compute + graphics, self, &s);
	s.total = mem.total;
	s.free = mem.free;
	*out = s;
	return 0;
}

/* Shuts NVML down and unloads it; NULL is fine. */
void vr_nvml_close(struct vr_nvml *n)
{
	if (!n)
		return;
	n->shutdown();
	dlclose(n->lib);
	free(n->buf);
	free(n);
}
