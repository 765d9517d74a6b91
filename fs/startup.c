/* startup.c - the daemon's start-up, step by step up to the mount, and its teardown. */
#include "channel.h"
#include "daemon.h"
#include "keeper.h"
#include "ops.h"

#include "audit.h"
#include "backends.h"
#include "key.h"
#include "log.h"
#include "safe.h"
#include "manifest.h"
#include "residency.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

void daemon_audit(struct daemon *d, const char *event, const char *outcome, const char *detail)
{
	struct vr_audit_rec rec = {
	    .event = event, .uid = getuid(), .pid = getpid(), .outcome = outcome, .detail = detail};

	vr_audit_log(d->audit, &rec);
}

/* Whether libfuse's options in ARGS include allow_other (others may use the mount). */
static bool has_allow_other(const struct fuse_args *args)
{
	for (int i = 1; i < args->argc; i++) {
		const char *a = args->argv[i];

		if (strncmp(a, "-o", 2) == 0)
			a += 2;
		else if (i > 1 && strcmp(args->argv[i - 1], "-o") == 0)
			;
		else
			continue;
		for (const char *p = a; (p = strstr(p, "allow_other")) != NULL; p++)
			if ((p == a || p[-1] == ',') && (p[11] == '\0' || p[11] == ','))
				return true;
	}
	return false;
}

/*
 * Refuses a mount point where vram-residency is mounted already (from
 * /proc/self/mountinfo): a live mount would be hidden under the new one, and
 * a stale one (its daemon died: "Transport endpoint is not connected") makes
 * libfuse fail with no hint. Says which and what to do; but under a keeper
 * (RESTARTING) detaches a stale one, left by the daemon this one follows.
 * Returns 0 or -1.
 */
static int check_mountpoint(const char *mountpoint, bool restarting)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool ours = false;

	if (!f)
		return 0; /* no /proc: libfuse decides */
	while (!ours && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char root[4096], at[4096], *dash = strstr(line, " - ");
		char type[64];

		if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, at) != 2 ||
		    sscanf(dash + 3, "%63s", type) != 1)
			continue;
		/* mountinfo escapes spaces as \040: a path with them never matches, which only
		 * leaves the check to libfuse */
		ours = strcmp(at, mountpoint) == 0 && strcmp(type, "fuse.vram-residency") == 0;
	}
	fclose(f);
	if (!ours)
		return 0;
	struct stat st;
	bool stale = stat(mountpoint, &st) != 0 && errno == ENOTCONN;

	if (stale && restarting) {
		/* the mount the daemon before this one left when it died: this one replaces it */
		if (umount2(mountpoint, MNT_DETACH) == 0) {
			vr_log(LOG_NOTICE,
			       "%s: detached the stale mount a daemon before this one "
			       "left; mounting again over it",
			       mountpoint);
			return 0;
		}
		vr_log(LOG_ERR, "%s: cannot detach the stale mount there: %s", mountpoint,
		       strerror(errno));
	}
	if (stale)
		vr_log(LOG_ERR,
		       "%s: a stale vram-residency mount is there (its daemon is gone); clear it "
		       "with: fusermount3 -u %s (or umount -l), then mount again",
		       mountpoint, mountpoint);
	else
		vr_log(LOG_ERR,
		       "%s: vram-residency is mounted there already; a second mount would hide it "
		       "(unmount it first: fusermount3 -u %s)",
		       mountpoint, mountpoint);
	return -1;
}

/*
 * libfuse's options are checked first, on a copy of the arguments, so an
 * unknown option is the one line printed and nothing was opened for it.
 * Returns 0 or -1 (libfuse said which option).
 */
