/* safe.c - refusing a key, log or trust store that another user could replace or add to. */
#include "safe.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether DIR's owner (ST) is this user or root; logs otherwise. */
static int owner_ok(const char *what, const char *dir, const struct stat *st)
{
	if (st->st_uid == geteuid() || st->st_uid == 0)
		return 0;
	vr_log(LOG_ERR, "the %s's folder %s is owned by uid %u: only this user or root may own it",
	       what, dir, (unsigned)st->st_uid);
	return -EACCES;
}

/* The folder holding PATH into DIR: "." for a bare name, "/" for a name at the root. */
static void folder_of(const char *path, char *dir, size_t cap)
{
	const char *slash = strrchr(path, '/');

	snprintf(dir, cap, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (!dir[0])
		strcpy(dir, "/");
}

/* Stats the folder holding PATH (its name into DIR), saying why when it cannot: 0 or -errno. */
static int stat_folder(const char *what, const char *path, char *dir, size_t cap, struct stat *st)
{
	folder_of(path, dir, cap);
	if (stat(dir, st) == 0)
		return 0;
	int ret = -errno;

	vr_log(LOG_ERR, "cannot stat the %s's folder %s: %s", what, dir, strerror(-ret));
	return ret;
}

int vr_folder_safe(const char *what, const char *path)
{
	char dir[4096];
	struct stat st;
	int ret = stat_folder(what, path, dir, sizeof(dir), &st);

	if (ret)
		return ret;
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		vr_log(LOG_ERR,
		       "the %s's folder %s is writable by group or others (mode %04o): they could "
		       "replace it; fix: chmod go-w %s",
		       what, dir, (unsigned)(st.st_mode & 07777), dir);
		return -EACCES;
	}
	return owner_ok(what, dir, &st);
}

int vr_dir_private(const char *what, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		int ret = -errno;

		vr_log(LOG_ERR, "cannot stat the %s %s: %s", what, dir, strerror(-ret));
		return ret;
	}
	if (st.st_mode & 022) {
		vr_log(
		    LOG_ERR,
		    "the %s %s is writable by group or others (mode %04o): they could add to it; "
		    "fix: chmod go-w %s",
		    what, dir, (unsigned)(st.st_mode & 07777), dir);
		return -EACCES;
	}
	return owner_ok(what, dir, &st);
}

int vr_trust_path_safe(const char *path)
{
	struct stat st;
	int ret;

	if (stat(path, &st) != 0)
		return -errno; /* the trust store's loader says what is missing */
	if (S_ISDIR(st.st_mode)) {
		ret = vr_dir_private("trust store", path);
	} else if (st.st_mode & 022) {
		vr_log(LOG_ERR,
		       "trust file %s is writable by group or others (mode %04o): they could add a "
		       "key; fix: chmod go-w %s",
		       path, (unsigned)(st.st_mode & 07777), path);
		ret = -EACCES;
	} else if (st.st_uid != geteuid() && st.st_uid != 0) {
		vr_log(LOG_ERR,
		       "trust file %s is owned by uid %u: only this user or root may own it", path,
		       (unsigned)st.st_uid);
		ret = -EACCES;
	} else {
		ret = 0;
	}
	return ret ? ret : vr_folder_safe("trust store", path);
}

int vr_folder_private(const char *what, const char *path)
{
	char dir[4096];
	struct stat st;
	int ret = stat_folder(what, path, dir, sizeof(dir), &st);

	if (ret)
		return ret;
	if ((st.st_mode & 022) || (st.st_uid != geteuid() && st.st_uid != 0)) {
		vr_log(LOG_ERR,
		       "the %s %s: its folder %s (mode %04o, uid %u) may be written by another "
		       "user, who could take the name first or replace it; choose a folder only "
		       "root or this user may write",
		       what, path, dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		return -EACCES;
	}
	return 0;
}
