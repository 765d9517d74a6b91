/* options.c - the daemon's command line: our -o options, checked before anything is mounted. */
#include "options.h"
#include "residency.h"
#include "size.h"

#include <errno.h>
#include <fuse_lowlevel.h>
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
    OPT("reserve=%s", reserve),
    OPT("staging=%s", staging),
    OPT("device=%d", device),
    OPT("verify_on_open=%d", verify_on_open),
    OPT("list_generated=%d", list_generated),
    OPT("immutable=%d", immutable),
    OPT("trust=%s", trust),
    OPT("expect=%s", expect),
    OPT("sha256=%s", sha256),
    OPT("device_digest=%s", device_digest),
    OPT("audit_key=%s", audit_key),
    OPT("socket=%s", socket),
    OPT("metrics_file=%s", metrics_file),
    OPT("metrics_interval=%d", metrics_interval),
    OPT("meta_limit=%s", meta_limit),
    OPT("log=%s", log),
    OPT("keep=%s", keep),
    OPT("max_threads=%d", max_threads),
    OPT("evict=%s", evict.mode),
    OPT("evict_free=%s", evict.keep_free),
    OPT("evict_margin=%s", evict.margin),
    OPT("evict_interval=%s", evict.interval),
    OPT("evict_min_resident=%s", evict.min_resident),
    OPT("evict_restore_delay=%s", evict.restore_delay),
    OPT("evict_host_max=%s", evict.host_max),
    OPT("evict_dir=%s", evict.dir),
    OPT("restore=%s", evict.restore),
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

/* Checks max_threads=, and sets the default when not given; 0 or -1 (having said why). */
static int check_threads(struct vr_options *o)
{
	_Static_assert(VR_FUSE_THREADS >= VR_RES_CHECKS_OTHERS + VR_FUSE_RESERVE,
		       "the default leaves threads to others");
	const int least = VR_RES_CHECKS_OTHERS + VR_FUSE_RESERVE;

#ifndef VR_FUSE_LOOP_CONFIG
	if (o->max_threads) {
		fprintf(stderr,
			"vram-residency: max_threads=%d: needs libfuse 3.12 or later (this "
			"one starts threads as needed)\n",
			o->max_threads);
		return -1;
	}
#endif
	if (o->max_threads && (o->max_threads < least || o->max_threads > VR_FUSE_THREADS_MAX)) {
		fprintf(stderr,
			"vram-residency: max_threads=%d: give %d to %d (others' checks hold %d at "
			"most; %d stay for everyone else)\n",
			o->max_threads, least, VR_FUSE_THREADS_MAX, VR_RES_CHECKS_OTHERS,
			VR_FUSE_RESERVE);
		return -1;
	}
	if (!o->max_threads)
		o->max_threads = VR_FUSE_THREADS;
	return 0;
}

unsigned vr_device_digest_bits(const char *v)
{
	if (!v || strcmp(v, "fsverity") == 0)
		return VR_DEVICE_DIGEST_FSVERITY;
	if (strcmp(v, "blake3") == 0)
		return VR_DEVICE_DIGEST_BLAKE3;
	if (strcmp(v, "both") == 0)
		return VR_DEVICE_DIGEST_FSVERITY | VR_DEVICE_DIGEST_BLAKE3;
	return 0;
}

/* The options that give sizes: meta_limit (kept in bytes), capacity, staging. Returns 0 or -2
 * (a usage error, said). */
static int check_sizes(struct vr_options *o)
{
	uint64_t capacity;
	struct vr_staging g;
	char why[160];

	if (o->meta_limit &&
	    (vr_size_parse(o->meta_limit, &o->meta_limit_bytes) != 0 || o->meta_limit_bytes == 0)) {
		fprintf(stderr, "vram-residency: meta_limit=%s: use a size such as 64M or 1G\n",
			o->meta_limit);
		return -2;
	}
	if (o->capacity && (vr_size_parse(o->capacity, &capacity) != 0 || capacity == 0)) {
		fprintf(stderr, "vram-residency: capacity=%s: use a size such as 512M or 2G\n",
			o->capacity);
		return -2;
	}
	if (o->staging && vr_staging_parse(o->staging, &g, why, sizeof(why)) != 0) {
		fprintf(stderr, "vram-residency: %s\n", why);
		return -2;
	}
	return 0;
}

