/* fake_nvml.c - NVML as a test double (libnvidia-ml.so.1): devices a state file describes. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The NVML calls cuda/nvml.c makes, with no GPU: the state file named by
 * VR_FAKE_NVML is read again at every call, so a test changes the device by
 * renaming a new file over it. Its lines (a missing or unreadable file: the
 * defaults, no processes):
 *   total BYTES       the device's memory (16 GiB)
 *   reserved BYTES    the driver's reserve (0)
 *   used BYTES        used memory no listed process accounts for (0)
 *   uuid TEXT         device 0's UUID (GPU-00000000-fake-nvml-0000-000000000000)
 *   proc PID BYTES    a compute process; BYTES "?": NVML_VALUE_NOT_AVAILABLE
 *   gproc PID BYTES   a graphics process
 *   fail CALL         init, handle, memory or processes answer NVML_ERROR_UNKNOWN
 *   devices N         how many devices (1); every one shows the same memory and processes
 *   grow N            each compute list asked for holds N more processes than the last
 *                     one did (pids from 1000000, 1 byte each, not in the memory's used),
 *                     as if they kept starting
 * As strict as NVML where a caller could go wrong: nothing but nvmlInit_v2 and
 * nvmlErrorString before nvmlInit_v2 (NVML_ERROR_UNINITIALIZED), a memory struct
 * of another version is refused, a process list too short is answered with
 * NVML_ERROR_INSUFFICIENT_SIZE and the count needed.
 */
#define NVML_SUCCESS			     0
#define NVML_ERROR_UNINITIALIZED	     1
#define NVML_ERROR_INVALID_ARGUMENT	     2
#define NVML_ERROR_NOT_FOUND		     6
#define NVML_ERROR_INSUFFICIENT_SIZE	     7
#define NVML_ERROR_MEMORY		     20
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN		     999

struct nvml_device;
struct nvml_memory_v2 {
	unsigned int version;
	unsigned long long total, reserved, free, used;
};
struct nvml_proc {
	unsigned int pid;
	unsigned long long used;
	unsigned int gpu_instance, compute_instance;
};

int nvmlInit_v2(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int r);
int nvmlDeviceGetCount_v2(unsigned int *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, struct nvml_device **dev);
int nvmlDeviceGetHandleByUUID(const char *uuid, struct nvml_device **dev);
int nvmlDeviceGetMemoryInfo_v2(struct nvml_device *dev, struct nvml_memory_v2 *mem);
int nvmlDeviceGetComputeRunningProcesses_v3(struct nvml_device *dev, unsigned int *count,
					    struct nvml_proc *infos);
int nvmlDeviceGetGraphicsRunningProcesses_v3(struct nvml_device *dev, unsigned int *count,
					     struct nvml_proc *infos);

#define MAX_DEVICES 64
#define NOT_KNOWN   (~0ULL)
enum { FAIL_INIT = 1, FAIL_HANDLE = 2, FAIL_MEMORY = 4, FAIL_PROCESSES = 8 };

struct fake_proc {
	unsigned int pid;
	unsigned long long bytes;
};
struct fake_state {
	unsigned long long total, reserved, used;
	char uuid[96];
	unsigned int devices, fail, grow;
	struct fake_proc *procs[2]; /* compute, graphics */
	unsigned int n[2], cap[2];
};

static atomic_int inits;       /* nvmlInit_v2 calls not yet shut down */
static atomic_uint grown;      /* processes "grow" has added so far */
static char devs[MAX_DEVICES]; /* handles: &devs[i] is device i */
static const char *const fails[] = {"init", "handle", "memory", "processes"};

static int add_proc(struct fake_state *s, int which, const char *pid, const char *bytes)
{
	struct fake_proc *p;

	if (s->n[which] == s->cap[which]) {
		unsigned int cap = s->cap[which] ? 2 * s->cap[which] : 16;

		p = realloc(s->procs[which], cap * sizeof(*p));
		if (!p)
			return NVML_ERROR_MEMORY;
		s->procs[which] = p;
		s->cap[which] = cap;
	}
	p = s->procs[which];
	p[s->n[which]].pid = (unsigned int)strtoul(pid, NULL, 10);
	p[s->n[which]++].bytes = strcmp(bytes, "?") ? strtoull(bytes, NULL, 10) : NOT_KNOWN;
	return NVML_SUCCESS;
}

