/* test_nvml.c - cuda/nvml.c over the NVML double (tests/fake/fake_nvml.c), found by dlopen. */
#include "check.h"
#include "nvml.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef VR_FAKE_NVML_LIB
#error "VR_FAKE_NVML_LIB: the double's path (tests/CMakeLists.txt)"
#endif

#define FAKE_UUID "GPU-00000000-fake-nvml-0000-000000000000"
#define GIB	  (1ULL << 30)

static char dir[] = "/tmp/vr-nvml-XXXXXX", state[64], next[64];

/* the product's allocations, refused on cue (--wrap: the library's calls, not the double's) */
static int refuse_calloc, refuse_realloc;
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

void *__wrap_calloc(size_t n, size_t size)
{
	return refuse_calloc ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return refuse_realloc ? NULL : __real_realloc(p, size);
}

/* The double's state, replaced at once (as a test must: it reads the file at every call). */
static void put_state(const char *text)
{
	FILE *f = fopen(next, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	CHECK(fclose(f) == 0);
	CHECK(rename(next, state) == 0);
}

static struct vr_nvml *open_ok(const char *uuid, int index)
{
	struct vr_nvml *n = NULL;
	char why[256] = "";
	int r = vr_nvml_open(uuid, index, &n, why, sizeof(why));

	CHECK_EQ(r, 0);
	if (r)
		fprintf(stderr, "vr_nvml_open: %s\n", why);
	return n;
}

/* A sample of N, with SELF; what vr_nvml_sample returned. */
static int sample(struct vr_nvml *n, pid_t self, struct vr_gpu_sample *s)
{
	char why[256] = "";
	int r = vr_nvml_sample(n, self, s, why, sizeof(why));

	if (r)
		fprintf(stderr, "vr_nvml_sample: %d %s\n", r, why);
	return r;
}

static void test_memory(void)
{
	struct vr_gpu_sample s;
	struct vr_nvml *n;

	unlink(state); /* no file: the defaults */
	n = open_ok(NULL, 0);
	if (!n)
		return;
	CHECK_EQ(sample(n, getpid(), &s), 0);
	CHECK_EQ(s.total, 16 * GIB);
	CHECK_EQ(s.free, 16 * GIB);
	CHECK_EQ(s.others, 0);
	CHECK_EQ(s.others_bytes, 0);
	CHECK_EQ(s.unknown, 0);

	/* free leaves out the reserve, the used bytes and the processes' */
	put_state("total 1000000\nreserved 1000\nused 5000\nproc 100 2000\n");
	CHECK_EQ(sample(n, getpid(), &s), 0);
	CHECK_EQ(s.total, 1000000);
	CHECK_EQ(s.free, 1000000 - 1000 - 5000 - 2000);
	CHECK_EQ(s.others, 1);
	CHECK_EQ(s.others_bytes, 2000);
	CHECK_EQ(s.unknown, 0);

	/* rewritten between samples: the next sample sees the new device */
	put_state("total 8000\nreserved 9000\nproc 7 1\nproc 8 2\ngproc 9 4\n");
	CHECK_EQ(sample(n, getpid(), &s), 0);
	CHECK_EQ(s.total, 8000);
	CHECK_EQ(s.free, 0);
	CHECK_EQ(s.others, 3);
	CHECK_EQ(s.others_bytes, 7);
	vr_nvml_close(n);
}

static void test_processes(void)
{
	char text[256];
	struct vr_gpu_sample s;
	struct vr_nvml *n = open_ok(FAKE_UUID, -1);

	if (!n)
		return;
	/* SELF is not another process, in either list */
	snprintf(text, sizeof(text), "proc %d 4000\nproc 101 3000\ngproc %d 50\n", (int)getpid(),
		 (int)getpid());
	put_state(text);
	CHECK_EQ(sample(n, getpid(), &s), 0);
	CHECK_EQ(s.others, 1);
	CHECK_EQ(s.others_bytes, 3000);
	/* another SELF: the same list counts differently */
	CHECK_EQ(sample(n, 101, &s), 0);
	CHECK_EQ(s.others, 1);
	CHECK_EQ(s.others_bytes, 4000);

	/* a pid in both lists counts once, at its larger amount (whichever list has it) */
	put_state("proc 200 1000\ngproc 200 3000\ngproc 201 500\nproc 202 900\ngproc 202 80\n");
	CHECK_EQ(sample(n, 1, &s), 0);
	CHECK_EQ(s.others, 3);
	CHECK_EQ(s.others_bytes, 3000 + 500 + 900);
	CHECK_EQ(s.unknown, 0);

	/* amounts NVML does not give: counted as processes, not as bytes; a known amount of the
	 * same pid in the other list wins */
	put_state("proc 300 ?\ngproc 301 ?\nproc 302 100\nproc 303 ?\ngproc 303 700\n"
		  "gproc 304 5\nproc 304 ?\n");
	CHECK_EQ(sample(n, 1, &s), 0);
	CHECK_EQ(s.others, 5);
	CHECK_EQ(s.unknown, 2);
	CHECK_EQ(s.others_bytes, 100 + 700 + 5);
	vr_nvml_close(n);
}

/* More processes than the first guess: NVML's INSUFFICIENT_SIZE and a retry. */
static void test_many(void)
{
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap);
	struct vr_gpu_sample s;
	struct vr_nvml *n = open_ok(NULL, 0);

	CHECK(text != NULL);
	if (!n || !text)
		goto out;
	for (int i = 0; i < 300; i++)
		len += (size_t)snprintf(text + len, cap - len, "proc %d 1000\n", 10000 + i);
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(text + len, cap - len, "gproc %d %s\n", 20000 + i,
					i % 2 ? "?" : "10");
	/* and 50 of the compute processes again among the graphics ones */
	for (int i = 0; i < 50; i++)
		len += (size_t)snprintf(text + len, cap - len, "gproc %d 1\n", 10000 + i);
	put_state(text);
	CHECK_EQ(sample(n, 10005, &s), 0);
	CHECK_EQ(s.others, 499);
	CHECK_EQ(s.unknown, 100);
	CHECK_EQ(s.others_bytes, 299 * 1000 + 100 * 10);
	CHECK_EQ(s.free, 16 * GIB - 300 * 1000 - 100 * 10 - 50);

	/* fewer again, in the buffer the longer lists left */
	put_state("proc 5 5\n");
	CHECK_EQ(sample(n, 1, &s), 0);
	CHECK_EQ(s.others, 1);
	CHECK_EQ(s.others_bytes, 5);

	/* a list that grows a little between calls: the room left for newcomers takes it */
	put_state("grow 20\nproc 5 5\n");
	CHECK_EQ(sample(n, 1, &s), 0);
	CHECK(s.others >= 21);
	/* one that outgrows every retry: an error, the sample untouched */
	put_state("grow 5000\n");
	{
		struct vr_gpu_sample before = s;
		char why[256] = "";

		CHECK_EQ(vr_nvml_sample(n, 1, &s, why, sizeof(why)), -EIO);
		CHECK(strstr(why, "ComputeRunningProcesses") != NULL);
		CHECK_MEM(&s, &before, sizeof(s));
	}
out:
	vr_nvml_close(n);
	free(text);
}

