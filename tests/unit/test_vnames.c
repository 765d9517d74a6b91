/* test_vnames.c - where a user may create a name: the generated entries stay reserved where
 * they are generated, and only there. */
#include "check.h"
#include "vnames.h"

#include <errno.h>
#include <string.h>

/* NAME created in a directory below the root (AT_ROOT false) or at the root */
static int at(const char *name, bool at_root, bool is_file)
{
	return res_name_creatable(name, strlen(name), at_root, is_file);
}

static void test_generated_places(void)
{
	/* verify is generated in every directory */
	CHECK_EQ(at("verify", true, false), -EEXIST);
	CHECK_EQ(at("verify", false, true), -EEXIST);
	CHECK_EQ(at("verify", false, false), -EEXIST);
	/* status and metrics at the root only: below it they are ordinary names */
	CHECK_EQ(at("status", true, true), -EEXIST);
	CHECK_EQ(at("status", true, false), -EEXIST);
	CHECK_EQ(at("metrics", true, false), -EEXIST);
	CHECK_EQ(at("metrics", true, true), -EEXIST);
	CHECK_EQ(at("status", false, false), 0);
	CHECK_EQ(at("status", false, true), 0);
	CHECK_EQ(at("metrics", false, false), 0);
	CHECK_EQ(at("metrics", false, true), 0);
	/* the seal's form, beside every file, everywhere; the bare suffix too */
	CHECK_EQ(at("model.gguf.seal", true, true), -EPERM);
	CHECK_EQ(at("x.seal", false, false), -EPERM);
	CHECK_EQ(at(".seal", false, true), -EPERM);
	/* near misses are ordinary names */
	CHECK_EQ(at("statu", true, false), 0);
	CHECK_EQ(at("verify.txt", true, true), 0);
	CHECK_EQ(at("seal", true, true), 0);
	CHECK_EQ(at("a.seal.bin", true, true), 0);
}

static void test_syntax_and_length(void)
{
	char long_name[300];

	/* the syntax first, wherever */
	CHECK_EQ(at("..", false, false), -EINVAL);
	CHECK_EQ(at("a/b", true, true), -EINVAL);
	CHECK_EQ(res_name_creatable("a\0b", 3, false, true), -EINVAL);
	/* a file's name leaves room for "<name>.seal" within 255 bytes; a directory's need not */
	memset(long_name, 'f', sizeof(long_name));
	CHECK_EQ(res_name_creatable(long_name, VR_FILE_NAME_MAX, false, true), 0);
	CHECK_EQ(res_name_creatable(long_name, VR_FILE_NAME_MAX + 1, false, true), -ENAMETOOLONG);
	CHECK_EQ(res_name_creatable(long_name, VR_FILE_NAME_MAX + 1, false, false), 0);
	CHECK_EQ(res_name_creatable(long_name, VR_NAME_MAX, true, false), 0);
	CHECK_EQ(res_name_creatable(long_name, VR_NAME_MAX + 1, true, false), -ENAMETOOLONG);
	CHECK_EQ(VR_FILE_NAME_MAX, 250);
}

int main(void)
{
	test_generated_places();
	test_syntax_and_length();
	return check_summary();
}
