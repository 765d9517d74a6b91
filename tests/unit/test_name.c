/* test_name.c - the name validator: accepted and refused names with their errno. */
#include "check.h"
#include "name.h"
#include "size.h"

#include <errno.h>
#include <stdint.h>

static void test_names(void)
{
	char long_name[300];

	CHECK_EQ(vr_name_validate("model.gguf"), 0);
	CHECK_EQ(vr_name_validate(".hidden"), 0);
	CHECK_EQ(vr_name_validate("..."), 0);
	CHECK_EQ(vr_name_validate("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 0);
	CHECK_EQ(vr_name_validate("verify.txt"), 0);
	CHECK_EQ(vr_name_validate("seal"), 0);
	CHECK_EQ(vr_name_validate(""), -EINVAL);
	CHECK_EQ(vr_name_validate("."), -EINVAL);
	CHECK_EQ(vr_name_validate(".."), -EINVAL);
	CHECK_EQ(vr_name_validate("a/b"), -EINVAL);
	CHECK_EQ(vr_name_validate("tab\there"), -EINVAL);
	CHECK_EQ(vr_name_validate("nl\n"), -EINVAL);
	CHECK_EQ(vr_name_validate("del\x7f"), -EINVAL);
	CHECK_EQ(vr_name_validate("c1\xc2\x85"), -EINVAL);	    /* U+0085 NEL */
	CHECK_EQ(vr_name_validate("bad\xff"), -EINVAL);		    /* not UTF-8 */
	CHECK_EQ(vr_name_validate("over\xc0\xaf"), -EINVAL);	    /* overlong '/' */
	CHECK_EQ(vr_name_validate("sur\xed\xa0\x80"), -EINVAL);	    /* surrogate */
	CHECK_EQ(vr_name_validate("cut\xe2\x82"), -EINVAL);	    /* truncated */
	CHECK_EQ(vr_name_validate("big\xf4\x90\x80\x80"), -EINVAL); /* > U+10FFFF */
	CHECK_EQ(vr_name_validate("verify"), -EEXIST);
	CHECK_EQ(vr_name_validate("status"), -EEXIST);
	/* reserved only where generated: status and metrics at the root, verify everywhere;
	 * the syntax alone (a seal's path) takes all of them */
	CHECK_EQ(vr_name_validate_at("status", 6, false, true), 0);
	CHECK_EQ(vr_name_validate_at("metrics", 7, false, false), 0);
	CHECK_EQ(vr_name_validate_at("metrics", 7, true, false), -EEXIST);
	CHECK_EQ(vr_name_validate_at("verify", 6, false, true), -EEXIST);
	CHECK_EQ(vr_name_syntax("status", 6), 0);
	CHECK_EQ(vr_name_syntax("verify", 6), 0);
	CHECK_EQ(vr_name_syntax("a.seal", 6), 0);
	CHECK_EQ(vr_name_syntax("..", 2), -EINVAL);
	CHECK_EQ(vr_name_syntax("a\0b", 3), -EINVAL);
	CHECK_EQ(vr_name_validate("model.gguf.seal"), -EPERM);
	CHECK_EQ(vr_name_validate(".seal"), -EPERM);
	memset(long_name, 'a', 255);
	long_name[255] = '\0';
	CHECK_EQ(vr_name_validate(long_name), 0);
	long_name[255] = 'a';
	long_name[256] = '\0';
	CHECK_EQ(vr_name_validate(long_name), -ENAMETOOLONG);
	CHECK_EQ(vr_name_validate_n("a\0b", 3), -EINVAL);
	memset(long_name, 'f', 251);
	CHECK_EQ(vr_name_validate_file_n(long_name, 250), 0);
	CHECK_EQ(vr_name_validate_file_n(long_name, 251), -ENAMETOOLONG);
	CHECK_EQ(vr_name_validate_n(long_name, 251), 0);
	CHECK_EQ(vr_name_validate_file_n("x.seal", 6), -EPERM);
	/* generated names are taken only where they are generated (vnames.c's table) */
	CHECK_EQ(vr_name_validate_at("status", 6, false, false), 0);
	CHECK_EQ(vr_name_validate_at("status", 6, false, true), 0);
	CHECK_EQ(vr_name_validate_at("status", 6, true, true), -EEXIST);
	CHECK_EQ(vr_name_validate_at("verify", 6, false, true), -EEXIST);
	CHECK_EQ(vr_name_validate_at("x.seal", 6, false, false), -EPERM);
	CHECK_EQ(vr_name_validate_at("statu", 5, true, false), 0);
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
	test_sizes();
	return check_summary();
}
