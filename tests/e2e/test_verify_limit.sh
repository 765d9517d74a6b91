#!/bin/bash
# test_verify_limit.sh - another user cannot make the daemon re-hash the device without end:
# reads of one verify share its check (one audit record per file, not per reader), a user
# other than root runs at most 2 checks at once (the next is EAGAIN at once), root is not
# limited, and root's loads go on while that user's verify loops run.
. "$(dirname "$0")/lib.sh"

as() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 755 "$WORK" # nobody reaches the mount through it
check "mount (allow_other: others may use it)" mount_vr "capacity=1G,allow_other"
for d in a b c; do
	mkdir "$MNT/$d"
	head -c $((96 << 20)) /dev/urandom > "$WORK/$d.bin"
	cp "$WORK/$d.bin" "$MNT/$d/w.bin"
done
check "nobody can read a verify" bash -c "as() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- \"\$@\"; }; as cat '$MNT/a/verify' | grep -q '^OK a/w.bin'"

# a third check at once, of another directory, is refused with EAGAIN (tried until two were
# seen running: each takes a while over 96 MiB)
again=0
for _ in $(seq 1 30); do
	as cat "$MNT/a/verify" > /dev/null 2>&1 &
	p1=$!
	as cat "$MNT/b/verify" > /dev/null 2>&1 &
	p2=$!
	sleep 0.02
	if ! as cat "$MNT/c/verify" > "$WORK/third.out" 2>&1; then
		grep -q "Resource temporarily unavailable" "$WORK/third.out" && again=1
	fi
	# root at the same moment: never limited
	cat "$MNT/c/verify" > "$WORK/root.out" 2>&1 || echo "root refused" >> "$WORK/root.bad"
	wait "$p1" "$p2"
	[ "$again" -eq 1 ] && break
done
check "a third check at once by nobody: EAGAIN" test "$again" -eq 1
check "said in the daemon's log" grep -q "verify refused to uid $(id -u nobody): 2 checks of theirs already run" "$WORK/daemon.log"
check "root is never refused" test ! -e "$WORK/root.bad"

# four readers of one verify at once: one check, so one audit record for its file
before=$(grep -c '"event":"seal_verified".*"path":"a/w.bin"' "$AUDIT")
readers=()
for _ in 1 2 3 4; do
	as cat "$MNT/a/verify" > /dev/null 2>&1 &
	readers+=($!)
done
wait "${readers[@]}"
after=$(grep -c '"event":"seal_verified".*"path":"a/w.bin"' "$AUDIT")
check "4 readers at once: fewer checks than readers ($((after - before)))" test $((after - before)) -lt 4 -a $((after - before)) -ge 1

# nobody's verify loops while root loads: the load completes and seals
stop=$WORK/stop
loops=()
for d in a b a b; do
	(while [ ! -e "$stop" ]; do as cat "$MNT/$d/verify" > /dev/null 2>&1; done) &
	loops+=($!)
done
check "root's load during the loops" timeout 300 cp "$WORK/c.bin" "$MNT/c/new.bin"
touch "$stop"
wait "${loops[@]}"
check "sealed" test -s "$MNT/c/new.bin.seal"
check "and verifies" bash -c "cat '$MNT/c/verify' | grep -q '^OK c/new.bin'"
check "unmount, daemon exits 0" unmount_vr
finish
