/* main.c - the FUSE daemon: thin handlers over core/residency, and the mount's life cycle. */
#include "options.h"

#include <fuse_lowlevel.h>

#include "audit.h"
#include "backends.h"
#include "key.h"
#include "log.h"
#include "residency.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static struct vr_residency *res(void)
{
	return fuse_get_context()->private_data;
}

static struct vr_caller caller(void)
{
	struct fuse_context *c = fuse_get_context();

	return (struct vr_caller){c->uid, c->gid, c->pid};
}

static struct vr_handle *handle(const struct fuse_file_info *fi)
{
	return (struct vr_handle *)(uintptr_t)fi->fh;
}

static void to_stat(const struct vr_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = VR_IO_SIZE;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

static void *vr_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->hard_remove = 1; /* no .fuse_hidden files: unlinked open files live in core */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0; /* sizes and st_blocks change with every load */
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->nullpath_ok = 1; /* open files live on after unlink: handles need no path */
	return res();
}

static int vr_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct vr_attr a;
	int ret;

	if (fi && !path)
		ret = vr_res_fgetattr(res(), handle(fi), &a);
	else if (path)
		ret = vr_res_getattr(res(), path, &a);
	else
		ret = -ESTALE;
	if (ret == 0)
		to_stat(&a, st);
	return ret;
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_one(void *ctx, const char *name, const struct vr_attr *a)
{
	struct fill_ctx *f = ctx;
	struct stat st;

	to_stat(a, &st);
	return f->filler(f->buf, name, &st, 0, 0);
}

static int vr_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill_ctx f = {buf, filler};

	(void)path; /* NULL with nullpath_ok: the handle says which directory */
	(void)off;
	(void)flags;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	return vr_res_readdir(res(), handle(fi), fill_one, &f);
}

static int vr_opendir(const char *path, struct fuse_file_info *fi)
{
	struct vr_handle *h;
	int ret = vr_res_opendir(res(), path, &h);

	if (ret == 0)
		fi->fh = (uintptr_t)h;
	return ret;
}

static int vr_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	vr_res_release(res(), handle(fi));
	return 0;
}

static int vr_mkdir(const char *path, mode_t mode)
{
	struct vr_caller c = caller();

	return vr_res_mkdir(res(), path, mode, &c);
}

static int vr_rmdir(const char *path)
{
	struct vr_caller c = caller();

	return vr_res_rmdir(res(), path, &c);
}

static int vr_unlink(const char *path)
{
	struct vr_caller c = caller();

	return vr_res_unlink(res(), path, &c);
}

static int vr_rename(const char *from, const char *to, unsigned flags)
{
	struct vr_caller c = caller();

	return vr_res_rename(res(), from, to, flags, &c);
}

static int vr_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	return path ? vr_res_chmod(res(), path, mode) : -ESTALE;
}

static int vr_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)fi;
	return path ? vr_res_chown(res(), path, uid, gid) : -ESTALE;
}

static int vr_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	return path ? vr_res_utimens(res(), path, tv) : -ESTALE;
}

static int vr_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();

	if (size < 0)
		return -EINVAL;
	if (fi)
		return vr_res_ftruncate(res(), handle(fi), (uint64_t)size, &c);
	return path ? vr_res_truncate(res(), path, (uint64_t)size, &c) : -ESTALE;
}

static int vr_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();
	struct vr_handle *h;
	int ret = vr_res_create(res(), path, mode, &c, &h);

	if (ret)
		return ret;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int vr_open(const char *path, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();
	struct vr_handle *h;
	int ret = vr_res_open(res(), path, fi->flags, &c, &h);

	if (ret)
		return ret;
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1; /* bytes come from device memory, never the page cache */
	return 0;
}

static int vr_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t got = 0;
	int ret;

	(void)path;
	if (off < 0)
		return -EINVAL;
	ret = vr_res_read(res(), handle(fi), buf, size, (uint64_t)off, &got);
	return ret ? ret : (int)got;
}

static int vr_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vr_caller c = caller();
	int ret;

	(void)path;
	if (off < 0)
		return -EINVAL;
	ret = vr_res_write(res(), handle(fi), buf, size, (uint64_t)off, &c);
	return ret ? ret : (int)size;
}

static int vr_flush(const char *path, struct fuse_file_info *fi)
{
	struct vr_caller c = caller();

	(void)path;
	return vr_res_flush(res(), handle(fi), &c);
}

static int vr_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	vr_res_release(res(), handle(fi));
	return 0;
}

static int vr_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0; /* writes are on the device when write() returns */
}

