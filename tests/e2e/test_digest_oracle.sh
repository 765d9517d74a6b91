#!/bin/bash
# test_digest_oracle.sh - vram-seal digest prints byte for byte what fsverity digest prints.
. "$(dirname "$0")/lib.sh"

if ! command -v fsverity > /dev/null; then
	echo "fsverity (fsverity-utils) is missing: run scripts/deps.sh"
	exit 1
fi
B=4096
U=$((128 * B))
sizes="0 1 4095 4096 4097 $((U - 1)) $U $((U + 1)) $((128 * U - 1)) $((128 * U)) $((128 * U + 1))"
seed=${VR_SEED:-$RANDOM}
echo "random sizes from seed $seed"
RANDOM=$seed
for _ in 1 2 3 4 5 6; do
	sizes="$sizes $(((RANDOM * 32768 + RANDOM) % (3 * U)))"
done
cd "$WORK"
for n in $sizes; do
	head -c "$n" /dev/urandom > "f$n"
	check "size $n" test "$("$BIN/vram-seal" digest "f$n")" = "$(fsverity digest "f$n")"
	check "size $n, one thread" test "$("$BIN/vram-seal" digest -j 1 "f$n")" = "$(fsverity digest "f$n")"
done
check "several files at once" test "$("$BIN/vram-seal" digest f0 f1 f4097)" = "$(fsverity digest f0 f1 f4097)"
refuse "missing file" "No such file" "$BIN/vram-seal" digest nope
"$BIN/vram-seal" digest > /dev/null 2>&1
check "no file: usage, exit 2" test $? = 2
"$BIN/vram-seal" bogus > /dev/null 2>&1
check "unknown command: exit 2" test $? = 2
check "digest --help" bash -c "'$BIN/vram-seal' digest --help | grep -q usage"
check "verify --help" bash -c "'$BIN/vram-seal' verify --help | grep -q usage"
"$BIN/vram-seal" verify f1 > /dev/null 2>&1
check "verify without --secret: exit 2" test $? = 2
finish
