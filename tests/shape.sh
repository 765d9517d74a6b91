#!/bin/sh
# shape.sh - the product's C stays readable: no file over 700 lines, no function over 80
# (docs/architecture.md, "Conventions"). Functions are found as the project's style writes
# them: the opening brace alone in column 0, the closing one likewise.
# Usage: shape.sh SRCDIR
set -eu
cd "$1"
files=$(ls core/*.c core/res/*.c cuda/*.c cuda/*.cu fs/*.c sock/*.c client/*.c tools/*.c)
status=0
for f in $files; do
	n=$(wc -l < "$f")
	if [ "$n" -gt 700 ]; then
		echo "shape: $f has $n lines (at most 700: split it along its jobs)"
		status=1
	fi
done
# shellcheck disable=SC2086
awk '
	/^\{/ { start = FNR; name = prev }
	/^\}/ { if (start) { len = FNR - start + 1
		if (len > 80) { printf "shape: %s:%d: %d lines: %s\n", FILENAME, start, len, name; bad = 1 }
		start = 0 } }
	/^[A-Za-z]/ && !/^[{}]/ { prev = $0 }
	END { exit bad }' $files || status=1
count=$(echo "$files" | wc -w)
[ "$status" -eq 0 ] && echo "shape: $count files, each at most 700 lines, no function over 80"
exit $status
