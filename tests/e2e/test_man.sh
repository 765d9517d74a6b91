#!/bin/bash
# test_man.sh - the manual pages render without warnings and name every option --help lists and
# every vram-seal command, so they cannot fall behind the programs.
set -u
BIN=$(cd "${1:?usage: $0 BUILD_BIN_DIR}" && pwd)
MAN=$(cd "$(dirname "$0")/../../docs/man" && pwd)
PASS=0
FAIL=0
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
for page in "$MAN/vram-residency.8" "$MAN/vram-keeper.8" "$MAN/vram-seal.1" "$MAN/vram-map.1" "$MAN/vram-load.1" "$MAN/vram-evict.1"; do
	warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
	if [ -n "$warnings" ]; then bad "$page renders with warnings: $warnings"; else PASS=$((PASS + 1)); fi
done
# the daemon's own options: the section of --help before libfuse's
for opt in $("$BIN/vram-residency" --help 2> /dev/null | sed -n '/^vram-residency options:/,/^libfuse options:/p' |
	sed -n 's/^ *-o \([a-z_0-9]*\)=.*/\1/p' | sort -u); do
	if grep -Eq "^\\.(BI|BR) $opt=" "$MAN/vram-residency.8"; then PASS=$((PASS + 1)); else bad "vram-residency.8 lacks -o $opt"; fi
done
for cmd in $("$BIN/vram-seal" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p;s/^  \([a-z-]*\)$/\1/p' | sort -u); do
	if grep -q "^\\.B $cmd\$" "$MAN/vram-seal.1"; then PASS=$((PASS + 1)); else bad "vram-seal.1 lacks the command $cmd"; fi
done
# the socket's tools: every long option their --help names
for tool in vram-map vram-load vram-evict; do
	for opt in $("$BIN/$tool" --help | grep -o -- '--[a-z]*' | sort -u); do
		if grep -qF -- "$(printf '%s' "$opt" | sed 's/-/\\-/g')" "$MAN/$tool.1"; then
			PASS=$((PASS + 1))
		else
			bad "$tool.1 lacks $opt"
		fi
	done
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ] && [ "$PASS" -ge 20 ]
