/* audit_state.c - the chain's state file: the next record's seq, the last MAC and the next key,
 * replaced after every record so that a restart needs neither the first key nor the past. */
#include "audit_private.h"
#include "digest.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC   "vram-residency audit chain state v1\n"
#define LINE_MAX_READ 65536

/* fsyncs the folder holding PATH, so that a rename into it is on disk. Returns 0 or -errno. */
static int sync_folder(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 0;
	char dir[PATH_MAX] = ".";
	int fd, ret = 0;

	if (n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (n) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Writes TEXT (LEN bytes) to a new file TMP, mode 0600, on disk with SYNC. 0 or -errno. */
static int write_temp(const char *tmp, const char *text, size_t len, bool sync)
{
	int fd, ret;

	unlink(tmp); /* one a crash left; the folder is the log's, which others cannot write */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	ret = audit_write_all(fd, text, len);
	if (ret == 0 && sync && fdatasync(fd) != 0)
		ret = -errno;
	close(fd);
	return ret;
}

int audit_state_save(struct vr_audit *a, bool sync)
{
	char text[256], prev[2 * VR_AUDIT_MAC_SIZE + 1], key[2 * VR_AUDIT_MAC_SIZE + 1];
	int ret, len;

	vr_hex(a->prev, VR_AUDIT_MAC_SIZE, prev);
	vr_hex(a->key, VR_AUDIT_MAC_SIZE, key);
	len = snprintf(text, sizeof(text), STATE_MAGIC "seq %llu\nprev %s\nkey %s\n",
		       (unsigned long long)a->seq, prev, key);
	explicit_bzero(key, sizeof(key));
	/* written whole beside it, then renamed over it: a crash leaves the old or the new */
	ret = write_temp(a->state_tmp, text, (size_t)len, sync);
	if (ret == 0 && rename(a->state_tmp, a->state_path) != 0)
		ret = -errno;
	if (ret == 0 && sync)
		ret = sync_folder(a->state_path);
	if (ret)
		unlink(a->state_tmp);
	explicit_bzero(text, sizeof(text));
	if (ret)
		vr_log(LOG_ERR, "audit chain state %s could not be replaced: %s", a->state_path,
		       strerror(-ret));
	return ret;
}

/* Checks that state file PATH (open as FD) is a regular file of this user that nobody else
 * may read or write. Returns 0, -EACCES or -EINVAL, logged with how to fix it. */
static int state_safe(const char *path, int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		vr_log(LOG_ERR, "audit chain state %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		vr_log(LOG_ERR,
		       "audit chain state %s is owned by uid %u with mode %04o: it holds the "
		       "chain's key and must be uid %u's alone; fix: chown %u %s; chmod 600 %s",
		       path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		       (unsigned)geteuid(), (unsigned)geteuid(), path, path);
		return -EACCES;
	}
	return 0;
}

/* Parses state TEXT into SEQ, PREV and KEY; returns 0 or -EBADMSG. */
static int parse_state(const char *text, uint64_t *seq, uint8_t prev[VR_AUDIT_MAC_SIZE],
		       uint8_t key[VR_AUDIT_MAC_SIZE])
{
	char ph[2 * VR_AUDIT_MAC_SIZE + 1], kh[2 * VR_AUDIT_MAC_SIZE + 1];
	unsigned long long s;
	int end = 0, ret = -EBADMSG;

	if (strncmp(text, STATE_MAGIC, strlen(STATE_MAGIC)) == 0 &&
	    sscanf(text + strlen(STATE_MAGIC), "seq %llu\nprev %64[0-9a-f]\nkey %64[0-9a-f]\n%n",
		   &s, ph, kh, &end) == 3 &&
	    end > 0 && text[strlen(STATE_MAGIC) + (size_t)end] == '\0' &&
	    strlen(ph) == 2 * VR_AUDIT_MAC_SIZE && strlen(kh) == 2 * VR_AUDIT_MAC_SIZE &&
	    vr_unhex(ph, prev, VR_AUDIT_MAC_SIZE) == 0 &&
	    vr_unhex(kh, key, VR_AUDIT_MAC_SIZE) == 0) {
		*seq = s;
		ret = 0;
	}
	explicit_bzero(kh, sizeof(kh));
	return ret;
}

int audit_state_load(const char *path, uint64_t *seq, uint8_t prev[VR_AUDIT_MAC_SIZE],
		     uint8_t key[VR_AUDIT_MAC_SIZE])
{
	char text[300];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int ret = fd < 0 ? -errno : state_safe(path, fd);

	if (fd < 0 && ret != -ENOENT)
		vr_log(LOG_ERR, "cannot open audit chain state %s: %s", path, strerror(-ret));
	if (ret == 0) {
		do
			n = read(fd, text, sizeof(text) - 1);
		while (n < 0 && errno == EINTR);
		ret = n < 0 ? -errno : 0;
	}
	if (ret == 0) {
		text[n] = '\0';
		ret = parse_state(text, seq, prev, key);
		if (ret)
			vr_log(LOG_ERR,
			       "audit chain state %s is not a state file this daemon wrote "
			       "(damaged, or another file): nothing is chained onto it",
			       path);
	}
	explicit_bzero(text, sizeof(text));
	if (fd >= 0)
		close(fd);
	return ret;
}

int audit_last_line(const struct vr_audit *a, char **line, size_t *len)
{
	int fd = open(a->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st = {0};
	char *buf = NULL;
	int ret = fd < 0 || fstat(fd, &st) != 0 ? -errno : 0;
	size_t want = 0, end;
	ssize_t got = 0;

	*line = NULL;
	if (ret == 0 && st.st_size > 0) {
		want = st.st_size > LINE_MAX_READ ? LINE_MAX_READ : (size_t)st.st_size;
		buf = malloc(want + 1);
		got = buf ? pread(fd, buf, want, st.st_size - (off_t)want) : -1;
		ret = !buf ? -ENOMEM : got != (ssize_t)want ? (got < 0 ? -errno : -EIO) : 0;
	}
	if (fd >= 0)
		close(fd);
	if (ret || want == 0) {
		free(buf);
		return ret;
	}
	for (end = want; end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r');)
		end--;
	size_t start = end;

	while (start > 0 && buf[start - 1] != '\n')
		start--;
	if (start == 0 && want < (size_t)st.st_size) {
		free(buf);
		return -EFBIG; /* the last line is longer than what was read */
	}
	memmove(buf, buf + start, end - start);
	buf[end - start] = '\0';
	*line = buf;
	*len = end - start;
	return 0;
}