int vr_options_parse(struct fuse_args *args, struct vr_options *o)
{
	memset(o, 0, sizeof(*o));
	o->verify_on_open = 1;
	o->metrics_interval = 15;
	errno = 0;
	if (fuse_opt_parse(args, o, spec, proc) != 0)
		return errno == ENOMEM ? -1 : -2; /* libfuse said why */
	if (o->metrics_interval < 1 || o->metrics_interval > 86400) {
		fprintf(stderr, "vram-residency: metrics_interval=%d: give 1 to 86400 seconds\n",
			o->metrics_interval);
		return -2;
	}
	if (check_threads(o) != 0)
		return -2;
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
		return -2;
	}
	if (o->verify_on_open != 0 && o->verify_on_open != 1) {
		fprintf(stderr, "vram-residency: verify_on_open must be 0 or 1\n");
		return -2;
	}
	if (o->list_generated != 0 && o->list_generated != 1) {
		fprintf(stderr, "vram-residency: list_generated must be 0 or 1\n");
		return -2;
	}
	if (o->immutable != 0 && o->immutable != 1) {
		fprintf(stderr, "vram-residency: immutable must be 0 or 1\n");
		return -2;
	}
	if (o->expect && strcmp(o->expect, "check") && strcmp(o->expect, "require")) {
		fprintf(stderr, "vram-residency: expect=%s: use check or require\n", o->expect);
		return -2;
	}
	if (o->sha256 && strcmp(o->sha256, "on") && strcmp(o->sha256, "off")) {
		fprintf(stderr, "vram-residency: sha256=%s: use on or off\n", o->sha256);
		return -2;
	}
	if (o->device_digest && vr_device_digest_bits(o->device_digest) == 0) {
		fprintf(stderr, "vram-residency: device_digest=%s: use fsverity, blake3 or both\n",
			o->device_digest);
		return -2;
	}
	if (o->keep && strcmp(o->keep, "auto") && strcmp(o->keep, "on") && strcmp(o->keep, "off")) {
		fprintf(stderr, "vram-residency: keep=%s: use auto, on or off\n", o->keep);
		return -2;
	}
	if (o->device < 0) {
		fprintf(stderr, "vram-residency: device=%d: must be 0 or more\n", o->device);
		return -2;
	}
	if (check_sizes(o) != 0)
		return -2;
	return vr_evict_opts_check(&o->evict);
}

int vr_options_backend_params(struct vr_options *o, struct vr_backend_params *p)
{
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->device = o->device;
	/* capacity and staging were checked with the other values (vr_options_check), so a
	 * typo is refused whichever backend opens */
	if (o->capacity)
		o->bopts[n++] = (struct vr_backend_opt){"capacity", o->capacity};
	if (o->mock_vram)
		o->bopts[n++] = (struct vr_backend_opt){"vram", o->mock_vram};
	if (o->mock_fault)
		o->bopts[n++] = (struct vr_backend_opt){"fault", o->mock_fault};
	if (o->reserve)
		o->bopts[n++] = (struct vr_backend_opt){"reserve", o->reserve};
	if (o->staging)
		o->bopts[n++] = (struct vr_backend_opt){"staging", o->staging};
	p->opts = o->bopts;
	p->nopts = n;
	return 0;
}

int vr_options_check_fuse(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	static const struct fuse_operations none;
	struct fuse *probe = NULL;
	bool copied = true;

	for (int i = 0; i < args->argc && copied; i++)
		copied = fuse_opt_add_arg(&copy, args->argv[i]) == 0;
	errno = 0;
	if (copied)
		probe = fuse_new(&copy, &none, sizeof(none), NULL);
	int err = copied ? errno : ENOMEM;

	fuse_opt_free_args(&copy);
	if (!probe)
		return err == ENOMEM ? -1 : -2;
	fuse_destroy(probe);
	return 0;
}