static int probe_fuse_options(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	struct fuse *probe = NULL;
	bool copied = true;

	for (int i = 0; i < args->argc && copied; i++)
		copied = fuse_opt_add_arg(&copy, args->argv[i]) == 0;
	if (copied)
		probe = fuse_new(&copy, &vr_fuse_ops, sizeof(vr_fuse_ops), NULL);
	fuse_opt_free_args(&copy);
	if (!probe)
		return -1; /* libfuse said which option */
	fuse_destroy(probe);
	return 0;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VR_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VR_SANITIZED 1
#endif

/*
 * No core dump: one would hold the master secret, the audit chain's key and,
 * on the mock, every user's resident bytes (its chunks are shared memory,
 * which the default coredump_filter includes). RLIMIT_CORE 0 stops core files;
 * PR_SET_DUMPABLE 0 also stops a core_pattern pipe (systemd-coredump) and
 * ptrace by the daemon's own user. Sanitizer builds stay dumpable: their leak
 * check attaches to the process at exit (they are test builds).
 */
static void no_core_dumps(void)
{
	struct rlimit none = {0, 0};

	if (setrlimit(RLIMIT_CORE, &none) != 0)
		vr_log(LOG_WARNING, "cannot turn core dumps off (RLIMIT_CORE): %s",
		       strerror(errno));
#ifndef VR_SANITIZED
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		vr_log(LOG_WARNING, "cannot make the daemon non-dumpable: %s", strerror(errno));
#endif
}

static int open_keys(struct daemon *d)
{
	if (d->opts.secret)
		return vr_folder_safe("secret file", d->opts.secret) != 0
			   ? -1
			   : vr_keyring_load(d->opts.secret, &d->keys);
	vr_log(LOG_WARNING, "no secret= given: seals are signed with an ephemeral random secret "
			    "and cannot be checked after this mount ends");
	return vr_keyring_generate(&d->keys);
}

/* Loads the keys trusted to sign models; returns 0 or -1 having said why. */
static int open_trust(struct daemon *d)
{
	char why[VR_WHY_MAX];

	if (!d->opts.trust) {
		vr_log(LOG_INFO, "no trust= given: a model.sig is refused as untrusted; "
				 "SHA256SUMS files are still checked");
		return 0;
	}
	if (vr_trust_path_safe(d->opts.trust) == -EACCES) {
		vr_log(LOG_ERR, "trust=%s: others could add a key there; nothing mounted",
		       d->opts.trust);
		return -1;
	}
	if (vr_trust_load(d->opts.trust, &d->trust, why) != 0) {
		vr_log(LOG_ERR, "trust=%s: %s; nothing mounted", d->opts.trust, why);
		return -1;
	}
	vr_log(LOG_INFO, "trust=%s: %zu key(s) and %zu root certificate(s) trusted to sign models",
	       d->opts.trust, vr_trust_count(d->trust), vr_trust_roots(d->trust));
	return 0;
}

/* Makes the audit log's folder when it is the default one. */
static void audit_dir(const char *path)
{
	if (strcmp(path, VR_DEFAULT_AUDIT) == 0)
		mkdir("/var/log/vram-residency", 0700);
}

/* Starts the audit log's chain with audit_key='s first key (checking the whole log, and the
 * state file when there is one); returns 0 or -errno. */
static int chain_with_key(struct daemon *d)
{
	/* K(0) from the key file, then the file's bytes and K(0) leave memory */
	struct vr_keyring *ak;
	uint8_t k0[VR_AUDIT_MAC_SIZE];
	int ret = vr_folder_safe("audit key", d->opts.audit_key);

	if (ret == 0)
		ret = vr_keyring_load(d->opts.audit_key, &ak);
	if (ret == 0 && d->keys && vr_keyring_equal(ak, d->keys)) {
		/* one key would both sign the seals and chain the log that audits them */
		vr_log(LOG_ERR,
		       "audit_key=%s holds the same secret as secret=: give each "
		       "its own file (head -c 32 /dev/urandom > FILE)",
		       d->opts.audit_key);
		vr_keyring_free(ak);
		ret = -EINVAL;
	}
	if (ret == 0) {
		vr_audit_key0(ak, k0);
		vr_keyring_free(ak);
		ret = vr_audit_chain_start(d->audit, k0);
		explicit_bzero(k0, sizeof(k0));
	}
	return ret;
}

/*
 * Opens the audit log and continues its chain: from audit_key= when given, else from the
 * chain's state file when there is one (docs/audit.md). Returns 0 or -1.
 */
static int open_audit(struct daemon *d)
{
	int ret;

	audit_dir(d->opts.audit);
	if (vr_audit_open(d->opts.audit, &d->audit) != 0)
		return -1;
	ret = d->opts.audit_key ? chain_with_key(d) : vr_audit_chain_resume(d->audit);
	if (ret < 0) {
		vr_log(LOG_ERR, "audit log %s: the chain cannot be continued%s%s; nothing mounted",
		       d->opts.audit, d->opts.audit_key ? " with audit_key=" : "",
		       d->opts.audit_key ? d->opts.audit_key : "");
		return -1;
	}
	return 0;
}

/* The socket's path: socket=, else MOUNTPOINT.sock; none with socket=none. 0 or -1. */
static int name_socket(struct daemon *d, const char *mountpoint)
{
	if (!d->opts.socket || strcmp(d->opts.socket, "none") != 0) {
		if (d->opts.socket)
			d->socket_path = strdup(d->opts.socket);
		else if (asprintf(&d->socket_path, "%s.sock", mountpoint) < 0)
			d->socket_path = NULL;
		if (!d->socket_path)
			return -1;
	}
	return 0;
}

/* Opens the backend and the tree over it; returns 0 or -1 having said why. */
static int open_residency(struct daemon *d, struct vr_backend_params *bp)
{
	struct vr_res_config rc = {0};
	struct vr_device_info dev;

	bp->audit = d->audit;
	if (vr_backend_select(d->opts.backend, bp, &d->backend) != 0) {
		vr_log(LOG_ERR, "cannot open backend=%s; nothing mounted", d->opts.backend);
		return -1;
	}
	if (vr_keeper_open(d->opts.keep, &d->backend, d->opts.secret != NULL, &d->keeper) != 0)
		return -1;
	if (vr_backend_info(&d->backend, &dev) != 0 ||
	    vr_evict_open(&d->opts.evict, &dev, bp->restoring, &d->evict, &rc) != 0) {
		vr_log(LOG_ERR, "cannot set up eviction; nothing mounted");
		return -1;
	}
	rc = (struct vr_res_config){
	    .evict_store = rc.evict_store,
	    .restore_manual = rc.restore_manual,
	    .evict = rc.evict,
	    .keeper = vr_keeper_hooks(d->keeper),
	    .backend = &d->backend,
	    .keys = d->keys,
	    .audit = d->audit,
	    .verify_on_open = d->opts.verify_on_open == 1,
	    .list_generated = d->opts.list_generated == 1,
	    .immutable = d->opts.immutable == 1,
	    .trust = d->trust,
	    .expect_require = d->opts.expect && strcmp(d->opts.expect, "require") == 0,
	    .sha256_off = d->opts.sha256 && strcmp(d->opts.sha256, "off") == 0,
	    .device_digest = vr_device_digest_bits(d->opts.device_digest),
	    .socket_path = d->socket_path,
	    .root_uid = getuid(),
	    .root_gid = getgid(),
	    .meta_limit = d->opts.meta_limit_bytes};
	if (vr_res_new(&rc, &d->res) != 0) {
		vr_log(LOG_ERR, "cannot set up the tree");
		return -1;
	}
	/* what a keeper held comes back, checked on the device, before anything is served */
	if (d->keeper && (vr_keeper_restore(d->keeper, d->res, d->audit) != 0 ||
			  vr_keeper_start(d->keeper) != 0)) {
		vr_log(LOG_ERR, "cannot restore what the keeper held: out of memory; nothing "
				"mounted");
		return -1;
	}
	return vr_evict_start(d->evict, d->res);
}

/* Mounts the tree at MOUNTPOINT and puts the channel under it; returns 0 or -1. */
static int mount_tree(struct daemon *d, struct fuse_args *args, const char *mountpoint,
		      const struct vr_device_info *info)
{
	char fsname[128];

	snprintf(fsname, sizeof(fsname),
		 "-ofsname=vram-%s,subtype=vram-residency,default_permissions", info->backend);
	if (fuse_opt_add_arg(args, fsname) != 0)
		return -1;
	d->fuse = fuse_new(args, &vr_fuse_ops, sizeof(vr_fuse_ops), d->res);
	if (!d->fuse)
		return -1; /* libfuse said why (unknown option) */
	if (fuse_mount(d->fuse, mountpoint) != 0)
		return -1;
	d->mounted = true;
	int ret = vr_channel_install(fuse_get_session(d->fuse));

	if (ret)
		vr_log(LOG_WARNING,
		       "the channel cannot be watched (%s): fstat of a removed open file "
		       "will read ESTALE",
		       strerror(-ret));
	return 0;
}

/* Serves the socket, unless socket=none; returns 0 or -1 having said why. */
static int serve_socket(struct daemon *d, bool allow_other)
{
	if (d->socket_path) {
		struct vr_server_config sc = {
		    .res = d->res, .path = d->socket_path, .allow_other = allow_other};

		if (vr_server_start(&sc, &d->server) != 0) {
			vr_log(LOG_ERR,
			       "the socket %s cannot be served (socket=none runs without "
			       "it); nothing mounted",
			       d->socket_path);
			return -1;
		}
	}
	return 0;
}

/* Says what is mounted where, in the log and the audit log. */
static void announce(struct daemon *d, const char *mountpoint, const struct vr_device_info *info)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "mounted at %s; backend %s; device %d %s (%s)%s%s%s",
		 mountpoint, info->backend, info->index, info->name, info->uuid,
		 strcmp(info->backend, "mock") == 0 ? "; MOCK: bytes in host memory" : "",
		 d->socket_path ? "; socket " : "", d->socket_path ? d->socket_path : "");
	vr_log(LOG_INFO, "%s", detail);
	daemon_audit(d, "daemon_started", "ok", detail);
}

