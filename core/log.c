/* log.c - the daemon's and tools' diagnostic log (stderr or syslog, and a file). */
#include "log.h"
#include "name.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static bool to_syslog;
static FILE *to_file;
static int max_prio = LOG_INFO;

void vr_log_use_syslog(bool on)
{
	if (on && !to_syslog)
		openlog("vram-residency", LOG_PID, LOG_DAEMON);
	to_syslog = on;
}

int vr_log_open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "a");

	if (!f) {
		int err = errno;

		close(fd);
		return -err;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	if (to_file)
		fclose(to_file);
	to_file = f;
	return 0;
}

bool vr_log_has_file(void)
{
	return to_file != NULL;
}

void vr_log_set_level(int prio)
{
	max_prio = prio;
}

void vr_log(int prio, const char *fmt, ...)
{
	static const char *const names[] = {"emerg",   "alert",	 "crit", "error",
					    "warning", "notice", "info", "debug"};
	va_list ap;

	if (prio > max_prio)
		return;
	char raw[1024], line[4 * sizeof(raw)];

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* names come from users: no control character may forge or break a log line, and bytes
	 * that are not UTF-8 are written as \xNN, so the log stays valid text */
	for (char *c = raw; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	vr_utf8_escape(raw, line, sizeof(line));
	if (to_file) {
		char when[32] = "";
		struct tm tm;
		time_t now = time(NULL);

		if (gmtime_r(&now, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(to_file, "%s vram-residency[%d]: %s: %s\n", when, (int)getpid(),
			names[prio & 7], line);
	}
	if (to_syslog)
		syslog(prio, "%s", line);
	else
		fprintf(stderr, "vram-residency: %s: %s\n", names[prio & 7], line);
}