void vr_options_version(void)
{
	printf("vram-residency %s\n", VR_VERSION);
	fflush(stdout); /* first: libfuse's lines come from another process too */
	fuse_lowlevel_version();
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
	    "    -o audit_key=PATH          key file (as secret=) that hash-chains the audit\n"
	    "                               log: vram-seal audit-verify checks it; needed\n"
	    "                               once, later starts go on from AUDIT.chain\n"
	    "    -o capacity=SIZE           mock device size, K/M/G/T = powers of 1024 (default "
	    "1G)\n"
	    "    -o mock_vram=DIR           tests: the mock's memory as chunk files in DIR\n"
	    "    -o reserve=0|1             1: the mock takes its whole capacity at mount\n"
	    "                               (default 0: as files grow)\n"
	    "    -o staging=SLOTxCOUNTxSTAGES  loaders' staging: COUNT slots of SLOT bytes\n"
	    "                               each, STAGES at once (default 8Mx4x16)\n"
	    "    -o verify_on_open=0|1      re-check a sealed file at each open (default 1)\n"
	    "    -o meta_limit=SIZE         host memory each user's files, folders, links and\n"
	    "                               user.* attributes may take, root and the mount's\n"
	    "                               owner excepted (default 64M; EDQUOT beyond)\n"
	    "    -o max_threads=N           the loop's worker threads (default 16, 12 at least:\n"
	    "                               others' checks hold 8 at most)\n"
	    "    -o list_generated=0|1      list verify, status and the seals in directories\n"
	    "                               (default 0: reachable by name, not listed)\n"
	    "    -o immutable=0|1           1: a sealed file cannot even be replaced by an\n"
	    "                               open with O_TRUNC (default 0: replacement allowed)\n"
	    "    -o trust=PATH              public keys (PEM file, or a directory of *.pem)\n"
	    "                               trusted to sign models: a model.sig must verify\n"
	    "                               with one of them (default: none, so every\n"
	    "                               model.sig is refused as untrusted)\n"
	    "    -o expect=check|require    require: refuse to seal a file that no SHA256SUMS\n"
	    "                               or model.sig covers (default check: check files\n"
	    "                               that one covers)\n"
	    "    -o sha256=on|off           off: seal with the fs-verity digest alone, for\n"
	    "                               loads at line rate (default on); a file that a\n"
	    "                               SHA256SUMS or model.sig names is still hashed\n"
	    "    -o device_digest=fsverity|blake3|both\n"
	    "                               what verify recomputes where the bytes live:\n"
	    "                               fs-verity (default; as fsverity digest), BLAKE3\n"
	    "                               (as b3sum; every seal then records it) or both\n"
	    "    -o socket=PATH|none        the socket that maps sealed files into processes\n"
	    "                               and imports them (default MOUNTPOINT.sock)\n"
	    "    -o metrics_file=PATH       write the metrics (as MOUNT/metrics) to PATH every\n"
	    "                               metrics_interval seconds, atomically (node_exporter's\n"
	    "                               textfile collector)\n"
	    "    -o metrics_interval=N      seconds between those writes (default 15)\n"
	    "    -o log=PATH                also write the daemon's messages to PATH (a\n"
	    "                               detached daemon's go to syslog, where one listens)\n"
	    "    -o keep=auto|on|off        keep what is resident across restarts of the daemon\n"
	    "                               in a keeper's descriptor store (vram-keeper, or\n"
	    "                               systemd's); auto: when FDSTORE= says there is one;\n"
	    "                               on: NOTIFY_SOCKET's (systemd before 254); needs\n"
	    "                               secret= and -f\n",
	    prog, VR_DEFAULT_AUDIT);
	vr_evict_help();
	printf(
	    "    -o mock_fault=OP:N[:ERR]   (tests) fail the Nth mock alloc/write/read/digest\n\n"
	    "libfuse options that apply:\n"
	    "    -f                         stay in the foreground (default: detach once mounted)\n"
	    "    -d, -o debug               FUSE debugging (implies -f)\n"
	    "    -s                         serve requests on one thread\n"
	    "    -o allow_other             let every user in (file modes still apply)\n"
	    "    -o allow_root              let root in besides the user who mounted\n"
	    "    -o auto_unmount            unmount if the daemon dies\n"
	    "    -o clone_fd, -o max_idle_threads=N\n"
	    "                               libfuse's multi-threaded loop (max_threads above)\n"
	    "    -h, --help; -V, --version\n"
	    "The daemon sets libfuse's caching and timeouts itself; an unknown option stops it\n"
	    "with exit status 2.\n");
}

void vr_options_free(struct vr_options *o)
{
	free(o->backend);
	free(o->meta_limit);
	free(o->secret);
	free(o->audit);
	free(o->capacity);
	free(o->mock_vram);
	free(o->mock_fault);
	free(o->trust);
	free(o->expect);
	free(o->sha256);
	free(o->device_digest);
	free(o->audit_key);
	free(o->socket);
	free(o->metrics_file);
	free(o->reserve);
	free(o->staging);
	free(o->log);
	free(o->keep);
	vr_evict_opts_free(&o->evict);
}