static int parse_line(struct fake_state *s, const char *line)
{
	char key[16], a[96], b[32] = "";

	if (sscanf(line, "%15s %95s %31s", key, a, b) < 2)
		return NVML_SUCCESS;
	if (!strcmp(key, "total"))
		s->total = strtoull(a, NULL, 10);
	else if (!strcmp(key, "reserved"))
		s->reserved = strtoull(a, NULL, 10);
	else if (!strcmp(key, "used"))
		s->used = strtoull(a, NULL, 10);
	else if (!strcmp(key, "uuid"))
		snprintf(s->uuid, sizeof(s->uuid), "%s", a);
	else if (!strcmp(key, "devices"))
		s->devices = (unsigned int)strtoul(a, NULL, 10);
	else if (!strcmp(key, "grow"))
		s->grow = (unsigned int)strtoul(a, NULL, 10);
	else if (!strcmp(key, "proc") || !strcmp(key, "gproc"))
		return add_proc(s, key[0] == 'g', a, b[0] ? b : "?");
	for (unsigned int i = 0; !strcmp(key, "fail") && i < 4; i++)
		if (!strcmp(a, fails[i]))
			s->fail |= 1u << i;
	return NVML_SUCCESS;
}

static void state_free(struct fake_state *s)
{
	free(s->procs[0]);
	free(s->procs[1]);
}

/* The state file now, into S; NVML_SUCCESS or NVML_ERROR_MEMORY. */
static int state_read(struct fake_state *s)
{
	const char *path = getenv("VR_FAKE_NVML");
	char line[256];
	int r = NVML_SUCCESS;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->total = 16ULL << 30;
	s->devices = 1;
	snprintf(s->uuid, sizeof(s->uuid), "GPU-00000000-fake-nvml-0000-000000000000");
	f = path && *path ? fopen(path, "re") : NULL;
	while (f && r == NVML_SUCCESS && fgets(line, sizeof(line), f))
		r = parse_line(s, line);
	if (f)
		fclose(f);
	if (s->devices > MAX_DEVICES)
		s->devices = MAX_DEVICES;
	if (r != NVML_SUCCESS)
		state_free(s);
	return r;
}

/* Reads the state for a call that needs NVML initialised and fails with FAIL set; NVML's
 * answer so far. */
static int state_call(struct fake_state *s, unsigned int fail)
{
	int r;

	if (atomic_load(&inits) <= 0)
		return NVML_ERROR_UNINITIALIZED;
	r = state_read(s);
	if (r == NVML_SUCCESS && (s->fail & fail)) {
		state_free(s);
		r = NVML_ERROR_UNKNOWN;
	}
	return r;
}

static int device_ok(const struct fake_state *s, const struct nvml_device *dev)
{
	const char *d = (const char *)dev;

	return d >= devs && d < devs + s->devices;
}

int nvmlInit_v2(void)
{
	struct fake_state s;
	int r = state_read(&s);

	if (r != NVML_SUCCESS)
		return r;
	r = (s.fail & FAIL_INIT) ? NVML_ERROR_UNKNOWN : NVML_SUCCESS;
	if (r == NVML_SUCCESS && atomic_fetch_add(&inits, 1) == 0)
		atomic_store(&grown, 0);
	state_free(&s);
	return r;
}

