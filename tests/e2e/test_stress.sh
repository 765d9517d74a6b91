#!/bin/bash
# test_stress.sh - rapid load/unload cycles with verifies running beside them: nothing leaks.
# After a warm-up, the daemon's resident memory and open descriptors must stay flat over a
# thousand cycles of cp, read, seal check and rm (the mock's device memory included).
. "$(dirname "$0")/lib.sh"
CYCLES=${VR_STRESS_CYCLES:-1000}

check "mount" mount_vr "capacity=64M"
head -c 200000 /dev/urandom > "$WORK/f.bin"
head -c 3000000 /dev/urandom > "$WORK/g.bin"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
fds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
cycle() {
	for i in $(seq 1 "$1"); do
		cp "$WORK/f.bin" "$MNT/f$((i % 7))" || return 1
		cmp -s "$MNT/f$((i % 7))" "$WORK/f.bin" || return 1
		if [ $((i % 50)) = 0 ]; then
			cp "$WORK/g.bin" "$MNT/g" && rm "$MNT/g" || return 1
		fi
		rm "$MNT/f$((i % 7))" || return 1
	done
}
# verifies beside the loads, the whole time
( while [ ! -e "$WORK/stop" ]; do cat "$MNT/verify" > /dev/null 2>&1; done ) &
verifier=$!
check "warm-up" cycle 100
rss0=$(rss)
fds0=$(fds)
check "$CYCLES load/read/rm cycles" cycle "$CYCLES"
touch "$WORK/stop"
wait "$verifier"
rss1=$(rss)
fds1=$(fds)
echo "daemon RSS ${rss0} -> ${rss1} KiB, descriptors ${fds0} -> ${fds1}"
check "descriptors flat" test "$fds1" -le "$fds0"
if ldd "$BIN/vram-residency" | grep -q libasan; then
	# ASan keeps freed memory in quarantine, so RSS says little there; its leak checker at
	# the daemon's exit does the job instead (the exit status is checked at unmount)
	echo "ASan build: leaks are checked by LeakSanitizer at exit, not by RSS"
else
	check "resident memory flat (within 8 MiB)" test "$rss1" -le $((rss0 + 8192))
fi
check "nothing left" test "$(json_field "$MNT/status" files)" = 0
check "all device memory back" test "$(json_field "$MNT/status" used_bytes)" = 0
check "unmount, daemon exits 0" unmount_vr
finish
