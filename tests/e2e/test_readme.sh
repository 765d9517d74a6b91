#!/bin/bash
# test_readme.sh - README.md followed literally, as a new user types it: in a fresh copy of the
# checkout (nothing built), the quick start's scripts/mount.sh, then every line of every command
# block in the README's order, with only the environment the README tells the user to set; then
# the same commands after `cmake --install build`, with none set; the unmount the README names;
# and VR_OPTIONS=capacity=8G scripts/mount.sh. It runs in a mount namespace of its own, over
# empty /run, /etc/vram-residency and /var/log/vram-residency, so /run/vram is the
# test's and nothing of the machine's changes (an empty /usr/local too, for the install). The quick start's scripts/test.sh is the one
# line not run here (CI runs it: .ci/run).
. "$(dirname "$0")/lib.sh"

# it builds and tests its own copy (scripts/mount.sh's plain build), whatever $BIN is: the
# sanitizer and coverage passes, which run every test again, would only build it again
if nm "$BIN/vram-residency" 2> /dev/null | grep -qE '__asan_init|__tsan_init|__gcov_'; then
	echo "SKIP: an instrumented build; the plain build's run covers the README"
	exit 77
fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CLONE=$WORK/clone
README=$SRC/README.md
mkdir -p "$CLONE"
# a fresh clone: the checkout's files as they are now (uncommitted changes too), nothing built
if git -C "$SRC" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
	git -C "$SRC" ls-files -z -co --exclude-standard |
		tar -C "$SRC" --null --ignore-failed-read -T - -cf - 2> /dev/null | tar -C "$CLONE" -xf -
else
	tar -C "$SRC" --exclude='./build*' -cf - . | tar -C "$CLONE" -xf -
fi
check "a fresh copy of the checkout" test -x "$CLONE/scripts/mount.sh" -a ! -e "$CLONE/build"

# the README's command blocks (``` fences), one file each, in order
awk -v dir="$WORK" '/^```/ { if (inb) { inb = 0 } else { inb = 1; n++ }; next }
	inb { print > (dir "/block" n) }' "$README"
blocks=$(find "$WORK" -maxdepth 1 -name 'block*' | wc -l)
check "the README has its command blocks (quick start, try it, socket)" test "$blocks" -ge 3
check "the quick start is two commands" test "$(grep -c . "$WORK/block1")" = 2
check "the quick start mounts with scripts/mount.sh" grep -q '^scripts/mount.sh ' "$WORK/block1"
check "the README names its unmount" grep -q 'Unmount with `fusermount3 -u /run/vram`' "$README"
check "and the remount with options" grep -q '`VR_OPTIONS=capacity=8G scripts/mount.sh`' "$README"

# the user's own files, which the README's examples name: a model, a folder with its SHA256SUMS
mkdir -p "$CLONE/llama-3-8b"
head -c 3000000 /dev/urandom > "$CLONE/model.gguf"
head -c 1000000 /dev/urandom > "$CLONE/llama-3-8b/model.safetensors"
echo '{"vocab": 32000}' > "$CLONE/llama-3-8b/tokenizer.json"
(cd "$CLONE/llama-3-8b" && sha256sum model.safetensors tokenizer.json > SHA256SUMS)

# session.sh: the user's shell. Each line of each block runs as typed (eval, so an export stays
# for the next); its status goes to $WORK/lines
cat > "$WORK/session.sh" << 'SH'
set -u
WORK=$1 CLONE=$2 BLOCKS=$3
for d in /run /var/log/vram-residency; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
mount -t tmpfs -o mode=0700 tmpfs /etc/vram-residency
trap 'fusermount3 -u /run/vram 2> /dev/null' EXIT
cd "$CLONE"
# run_line WHERE LINE: runs LINE as the user's shell would; records its status
run_line() {
	echo "\$ $2" >> "$WORK/session.log"
	eval "$2" >> "$WORK/session.log" 2>&1
	echo "$? $1: $2" >> "$WORK/lines"
}
for b in $(seq 1 "$BLOCKS"); do
	while IFS= read -r line; do
		case $line in
		'' | '#'*) continue ;;
		'scripts/test.sh '*) echo "0 block$b: (run by CI, not here) $line" >> "$WORK/lines" ;;
		*) run_line "block$b" "$line" ;;
		esac
	done < "$WORK/block$b"
done
# the same, installed: a fresh shell with no PATH or PYTHONPATH of the README's (the README:
# "or cmake --install build installs them ... and then no line of it is needed")
mount -t tmpfs -o mode=0755 tmpfs /usr/local # what the install writes stays the test's
run_line install "cmake --install build > /dev/null"
(
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	unset PYTHONPATH VRAM_CLIENT_LIB
	cd /
	for b in $(seq 2 "$BLOCKS"); do
		grep -E '^(vram-map|vram-load|python3) ' "$WORK/block$b" | while IFS= read -r line; do
			case $line in vram-load*) line="cd '$CLONE' && $line" ;; esac
			run_line installed "$line"
		done
	done
	run_line installed "man vram-residency | grep -q socket="
	run_line installed "vram-map --version"
)
run_line readme "fusermount3 -u /run/vram"
sleep 1
run_line readme "VR_OPTIONS=capacity=8G scripts/mount.sh"
run_line readme "test \"\$(df -B1 --output=size /run/vram | tail -1 | tr -d ' ')\" = 8589934592"
run_line readme "grep -q 'detached (pid [0-9]*); messages go to /var/log/vram-residency/daemon.log' /var/log/vram-residency/daemon.log"
run_line readme "fusermount3 -u /run/vram"
SH
mkdir -p /etc/vram-residency /var/log/vram-residency # the mount points of the session's tmpfs
: > "$WORK/lines"
timeout 840 unshare -m --propagation private bash "$WORK/session.sh" "$WORK" "$CLONE" "$blocks"
while read -r rc what; do
	if [ "$rc" = 0 ]; then ok; else bad "README: exit $rc: $what"; fi
done < "$WORK/lines"
check "every README line ran (mount.sh, the examples, installed, unmount)" \
	test "$(wc -l < "$WORK/lines")" -ge 20
check "vram-map's digest of the loaded model is fsverity digest's" grep -q \
	"^$(fsverity digest "$CLONE/model.gguf" | cut -d' ' -f1) /run/vram/llama/model.gguf" "$WORK/session.log"
check "the Python line printed the model's size" grep -qx 3000000 "$WORK/session.log"
echo "README lines run (status, where, line):"
cat "$WORK/lines"
[ "$FAIL" -eq 0 ] || tail -60 "$WORK/session.log" >&2
finish
