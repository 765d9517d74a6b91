#!/bin/bash
# test_stall.sh - one user cannot stall the mount (issue 22, items 7 and 8): a user other
# than root who opens many verifies at once holds two checks at most, those waiting on a
# shared one counted, the rest refused with EAGAIN at once, so the loop always has threads
# for others: root's stat and ls are answered while that user's verify still runs. Opens
# with verify_on_open are shared and limited the same way, and a pass at open is audited
# once while nothing changed, not at every open. The loop's thread count is the daemon's.
. "$(dirname "$0")/lib.sh"

NOBODY=$(id -u nobody)
FILES=3000 # of 128 KiB: a verify of them takes a while (seconds with busy loops beside)

# nobody's background cat of $1, its errors in $2; its pid (the cat's: setpriv execs) in $!
as_cat() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat "$1" > /dev/null 2> "$2" &
}

# parked PID...: each has ended, or is a cat blocked in openat (on the mount, as nothing else
# it opens blocks); polled up to 60 s
parked() {
	local p left
	for _ in $(seq 1 600); do
		left=0
		for p in "$@"; do
			[ -d "/proc/$p" ] || continue
			if [ "$(cat "/proc/$p/comm" 2> /dev/null)" = cat ] &&
				grep -q '^257 ' "/proc/$p/syscall" 2> /dev/null &&
				grep -q '^[^)]*) [SD] ' "/proc/$p/stat" 2> /dev/null; then
				continue
			fi
			left=1
		done
		[ "$left" -eq 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# passes PATH-PREFIX: the seal_verified records of nobody's checks of paths starting so
passes() {
	grep '"event":"seal_verified"' "$AUDIT" | grep "\"uid\":$NOBODY," |
		grep -c "\"path\":\"$1"
}

# records_reach N: polls (60 s at most) until nobody's passes under big/ reach N
records_reach() {
	for _ in $(seq 1 600); do
		[ "$(passes big/)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# a thread count that leaves none for others is refused before anything is mounted
refuse "max_threads=4 refused" "max_threads=4: give 12 to 1024" \
	timeout 20 "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,max_threads=4" "$MNT"
check "and nothing was mounted" bash -c "! mountpoint -q '$MNT'"
check "max_threads=24 taken" mount_vr "max_threads=24"
ls "$MNT" > /dev/null # answered by the loop, so its start is logged
check "and said" grep -q "serving with 24 threads at most" "$WORK/daemon.log"
check "unmounted" unmount_vr

chmod 755 "$WORK" # nobody reaches the mount through it
check "mount (allow_other: others may use it)" mount_vr "capacity=1G,allow_other"
ls "$MNT" > /dev/null
check "the log says how many threads serve" grep -q "serving with 16 threads at most, 8 of them for checks of users other than root" "$WORK/daemon.log"
check "libfuse took the loop's settings" bash -c "! grep -q 'Ignoring invalid' '$WORK/daemon.log'"
mkdir "$MNT/big"
check "$FILES files loaded" /usr/bin/python3 - "$MNT/big" "$FILES" << 'EOF'
import os, sys
blk = os.urandom(128 << 10)
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "f%05d.bin" % i), "wb") as f:
        f.write(i.to_bytes(8, "little") + blk[8:])
EOF
head -c $((256 << 20)) /dev/urandom > "$WORK/one.bin"
check "a file of 256 MiB loaded" cp "$WORK/one.bin" "$MNT/one.bin"

busy_start 2

# 14 verifies at once by nobody: before, they parked every thread of the loop (10) on one
# run, and root's stat waited for the whole run
base=$(passes big/)
pids=()
for i in $(seq 1 14); do
	as_cat "$MNT/big/verify" "$WORK/v$i.err"
	pids+=($!)
done
check "nobody's verifies have all opened (running, waiting or refused)" parked "${pids[@]}"
check "nobody's verify runs (its first records)" records_reach $((base + 1))
t0=$(date +%s%N)
check "root's lookup answered" bash -c "timeout 120 stat '$MNT/absent' 2>&1 | grep -q 'No such file'"
check "root's ls answered" timeout 120 ls "$MNT" > /dev/null
t1=$(date +%s%N)
at=$(passes big/)
for p in "${pids[@]}"; do wait "$p"; done
end=$(passes big/)
echo "root's stat and ls: $(((t1 - t0) / 1000000)) ms; nobody's verify had checked $((at - base)) of $FILES files by then"
# before, root's requests waited behind the parked threads until that run had checked every
# file (and the verifies queued behind it started another)
check "root was answered while nobody's first run still ran ($((at - base)) of $FILES checked)" test "$at" -lt $((base + FILES))
refused=$(grep -l "Resource temporarily unavailable" "$WORK"/v*.err | wc -l)
check "the verifies past the limit refused with EAGAIN ($refused of 14)" test "$refused" -ge 1
check "the others completed (one run: $((end - base)) records for $FILES files)" test $((end - base)) -eq "$FILES"
check "refusals said in the log" grep -q "verify refused to uid $NOBODY: 2 checks of theirs already run" "$WORK/daemon.log"

# 14 opens of one file at once by nobody (verify_on_open): they share one digest, hold two
# checks at most (the rest EAGAIN), and the pass is audited once while nothing changed
before=$(passes one.bin)
again=0
for _ in $(seq 1 10); do
	pids=()
	for i in $(seq 1 14); do
		as_cat "$MNT/one.bin" "$WORK/o$i.err"
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	if grep -q "Resource temporarily unavailable" "$WORK"/o*.err; then
		again=1
		break
	fi
done
after=$(passes one.bin)
check "opens past the limit refused with EAGAIN" test "$again" -eq 1
check "said in the log" grep -q "the check at open of one.bin refused to uid $NOBODY: 2 checks of theirs already run" "$WORK/daemon.log"
check "a pass at open audited once while nothing changed ($((after - before)) records)" test $((after - before)) -eq 1
busy_stop

check "root reads it whole" cmp "$WORK/one.bin" "$MNT/one.bin"
check "unmount, daemon exits 0" unmount_vr
finish
