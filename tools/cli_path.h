/* cli_path.h - what the socket's command-line tools share: a path made absolute. */
#ifndef VR_CLI_PATH_H
#define VR_CLI_PATH_H

#include <stdio.h>
#include <unistd.h>

/* PATH made absolute against the working directory (the client library takes relative paths
 * as relative to the mount), into OUT; empty when it does not fit (then: no such file). */
static inline void vr_cli_absolute(const char *path, char *out, size_t cap)
{
	char cwd[4096];
	int n;

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, cap, "%s", path);
	else
		n = snprintf(out, cap, "%s/%s", cwd, path);
	if (n < 0 || (size_t)n >= cap)
		out[0] = '\0';
}

#endif
