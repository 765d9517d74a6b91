/* log.c - the daemon's and tools' diagnostic log (stderr or syslog). */
#include "log.h"
#include "name.h"

#include <stdarg.h>
#include <stdio.h>

static bool to_syslog;
static int max_prio = LOG_INFO;

void vr_log_use_syslog(bool on)
{
	if (on && !to_syslog)
		openlog("vram-residency", LOG_PID, LOG_DAEMON);
	to_syslog = on;
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
	if (to_syslog)
		syslog(prio, "%s", line);
	else
		fprintf(stderr, "vram-residency: %s: %s\n", names[prio & 7], line);
}
