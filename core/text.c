/* text.c - a growing text buffer that remembers a failed allocation, not failing each append. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void vappend(struct vr_text *t, const char *fmt, va_list ap0)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_copy(ap, ap0);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->buf && (size_t)n < t->cap - t->len)
			break;
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *b = realloc(t->buf, cap);

		if (!b) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
	t->len += (size_t)n;
}

void vr_text_printf(struct vr_text *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(t, fmt, ap);
	va_end(ap);
}

void vr_text_line(struct vr_text *t, const char *a, const char *b, const char *c)
{
	vr_text_printf(t, "%s %s%s%s\n", a, b, *c ? " " : "", c);
}