int daemon_start(struct daemon *d, struct fuse_args *args, const char *mountpoint)
{
	struct vr_backend_params bp;
	struct vr_device_info info;

	/* read now: libfuse takes its options out of ARGS as it parses them */
	bool allow_other = has_allow_other(args);

	no_core_dumps();
	/* under a keeper, a stale mount is the last daemon's, and replaced */
	bool restarting =
	    getenv("NOTIFY_SOCKET") && !(d->opts.keep && strcmp(d->opts.keep, "off") == 0);

	if (check_mountpoint(mountpoint, restarting) != 0)
		return -1;
	if (vr_options_backend_params(&d->opts, &bp) != 0)
		return -1;
	const char *lpid = getenv("LISTEN_PID");

	bp.restoring = lpid && atol(lpid) == (long)getpid() && getenv("LISTEN_FDS");
	if (probe_fuse_options(args) != 0)
		return -1;
	if (open_keys(d) != 0 || open_trust(d) != 0)
		return -1;
	if (open_audit(d) != 0)
		return -1;
	if (name_socket(d, mountpoint) != 0)
		return -1;
	if (open_residency(d, &bp) != 0)
		return -1;
	vr_backend_info(&d->backend, &info);
	/* the socket first: one that cannot be served stops the start before anything is
	 * mounted, rather than a mount that appears and goes again */
	if (serve_socket(d, allow_other) != 0)
		return -1;
	if (mount_tree(d, args, mountpoint, &info) != 0)
		return -1;
	announce(d, mountpoint, &info);
	return 0;
}

void daemon_stop(struct daemon *d)
{
	/* the socket first: its leases end before the memory they map is scrubbed */
	vr_server_stop(d->server);
	if (d->fuse) {
		if (d->mounted && !d->unmounted)
			fuse_unmount(d->fuse);
		fuse_destroy(d->fuse);
	}
	/* on a signal, what is resident stays with the keeper for the next start; at an unmount
	 * it is let go */
	vr_evict_stop(d->evict); /* no policy step after this */
	vr_keeper_stop(d->keeper, d->res, d->stop_signal != 0);
	vr_res_free(d->res);	 /* scrubs and frees every file's device memory (the kept: not) */
	vr_evict_free(d->evict); /* evicted files' bytes were freed with them */
	vr_keeper_free(d->keeper);
	vr_backend_close(&d->backend);
	if (d->audit && d->mounted)
		daemon_audit(d, "daemon_stopped", "ok", NULL);
	vr_audit_close(d->audit);
	vr_keyring_free(d->keys);
	vr_trust_free(d->trust);
	for (size_t i = 0; i < d->nretired; i++)
		vr_trust_free(d->retired[i]);
	free(d->retired);
	free(d->socket_path);
}
