/* test_name.c - the name syntax and size parsing: accepted and refused input with its errno. */
#include "check.h"
#include "name.h"
#include "size.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* NAME (a C string) as a path component */
static int syntax(const char *name)
{
	return vr_name_syntax(name, strlen(name));
}

static void test_names(void)
{
	char long_name[300];

	CHECK_EQ(syntax("model.gguf"), 0);
	CHECK_EQ(syntax(".hidden"), 0);
	CHECK_EQ(syntax("..."), 0);
	CHECK_EQ(syntax("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 0);
	CHECK_EQ(syntax("verify.txt"), 0);
	CHECK_EQ(syntax("seal"), 0);
	CHECK_EQ(syntax(""), -EINVAL);
	CHECK_EQ(syntax("."), -EINVAL);
	CHECK_EQ(syntax(".."), -EINVAL);
	CHECK_EQ(syntax("a/b"), -EINVAL);
	CHECK_EQ(syntax("tab\there"), -EINVAL);
	CHECK_EQ(syntax("nl\n"), -EINVAL);
	CHECK_EQ(syntax("del\x7f"), -EINVAL);
	CHECK_EQ(syntax("c1\xc2\x85"), -EINVAL);	  /* U+0085 NEL */
	CHECK_EQ(syntax("bad\xff"), -EINVAL);		  /* not UTF-8 */
	CHECK_EQ(syntax("over\xc0\xaf"), -EINVAL);	  /* overlong '/' */
	CHECK_EQ(syntax("sur\xed\xa0\x80"), -EINVAL);	  /* surrogate */
	CHECK_EQ(syntax("cut\xe2\x82"), -EINVAL);	  /* truncated */
	CHECK_EQ(syntax("big\xf4\x90\x80\x80"), -EINVAL); /* > U+10FFFF */
	/* the syntax knows nothing of generated names (a seal's path takes all of them);
	 * where they are reserved is the residency's (test_vnames.c) */
	CHECK_EQ(syntax("status"), 0);
	CHECK_EQ(syntax("metrics"), 0);
	CHECK_EQ(syntax("verify"), 0);
	CHECK_EQ(syntax("a.seal"), 0);
	CHECK_EQ(syntax(".seal"), 0);
	CHECK_EQ(vr_name_syntax("a\0b", 3), -EINVAL);
	memset(long_name, 'a', 255);
	long_name[255] = '\0';
	CHECK_EQ(syntax(long_name), 0);
	long_name[255] = 'a';
	long_name[256] = '\0';
	CHECK_EQ(syntax(long_name), -ENAMETOOLONG);
}

/* what is not UTF-8 is written as \xNN; what is, is kept; the output always fits */
static void test_escape(void)
{
	char out[64];

	CHECK_STR(vr_utf8_escape("plain", out, sizeof(out)), "plain");
	CHECK_STR(vr_utf8_escape("caf\xc3\xa9", out, sizeof(out)), "caf\xc3\xa9");
	CHECK_STR(vr_utf8_escape("bad\xff.bin", out, sizeof(out)), "bad\\xff.bin");
	CHECK_STR(vr_utf8_escape("\xc0\xaf", out, sizeof(out)), "\\xc0\\xaf"); /* overlong */
	CHECK_STR(vr_utf8_escape("\xed\xa0\x80", out, sizeof(out)), "\\xed\\xa0\\x80");
	CHECK_STR(vr_utf8_escape("cut\xe2\x82", out, sizeof(out)), "cut\\xe2\\x82");
	CHECK_STR(vr_utf8_escape("\xe2\x80\xae", out, sizeof(out)),
		  "\xe2\x80\xae"); /* bidi: UTF-8 */
	/* short room: cut at a character's end, never inside an escape or a sequence */
	CHECK_STR(vr_utf8_escape("ab\xff", out, 5), "ab");
	CHECK_STR(vr_utf8_escape("a\xc3\xa9", out, 3), "a");
	CHECK_STR(vr_utf8_escape("x", out, 1), "");
	/* 4 * len + 1 always suffices */
	char all[256], big[4 * 255 + 1];

	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	all[255] = '\0';
	vr_utf8_escape(all, big, sizeof(big));
	CHECK(strlen(big) > 255);
	CHECK(strstr(big, "\\xff") != NULL);
}

static void test_sizes(void)
{
	uint64_t v = 7;

	CHECK_EQ(vr_size_parse("2G", &v), 0);
	CHECK_EQ(v, 2147483648LL);
	CHECK_EQ(vr_size_parse("512M", &v), 0);
	CHECK_EQ(v, 512LL << 20);
	CHECK_EQ(vr_size_parse("4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(vr_size_parse("1k", &v), 0);
	CHECK_EQ(v, 1024);
	v = 7;
	CHECK_EQ(vr_size_parse("", &v), -EINVAL);
	CHECK_EQ(vr_size_parse("-1", &v), -EINVAL);
	CHECK_EQ(vr_size_parse("1X", &v), -EINVAL);
	CHECK_EQ(vr_size_parse("1GB", &v), -EINVAL);
	CHECK_EQ(vr_size_parse("99999999999999999999", &v), -EINVAL);
	CHECK_EQ(vr_size_parse("17179869184G", &v), -EINVAL); /* 2^64 overflows */
	CHECK_EQ(v, 7);
}

int main(void)
{
	test_names();
	test_escape();
	test_sizes();
	return check_summary();
}