static void test_devices(void)
{
	struct vr_nvml *n = (struct vr_nvml *)&n; /* untouched on failure */
	struct vr_nvml *was = n;
	char why[256];

	put_state("uuid GPU-1234\ndevices 2\n");
	vr_nvml_close(open_ok("GPU-1234", 7)); /* a UUID wins over the index */
	vr_nvml_close(open_ok(NULL, 1));
	vr_nvml_close(open_ok("MIG-1234", 1)); /* not "GPU-": the index */
	why[0] = 0;
	CHECK_EQ(vr_nvml_open(FAKE_UUID, 0, &n, why, sizeof(why)), -ENODEV);
	CHECK(strstr(why, "Not Found") != NULL);
	CHECK(n == was);
	why[0] = 0;
	CHECK_EQ(vr_nvml_open(NULL, 2, &n, why, sizeof(why)), -ENODEV);
	CHECK(why[0] != 0);
	CHECK_EQ(vr_nvml_open("MIG-1234", 2, &n, why, sizeof(why)), -ENODEV);
	CHECK_EQ(vr_nvml_open(NULL, -1, &n, why, sizeof(why)), -ENODEV);
	CHECK_EQ(vr_nvml_open(NULL, 5, &n, NULL, 0), -ENODEV); /* no WHY is fine */
	CHECK(n == was);
}