static int vr_statfs(const char *path, struct statvfs *sv)
{
	struct vr_statfs s;
	int ret;

	(void)path;
	ret = vr_res_statfs(res(), &s);
	if (ret)
		return ret;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_blocks = s.total_bytes / 4096;
	sv->f_bfree = s.free_bytes / 4096;
	sv->f_bavail = sv->f_bfree;
	sv->f_files = s.files + 1000000;
	sv->f_ffree = 1000000;
	sv->f_favail = sv->f_ffree;
	sv->f_namemax = 255;
	return 0;
}

static int refuse(const char *what, const char *path)
{
	vr_log(LOG_INFO, "%s %s refused: only regular files and directories live here", what, path);
	return -EPERM;
}

static int vr_symlink(const char *target, const char *path)
{
	(void)target;
	return refuse("symlink", path);
}

static int vr_link(const char *from, const char *to)
{
	(void)from;
	return refuse("link", to);
}

static int vr_mknod(const char *path, mode_t mode, dev_t rdev)
{
	(void)mode;
	(void)rdev;
	return refuse("mknod", path);
}

static const struct fuse_operations ops = {
    .init = vr_init,
    .getattr = vr_getattr,
    .opendir = vr_opendir,
    .readdir = vr_readdir,
    .releasedir = vr_releasedir,
    .mkdir = vr_mkdir,
    .rmdir = vr_rmdir,
    .unlink = vr_unlink,
    .rename = vr_rename,
    .chmod = vr_chmod,
    .chown = vr_chown,
    .utimens = vr_utimens,
    .truncate = vr_truncate,
    .create = vr_create,
    .open = vr_open,
    .read = vr_read,
    .write = vr_write,
    .flush = vr_flush,
    .release = vr_release,
    .fsync = vr_fsync,
    .statfs = vr_statfs,
    .symlink = vr_symlink,
    .link = vr_link,
    .mknod = vr_mknod,
};

/* Everything the mount holds, torn down in reverse order. */
struct daemon {
	struct vr_options opts;
	struct vr_keyring *keys;
	struct vr_audit *audit;
	struct vr_backend backend;
	struct vr_residency *res;
	struct fuse *fuse;
	bool mounted;
};

static void audit_event(struct daemon *d, const char *event, const char *outcome,
			const char *detail)
{
	struct vr_audit_rec rec = {
	    .event = event, .uid = getuid(), .pid = getpid(), .outcome = outcome, .detail = detail};

	vr_audit_log(d->audit, &rec);
}

static int open_keys(struct daemon *d)
{
	if (d->opts.secret)
		return vr_keyring_load(d->opts.secret, &d->keys);
	vr_log(LOG_WARNING, "no secret= given: seals are signed with an ephemeral random secret "
			    "and cannot be checked after this mount ends");
	return vr_keyring_generate(&d->keys);
}

/* Makes the audit log's folder when it is the default one. */
static void audit_dir(const char *path)
{
	if (strcmp(path, VR_DEFAULT_AUDIT) == 0)
		mkdir("/var/log/vram-residency", 0700);
}

/* Opens everything up to and including the mount; returns 0 or -1 having said why. */
static int start(struct daemon *d, struct fuse_args *args, const char *mountpoint)
{
	struct vr_res_config rc;
	struct vr_backend_params bp;
	struct vr_device_info info;
	char detail[512];

	if (vr_options_backend_params(&d->opts, &bp) != 0)
		return -1;
	if (open_keys(d) != 0)
		return -1;
	audit_dir(d->opts.audit);
	if (vr_audit_open(d->opts.audit, &d->audit) != 0)
		return -1;
	bp.audit = d->audit;
	if (vr_backend_select(d->opts.backend, &bp, &d->backend) != 0) {
		vr_log(LOG_ERR, "cannot open backend=%s; nothing mounted", d->opts.backend);
		return -1;
	}
	rc = (struct vr_res_config){.backend = &d->backend,
				    .keys = d->keys,
				    .audit = d->audit,
				    .verify_on_open = d->opts.verify_on_open == 1};
	if (vr_res_new(&rc, &d->res) != 0) {
		vr_log(LOG_ERR, "cannot set up the tree");
		return -1;
	}
	vr_backend_info(&d->backend, &info);
	char fsname[128];

	snprintf(fsname, sizeof(fsname),
		 "-ofsname=vram-%s,subtype=vram-residency,default_permissions", info.backend);
	if (fuse_opt_add_arg(args, fsname) != 0)
		return -1;
	d->fuse = fuse_new(args, &ops, sizeof(ops), d->res);
	if (!d->fuse)
		return -1; /* libfuse said why (unknown option) */
	if (fuse_mount(d->fuse, mountpoint) != 0)
		return -1;
	d->mounted = true;
	snprintf(detail, sizeof(detail), "mounted at %s; backend %s; device %d %s (%s)%s",
		 mountpoint, info.backend, info.index, info.name, info.uuid,
		 strcmp(info.backend, "mock") == 0 ? "; MOCK: bytes in host memory" : "");
	vr_log(LOG_INFO, "%s", detail);
	audit_event(d, "daemon_started", "ok", detail);
	return 0;
}