int nvmlShutdown(void)
{
	int n = atomic_load(&inits);

	while (n > 0 && !atomic_compare_exchange_weak(&inits, &n, n - 1))
		;
	return n > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

const char *nvmlErrorString(int r)
{
	switch (r) {
	case NVML_SUCCESS:
		return "Success";
	case NVML_ERROR_UNINITIALIZED:
		return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT:
		return "Invalid Argument";
	case NVML_ERROR_NOT_FOUND:
		return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE:
		return "Insufficient Size";
	case NVML_ERROR_MEMORY:
		return "Insufficient Memory";
	case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
		return "Argument Version Mismatch";
	case NVML_ERROR_UNKNOWN:
		return "Unknown Error";
	}
	return "Unknown Error Code";
}

int nvmlDeviceGetCount_v2(unsigned int *count)
{
	struct fake_state s;
	int r = state_call(&s, 0);

	if (r != NVML_SUCCESS)
		return r;
	if (count)
		*count = s.devices;
	state_free(&s);
	return count ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, struct nvml_device **dev)
{
	struct fake_state s;
	int r = state_call(&s, FAIL_HANDLE);

	if (r != NVML_SUCCESS)
		return r;
	r = dev && index < s.devices ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
	if (r == NVML_SUCCESS)
		*dev = (struct nvml_device *)&devs[index];
	state_free(&s);
	return r;
}

int nvmlDeviceGetHandleByUUID(const char *uuid, struct nvml_device **dev)
{
	struct fake_state s;
	int r = state_call(&s, FAIL_HANDLE);

	if (r != NVML_SUCCESS)
		return r;
	if (!uuid || !dev)
		r = NVML_ERROR_INVALID_ARGUMENT;
	else if (strcmp(uuid, s.uuid))
		r = NVML_ERROR_NOT_FOUND;
	else
		*dev = (struct nvml_device *)&devs[0];
	state_free(&s);
	return r;
}

int nvmlDeviceGetMemoryInfo_v2(struct nvml_device *dev, struct nvml_memory_v2 *mem)
{
	struct fake_state s;
	unsigned long long used, held;
	int r = state_call(&s, FAIL_MEMORY);

	if (r != NVML_SUCCESS)
		return r;
	if (!device_ok(&s, dev) || !mem)
		r = NVML_ERROR_INVALID_ARGUMENT;
	else if (mem->version != (unsigned int)(sizeof(*mem) | (2u << 24)))
		r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	if (r != NVML_SUCCESS)
		goto out;
	used = s.used;
	for (int k = 0; k < 2; k++)
		for (unsigned int i = 0; i < s.n[k]; i++)
			used += s.procs[k][i].bytes == NOT_KNOWN ? 0 : s.procs[k][i].bytes;
	held = s.reserved + used;
	mem->total = s.total;
	mem->reserved = s.reserved;
	mem->used = used;
	mem->free = held < s.total ? s.total - held : 0;
out:
	state_free(&s);
	return r;
}

/* Process list WHICH (0 compute, 1 graphics) as NVML's _v3 calls give it. */
static int procs(int which, struct nvml_device *dev, unsigned int *count, struct nvml_proc *infos)
{
	struct fake_state s;
	unsigned int extra = 0, len;
	int r = state_call(&s, FAIL_PROCESSES);

	if (r != NVML_SUCCESS)
		return r;
	if (which == 0 && s.grow)
		extra = atomic_fetch_add(&grown, s.grow) + s.grow;
	len = s.n[which] + extra;
	if (!device_ok(&s, dev) || !count || (*count && !infos))
		r = NVML_ERROR_INVALID_ARGUMENT;
	else if (*count < len)
		r = NVML_ERROR_INSUFFICIENT_SIZE;
	for (unsigned int i = 0; r == NVML_SUCCESS && i < len; i++) {
		int listed = i < s.n[which];

		infos[i].pid = listed ? s.procs[which][i].pid : 1000000 + i;
		infos[i].used = listed ? s.procs[which][i].bytes : 1;
		infos[i].gpu_instance = ~0u; /* as NVML says: not in a MIG instance */
		infos[i].compute_instance = ~0u;
	}
	if (count && r != NVML_ERROR_INVALID_ARGUMENT)
		*count = len;
	state_free(&s);
	return r;
}

int nvmlDeviceGetComputeRunningProcesses_v3(struct nvml_device *dev, unsigned int *count,
					    struct nvml_proc *infos)
{
	return procs(0, dev, count, infos);
}

int nvmlDeviceGetGraphicsRunningProcesses_v3(struct nvml_device *dev, unsigned int *count,
					     struct nvml_proc *infos)
{
	return procs(1, dev, count, infos);
}
