/* options.c - the daemon's command line: our -o options, checked before anything is mounted. */
#include "options.h"
#include "size.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_HELP, KEY_VERSION };

#define OPT(t, p)                                                                                  \
	{                                                                                          \
		t, offsetof(struct vr_options, p), 1                                               \
	}
static const struct fuse_opt spec[] = {
    OPT("backend=%s", backend),
    OPT("secret=%s", secret),
    OPT("audit=%s", audit),
    OPT("capacity=%s", capacity),
    OPT("mock_vram=%s", mock_vram),
    OPT("mock_fault=%s", mock_fault),
    OPT("device=%d", device),
    OPT("verify_on_open=%d", verify_on_open),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static int proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct vr_options *o = data;

	(void)arg;
	(void)outargs;
	if (key == KEY_HELP) {
		o->show_help = true;
		return 1; /* kept, so libfuse shows its options too */
	}
	if (key == KEY_VERSION) {
		o->show_version = true;
		return 1;
	}
	return 1;
}

int vr_options_parse(struct fuse_args *args, struct vr_options *o)
{
	memset(o, 0, sizeof(*o));
	o->verify_on_open = 1;
	if (fuse_opt_parse(args, o, spec, proc) != 0)
		return -1;
	if (!o->backend)
		o->backend = strdup("auto");
	if (!o->audit)
		o->audit = strdup(VR_DEFAULT_AUDIT);
	if (!o->backend || !o->audit) {
		fprintf(stderr, "vram-residency: out of memory\n");
		return -1;
	}
	if (strcmp(o->backend, "auto") && strcmp(o->backend, "cuda") &&
	    strcmp(o->backend, "mock")) {
		fprintf(stderr, "vram-residency: backend=%s: use auto, cuda or mock\n", o->backend);
		return -1;
	}
	if (o->verify_on_open != 0 && o->verify_on_open != 1) {
		fprintf(stderr, "vram-residency: verify_on_open must be 0 or 1\n");
		return -1;
	}
	if (o->device < 0) {
		fprintf(stderr, "vram-residency: device=%d: must be 0 or more\n", o->device);
		return -1;
	}
	return 0;
}

static int parse_fault(const char *text, struct vr_backend_params *p)
{
	static const char *const ops[VR_FAULT_OPS] = {"alloc", "write", "read", "digest"};
	char *copy = strdup(text), *save = NULL;
	int ret = 0;

	if (!copy)
		return -1;
	for (char *item = strtok_r(copy, "+", &save); item; item = strtok_r(NULL, "+", &save)) {
		char *op = item, *nth = strchr(item, ':'), *err = NULL;
		int i;

		if (nth) {
			*nth++ = '\0';
			err = strchr(nth, ':');
			if (err)
				*err++ = '\0';
		}
		for (i = 0; i < VR_FAULT_OPS; i++)
			if (strcmp(op, ops[i]) == 0)
				break;
		if (i == VR_FAULT_OPS || !nth || atoi(nth) < 1) {
			ret = -1;
			break;
		}
		p->fail_at[i] = (unsigned)atoi(nth);
		if (!err || strcmp(err, "eio") == 0)
			p->fail_errno[i] = EIO;
		else if (strcmp(err, "enomem") == 0)
			p->fail_errno[i] = ENOMEM;
		else if (strcmp(err, "enospc") == 0)
			p->fail_errno[i] = ENOSPC;
		else {
			ret = -1;
			break;
		}
	}
	free(copy);
	if (ret)
		fprintf(stderr,
			"vram-residency: mock_fault=%s: use OP:N[:eio|enomem|enospc], OP one of "
			"alloc, write, read, digest, joined by +\n",
			text);
	return ret;
}

int vr_options_backend_params(const struct vr_options *o, struct vr_backend_params *p)
{
	memset(p, 0, sizeof(*p));
	p->device = o->device;
	p->mock_vram = o->mock_vram;
	if (o->capacity && (vr_size_parse(o->capacity, &p->capacity) != 0 || p->capacity == 0)) {
		fprintf(stderr, "vram-residency: capacity=%s: use a size such as 512M or 2G\n",
			o->capacity);
		return -1;
	}
	if (o->mock_fault && parse_fault(o->mock_fault, p) != 0)
		return -1;
	return 0;
}

void vr_options_help(const char *prog)
{
	printf(
	    "usage: %s [-f] [-d] [-s] [-o OPTION[,OPTION...]] MOUNTPOINT\n\n"
	    "Keeps model files resident in GPU memory and proves they have not changed.\n\n"
	    "vram-residency options:\n"
	    "    -o backend=auto|cuda|mock  device backend (default auto: CUDA when a usable\n"
	    "                               GPU passes the policy, else the mock, loudly)\n"
	    "    -o device=N                GPU index (default 0)\n"
	    "    -o secret=PATH             master secret file, mode 0600, >= 32 bytes; without\n"
	    "                               it an ephemeral random secret is used and seals\n"
	    "                               cannot be checked after unmount\n"
	    "    -o audit=PATH              audit log (default %s)\n"
	    "    -o capacity=SIZE           mock device size, K/M/G/T = powers of 1024 (default "
	    "1G)\n"
	    "    -o mock_vram=PATH          file whose shared mapping is the mock's memory\n"
	    "    -o verify_on_open=0|1      re-check a sealed file at each open (default 1)\n"
	    "    -o mock_fault=OP:N[:ERR]   (tests) fail the Nth mock alloc/write/read/digest\n\n",
	    prog, VR_DEFAULT_AUDIT);
}

void vr_options_free(struct vr_options *o)
{
	free(o->backend);
	free(o->secret);
	free(o->audit);
	free(o->capacity);
	free(o->mock_vram);
	free(o->mock_fault);
}
