#!/bin/bash
# test_blake3_oracle.sh - vram-seal digest --blake3 prints what b3sum prints, streamed on one
# thread and over subtrees on 2, 3 and 7, at the tree's boundaries and on a file of 1 GiB + 5.
. "$(dirname "$0")/lib.sh"

if ! command -v b3sum > /dev/null; then
	echo "b3sum is missing: run scripts/deps.sh"
	exit 1
fi
K=1024
M=$((K * K))
sizes="0 1 $((K - 1)) $K $((K + 1)) $((4 * K)) $((M - 1)) $M $((M + 1))"
seed=${VR_SEED:-$RANDOM}
echo "random sizes from seed $seed"
RANDOM=$seed
for _ in 1 2 3 4; do
	sizes="$sizes $(((RANDOM * 32768 + RANDOM) % (3 * M)))"
done
cd "$WORK"
for n in $sizes; do
	head -c "$n" /dev/urandom > "f$n"
	want=$(b3sum "f$n")
	for j in 1 2 3 7; do
		check "size $n, $j thread(s)" test "$("$BIN/vram-seal" digest --blake3 -j $j "f$n")" = "$want"
	done
	check "size $n, every CPU" test "$("$BIN/vram-seal" digest --blake3 "f$n")" = "$want"
done
check "several files at once" test "$("$BIN/vram-seal" digest --blake3 f0 f1 f1025)" = "$(b3sum f0 f1 f1025)"
refuse "missing file" "No such file" "$BIN/vram-seal" digest --blake3 nope

# the large size: the deep tree (2^20 chunks and 5 bytes), and one flipped byte seen
big=${VR_B3_BIG:-$((1024 * M + 5))}
head -c "$big" /dev/urandom > big
want=$(b3sum big)
for j in 1 2 3 7; do
	t0=$(date +%s.%N)
	got=$("$BIN/vram-seal" digest --blake3 -j $j big)
	t1=$(date +%s.%N)
	check "$big bytes, $j thread(s)" test "$got" = "$want"
	awk -v a="$t0" -v b="$t1" -v n="$big" -v j="$j" \
		'BEGIN {printf "%d bytes on %d thread(s): %.2f s, %.2f GB/s\n", n, j, b - a, n / (b - a) / 1e9}'
done
off=$((big / 2))
byte=$(od -An -tu1 -j $off -N1 big | tr -d ' ')
printf "\\$(printf %o $((255 - byte)))" | dd of=big bs=1 seek=$off conv=notrunc status=none
check "a flipped byte changes it" test "$("$BIN/vram-seal" digest --blake3 -j 2 big)" != "$want"
check "and b3sum agrees" test "$("$BIN/vram-seal" digest --blake3 -j 3 big)" = "$(b3sum big)"
rm -f big
finish