static void test_library(void)
{
	struct vr_nvml *n = (struct vr_nvml *)&n;
	struct vr_nvml *was = n;
	char why[256];

	why[0] = 0;
	setenv("VRAM_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
	CHECK_EQ(vr_nvml_open(NULL, 0, &n, why, sizeof(why)), -ENOENT);
	CHECK(why[0] != 0);
	/* a library without NVML's symbols */
	why[0] = 0;
	setenv("VRAM_NVML_LIB", "libc.so.6", 1);
	CHECK_EQ(vr_nvml_open(NULL, 0, &n, why, sizeof(why)), -ENOENT);
	CHECK(strstr(why, "nvmlInit_v2") != NULL);
	CHECK(n == was);
	setenv("VRAM_NVML_LIB", VR_FAKE_NVML_LIB, 1);
	vr_nvml_close(NULL);
}

static void test_failures(void)
{
	struct vr_nvml *n, *o = (struct vr_nvml *)&o, *was = o;
	struct vr_gpu_sample s = {.total = 42}, before;
	char why[256];

	put_state("fail init\n");
	why[0] = 0;
	CHECK_EQ(vr_nvml_open(NULL, 0, &o, why, sizeof(why)), -EIO);
	CHECK(strstr(why, "Unknown Error") != NULL);
	put_state("fail handle\n");
	CHECK_EQ(vr_nvml_open(NULL, 0, &o, why, sizeof(why)), -EIO);
	CHECK_EQ(vr_nvml_open(FAKE_UUID, 0, &o, why, sizeof(why)), -EIO);
	CHECK(o == was);

	put_state("");
	n = open_ok(NULL, 0);
	if (!n)
		return;
	before = s;
	put_state("fail memory\nproc 1 1\n");
	why[0] = 0;
	CHECK_EQ(vr_nvml_sample(n, 1, &s, why, sizeof(why)), -EIO);
	CHECK(strstr(why, "Unknown Error") != NULL);
	CHECK(strstr(why, "MemoryInfo") != NULL);
	put_state("fail processes\n");
	why[0] = 0;
	CHECK_EQ(vr_nvml_sample(n, 1, &s, why, sizeof(why)), -EIO);
	CHECK(strstr(why, "Unknown Error") != NULL);
	CHECK_MEM(&s, &before, sizeof(s));
	put_state("");
	CHECK_EQ(sample(n, 1, &s), 0); /* and well again */
	CHECK_EQ(s.total, 16 * GIB);
	vr_nvml_close(n);
}

static void test_nomem(void)
{
	struct vr_nvml *n, *o = (struct vr_nvml *)&o, *was = o;
	struct vr_gpu_sample s = {.total = 42}, before = s;
	char why[256];

	refuse_calloc = 1;
	CHECK_EQ(vr_nvml_open(NULL, 0, &o, why, sizeof(why)), -ENOMEM);
	refuse_calloc = 0;
	CHECK(o == was);
	put_state("proc 1 1\n");
	n = open_ok(NULL, 0);
	if (!n)
		return;
	refuse_realloc = 1;
	why[0] = 0;
	CHECK_EQ(vr_nvml_sample(n, 2, &s, why, sizeof(why)), -ENOMEM);
	CHECK(why[0] != 0);
	CHECK_MEM(&s, &before, sizeof(s));
	refuse_realloc = 0;
	CHECK_EQ(sample(n, 2, &s), 0);
	CHECK_EQ(s.others, 1);
	vr_nvml_close(n);
}

int main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(next, sizeof(next), "%s/state.new", dir);
	setenv("VR_FAKE_NVML", state, 1);
	setenv("VRAM_NVML_LIB", VR_FAKE_NVML_LIB, 1);

	test_memory();
	test_processes();
	test_many();
	test_devices();
	test_library();
	test_failures();
	test_nomem();

	unlink(state);
	rmdir(dir);
	return check_summary();
}
