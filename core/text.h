/* text.h - a growing text buffer that remembers a failed allocation, not failing each append. */
#ifndef VR_TEXT_H
#define VR_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Zero-initialised, it is empty; BUF is malloc'd and NUL-terminated once anything is appended. */
struct vr_text {
	char *buf;
	size_t len, cap;
	bool oom; /* an append failed: the text is incomplete and only fit to be freed */
};

/* Appends printf-style text to T; on allocation failure marks T->oom and drops the rest. */
void vr_text_printf(struct vr_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the line "A B[ C]" (C omitted when empty) to T, as vr_text_printf(). */
void vr_text_line(struct vr_text *t, const char *a, const char *b, const char *c);

#endif