static void stop(struct daemon *d)
{
	if (d->fuse) {
		if (d->mounted)
			fuse_unmount(d->fuse);
		fuse_destroy(d->fuse);
	}
	vr_res_free(d->res); /* scrubs and frees every file's device memory */
	vr_backend_close(&d->backend);
	if (d->audit && d->mounted)
		audit_event(d, "daemon_stopped", "ok", NULL);
	vr_audit_close(d->audit);
	vr_keyring_free(d->keys);
}

/* Lets the parent of a daemonized child exit with the start's status. */
static void report(int fd, char status)
{
	if (fd >= 0) {
		if (write(fd, &status, 1) != 1)
			vr_log(LOG_WARNING, "cannot report start-up status to the parent");
		close(fd);
	}
}

static int run(struct daemon *d, struct fuse_args *args, struct fuse_cmdline_opts *cl)
{
	int pipefd[2] = {-1, -1}, status_fd = -1, ret;

	if (!cl->foreground) {
		/* Fork before opening the device: a CUDA context does not survive fork. */
		if (pipe(pipefd) != 0) {
			perror("vram-residency: pipe");
			return 1;
		}
		pid_t pid = fork();

		if (pid < 0) {
			perror("vram-residency: fork");
			return 1;
		}
		if (pid > 0) {
			char st = 1;

			close(pipefd[1]);
			if (read(pipefd[0], &st, 1) != 1)
				st = 1;
			return st;
		}
		close(pipefd[0]);
		status_fd = pipefd[1];
		if (setsid() < 0)
			vr_log(LOG_WARNING, "setsid: %s", strerror(errno));
	}
	if (start(d, args, cl->mountpoint) != 0) {
		stop(d);
		report(status_fd, 1);
		return 1;
	}
	if (fuse_set_signal_handlers(fuse_get_session(d->fuse)) != 0) {
		stop(d);
		report(status_fd, 1);
		return 1;
	}
	if (status_fd >= 0) {
		int null = open("/dev/null", O_RDWR);

		if (chdir("/") != 0)
			vr_log(LOG_WARNING, "chdir /: %s", strerror(errno));
		vr_log_use_syslog(true);
		report(status_fd, 0);
		/* detached: stdio goes to /dev/null, messages to syslog */
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			vr_log(LOG_WARNING, "cannot detach stdio: %s", strerror(errno));
		if (null > 2)
			close(null);
	}
	if (cl->singlethread) {
		ret = fuse_loop(d->fuse);
	} else {
		ret = fuse_loop_mt(d->fuse, cl->clone_fd);
	}
	fuse_remove_signal_handlers(fuse_get_session(d->fuse));
	stop(d);
	/* a positive value is the signal that ended the loop (SIGTERM, SIGINT): a clean stop */
	return ret < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cl = {0};
	struct daemon d = {0};
	int ret = 1;

	if (vr_options_parse(&args, &d.opts) != 0)
		goto free_args;
	if (fuse_parse_cmdline(&args, &cl) != 0)
		goto free_args;
	if (cl.show_help || d.opts.show_help) {
		vr_options_help(argv[0]);
		printf("libfuse options:\n");
		fuse_cmdline_help();
		fuse_lib_help(&args);
		ret = 0;
		goto free_cl;
	}
	if (cl.show_version || d.opts.show_version) {
		printf("vram-residency %s\n", VR_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto free_cl;
	}
	if (!cl.mountpoint) {
		fprintf(stderr,
			"usage: %s [-f] [-d] [-s] [-o OPTION[,OPTION...]] MOUNTPOINT "
			"(--help for more)\n",
			argv[0]);
		ret = 2;
		goto free_cl;
	}
	if (cl.debug)
		vr_log_set_level(LOG_DEBUG);
	ret = run(&d, &args, &cl);
free_cl:
	free(cl.mountpoint);
free_args:
	vr_options_free(&d.opts);
	fuse_opt_free_args(&args);
	return ret;
}
