/* log.h - the daemon's and tools' diagnostic log (stderr or syslog, and a file); never carries key
 * bytes. */
#ifndef VR_LOG_H
#define VR_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Sends later messages to syslog (true) or stderr (false, the default). */
void vr_log_use_syslog(bool on);
/* Also writes later messages to the file at PATH (appended; created mode 0600; a symbolic
 * link is refused), each line dated: where a detached daemon's messages go when no syslog
 * listens. Returns 0 or -errno. */
int vr_log_open_file(const char *path);
/* Whether a file was given (vr_log_open_file). */
bool vr_log_has_file(void);
/* Sets the lowest priority shown (LOG_DEBUG shows all; default LOG_INFO). */
void vr_log_set_level(int prio);
/* Logs one line at PRIO (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG). */
void vr_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
