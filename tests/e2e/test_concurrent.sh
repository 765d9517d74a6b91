#!/bin/bash
# test_concurrent.sh - concurrent writers to different files while verify runs; all end sealed and OK.
. "$(dirname "$0")/lib.sh"

for i in 1 2 3 4 5 6; do
	head -c $(((i * 3 + 1) << 20)) /dev/urandom > "$WORK/f$i"
done
check "mount" mount_vr "capacity=256M"
mkdir "$MNT/par"
pids=
for i in 1 2 3 4 5 6; do
	cp "$WORK/f$i" "$MNT/par/f$i" &
	pids="$pids $!"
done
# verify keeps running while the loads go on: files still loading are PENDING, never FAILED
verify_bad=0
for _ in $(seq 1 30); do
	if ! cat "$MNT/verify" > "$WORK/v.out" 2>&1 || grep -q FAILED "$WORK/v.out"; then
		verify_bad=1
		cat "$WORK/v.out" >&2
	fi
done
cp_bad=0
for p in $pids; do
	wait "$p" || cp_bad=1
done
check "all cp succeeded" test "$cp_bad" = 0
check "verify never failed during loads" test "$verify_bad" = 0
check "all six OK after" test "$(cat "$MNT/par/verify" | grep -c '^OK ')" = 6
for i in 1 2 3 4 5 6; do
	check "f$i intact" cmp -s "$WORK/f$i" "$MNT/par/f$i"
done
# readers in parallel, with verify_on_open
pids=
for i in 1 2 3 4 5 6; do
	sha256sum "$MNT/par/f$i" > "$WORK/s$i" &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" # not a bare wait: the daemon is a child of this shell too
done
for i in 1 2 3 4 5 6; do
	check "parallel read f$i" test "$(cut -d' ' -f1 < "$WORK/s$i")" = "$(sha256sum < "$WORK/f$i" | cut -d' ' -f1)"
done
check "status sealed 6" test "$(json_field "$MNT/status" sealed)" = 6
check "unmount, daemon exits 0" unmount_vr
finish
