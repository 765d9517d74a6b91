#!/bin/sh
# test.sh - the README's second command: installs, builds, and runs every test through CTest;
# then, in CI, the format and analysers' checks, the coverage gate (which is where CI runs
# the tests of the mock build, once), every test again under
# ASan+UBSan, the threaded ones under TSan, and the fuzz targets briefly under clang.
# Each stage prints how long it took.
set -eu
cd "$(dirname "$0")/.."
t0=$(date +%s)
ts=$t0
stage() {
	now=$(date +%s)
	echo "test.sh: [$((now - ts)) s, $((now - t0)) s in all] $1"
	ts=$now
}
scripts/deps.sh
stage "dependencies checked"
scripts/build.sh
stage "built"
full=${VR_FULL:-${CI:-}}
if [ "$full" = "" ]; then
	(cd build && ctest --output-on-failure -j 2)
	stage "every test passed (CTest)"
else
	# CI runs every test once under coverage (below, the mock build); here only those that
	# exist in the CUDA build alone (label cuda: the CUDA doubles, the kernel's emulation)
	(cd build && ctest --output-on-failure -j 2 -L cuda)
	stage "the CUDA build's tests passed (CTest -L cuda)"
fi
if [ "$full" != "" ]; then
	# the one .clang-format holds for every C and CUDA file (scripts/pre-commit checks the
	# staged ones; scripts/install-hooks.sh installs it)
	if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
		git ls-files '*.c' '*.h' '*.cu' '*.cuh'
	else
		find core cuda fs tools tests -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh'
	fi | xargs clang-format --dry-run -Werror
	stage "format checked (clang-format)"
	# static analysis: no finding; each exception is suppressed inline with its reason
	cppcheck --enable=warning,portability,performance --inline-suppr --quiet \
		--error-exitcode=1 -D_GNU_SOURCE -I core -I core/res -I cuda -I fs -I sock -I client \
		--suppress=missingIncludeSystem core fs sock client cuda/*.c tools/*.c tools/dev/*.c
	stage "static analysis clean (cppcheck)"
	# clang-tidy: the path-sensitive analyser and the bug-prone patterns (.clang-tidy says
	# which and why); every finding is an error, each exception is inline with its reason
	cmake -S . -B build-tidy -DVR_WITH_CUDA=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > /dev/null
	run-clang-tidy -p build-tidy -quiet "$(pwd)/(core|fs|sock|client|cuda|tools)/" \
		> build-tidy/tidy.log 2>&1 || {
		grep -E '(warning|error):' build-tidy/tidy.log || tail -30 build-tidy/tidy.log
		exit 1
	}
	stage "static analysis clean (clang-tidy)"
	# line and branch coverage by every test, per directory, against its floor
	scripts/coverage.sh
	stage "every other test passed, coverage at or above its floors (gcovr)"
	echo "test.sh: every test again under AddressSanitizer and UndefinedBehaviorSanitizer"
	cmake -S . -B build-asan -DVR_SANITIZE=ON -DVR_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j "$(nproc)"
	(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2)
	stage "ASan+UBSan pass"
	echo "test.sh: the threaded tests under ThreadSanitizer (clang)"
	CC=clang cmake -S . -B build-tsan -DVR_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
	cmake --build build-tsan -j "$(nproc)"
	(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure \
		-R 'unit_res_|unit_locks|unit_faults|unit_channel|unit_digest|unit_manifest_shards|backend_mock|e2e_test_concurrent|e2e_test_chaos|e2e_test_rename_rm|e2e_test_expected|e2e_test_oms_links|e2e_test_socket|e2e_test_load_tree|e2e_test_restart|e2e_test_evict')
	stage "ThreadSanitizer pass"
	echo "test.sh: fuzz targets under libFuzzer (clang), 20 s each"
	CC=clang cmake -S . -B build-fuzz -DVR_FUZZ=ON -DVR_WITH_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j "$(nproc)" --target fuzz_seal fuzz_name fuzz_sums fuzz_b3sums fuzz_oms fuzz_client
	for t in seal name sums b3sums oms client; do
		work=$(mktemp -d)
		cp tests/fuzz/corpus/$t/* "$work/"
		build-fuzz/bin/fuzz_$t -max_total_time=20 -max_len=8192 "$work" > build-fuzz/fuzz_$t.log 2>&1 ||
			{ tail -40 build-fuzz/fuzz_$t.log; exit 1; }
		rm -rf "$work"
	done
	stage "fuzzing"
fi
