#!/bin/bash
# test_signal.sh - SIGTERM and umount stop the daemon cleanly: exit 0, memory scrubbed, audited.
. "$(dirname "$0")/lib.sh"

VRAM=$WORK/vram
{ printf 'SCRUB-CHECK-MARKER'; head -c 300000 /dev/urandom; } > "$WORK/f.bin"
check "mount" mount_vr "capacity=8M,mock_vram=$VRAM"
cp "$WORK/f.bin" "$MNT/f.bin"
check "bytes are in device memory" grep -qa SCRUB-CHECK-MARKER "$VRAM"/chunk-*
# hold the chunk files open: the daemon removes them, and the test reads what it left behind
chunks=("$VRAM"/chunk-*)
exec 7<"${chunks[0]}"
check "one chunk holds the file" test "${#chunks[@]}" = 1
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
check "SIGTERM: exit 0" test "$rc" = 0
check "SIGTERM: unmounted" bash -c "! mountpoint -q '$MNT'"
check "SIGTERM: audited" grep -q '"event":"daemon_stopped"' "$AUDIT"
check "chunk files removed" bash -c "! ls '$VRAM'/chunk-* 2>/dev/null"
check "device memory scrubbed" bash -c "! grep -qa SCRUB-CHECK-MARKER /proc/$$/fd/7"
check "what remains is zeros" cmp -s /proc/$$/fd/7 <(head -c "$(stat -L -c %s /proc/$$/fd/7)" /dev/zero)
exec 7<&-

check "mount again" mount_vr "capacity=8M"
cp "$WORK/f.bin" "$MNT/f.bin"
umount "$MNT"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
check "umount: exit 0" test "$rc" = 0
check "two stops audited" test "$(grep -c '"event":"daemon_stopped"' "$AUDIT")" = 2

# a second mount over a live one is refused (it would hide the first); a stale one is named
check "mount for the mountpoint checks" mount_vr "capacity=8M"
refuse "a second mount over a live one" "mounted there already" \
	"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,socket=none" "$MNT"
check "the first still serves" cmp -s "$WORK/f.bin" <(cp "$WORK/f.bin" "$MNT/g" && cat "$MNT/g")
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2> /dev/null
DAEMON_PID=
refuse "a mount over a stale one says so" "stale vram-residency mount" \
	"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,socket=none" "$MNT"
check "cleared with fusermount3 -u" fusermount3 -u "$MNT"
check "then it mounts again" mount_vr "capacity=8M"
check "and stops cleanly" unmount_vr

# daemonized (no -f): the parent exits 0 once mounted; fusermount3 -u stops it
"$BIN/vram-residency" -o "backend=mock,secret=$SECRET,audit=$AUDIT,capacity=8M" "$MNT"
check "daemon mode: mounted on return" mountpoint -q "$MNT"
cp "$WORK/f.bin" "$MNT/f.bin"
check "daemon mode: works" cmp -s "$WORK/f.bin" "$MNT/f.bin"
fusermount3 -u "$MNT"
for _ in $(seq 1 50); do
	[ "$(grep -c '"event":"daemon_stopped"' "$AUDIT")" = 4 ] && break
	sleep 0.1
done
check "daemon mode: stop audited" test "$(grep -c '"event":"daemon_stopped"' "$AUDIT")" = 4
finish
