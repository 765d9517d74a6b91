/* safe.h - refusing a key, log or trust store that another user could replace or add to. */
#ifndef VR_SAFE_H
#define VR_SAFE_H

/*
 * Checks the folder holding PATH (WHAT names the file in the log line, as "audit log" or
 * "secret file"): refused when group or others may write it without the sticky bit (they
 * could rename the file away and put theirs in its place), or when it is owned by a user
 * other than this one and root. Logs why and how to fix it. Returns 0, -EACCES or -errno.
 */
int vr_folder_safe(const char *what, const char *path);
/*
 * Checks folder DIR, whose every file counts (a trust store: a file added there is a key
 * trusted): refused when group or others may write it at all (the sticky bit does not stop
 * an addition), or when owned by a user other than this one and root. Returns as above.
 */
int vr_dir_private(const char *what, const char *dir);
/*
 * Checks the folder holding PATH, a name others could take first (a socket): refused when
 * group or others may write it at all, sticky or not, or when owned by a user other than
 * this one and root. Says to choose another folder. Returns 0, -EACCES or -errno.
 */
int vr_folder_private(const char *what, const char *path);
/*
 * Checks a trust store PATH (trust=: a PEM file, or a folder of them) the same way: a file
 * others may write, or a folder they may add a key to, is refused, and so is a folder
 * holding either that they could replace it in. Returns as above.
 */
int vr_trust_path_safe(const char *path);

#endif
