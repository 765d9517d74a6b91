#!/bin/bash
# test_startup_faults.sh - the daemon's start, life and stop with each C library call it (and
# libfuse) makes failing in turn: the Nth open, pipe, fork, socket, thread... (tests/e2e/
# failshim.c, LD_PRELOAD). Each run must mount and serve, or exit 1 having said why; it must
# never be killed by a signal, hang, or leave a mount behind.
. "$(dirname "$0")/lib.sh"

SHIM=$BIN/libvr-failshim.so
[ -f "$SHIM" ] || {
	echo "no $SHIM: build the tests"
	exit 1
}
MAX_N=${VR_FAULTS_MAX:-40}
# a soft descriptor limit under the hard one, so the daemon raises it (setrlimit is called)
ulimit -Sn 512
opts="backend=mock,capacity=16M,secret=$SECRET,audit=$AUDIT,metrics_file=$WORK/m.prom"
# an ASan build must accept a library before its runtime (leaks are the other tests' concern:
# an exit on a failed start leaves what the process held to the kernel); systemd's readiness
# socket is named so its calls run (nothing listens: sendto fails as it would without systemd)
run_env=(env ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 NOTIFY_SOCKET=@vr-faults-$$
	LD_PRELOAD="$SHIM")

# mounted, read from the mount table: a stat of a mount whose daemon stopped answering hangs
mounted() { grep -q " $MNT fuse" /proc/self/mounts; }

echo model > "$WORK/src"
# served CMD...: CMD may fail, but not hang
served() {
	timeout 20 "$@" > /dev/null 2>&1
	[ $? -ne 124 ] || bad "$f:$n: $* hung"
}

# one run with the Nth call of FUNC failing; MODE fg (-f) or bg (the default: a daemon).
# Sets HIT (the failure was met) and checks what the run did.
one() {
	local mode=$1 f=$2 n=$3 log=$WORK/run.log rc pid
	: > "$log"
	if [ "$mode" = fg ]; then
		timeout -k 5 20 "${run_env[@]}" VR_FAIL="$f:$n" "$BIN/vram-residency" -f -o "$opts" "$MNT" 2> "$log" &
		pid=$!
		for _ in $(seq 1 200); do
			mounted && break
			kill -0 "$pid" 2> /dev/null || break
			sleep 0.02
		done
	else
		timeout -k 5 20 "${run_env[@]}" VR_FAIL="$f:$n" "$BIN/vram-residency" -o "$opts" "$MNT" 2> "$log"
		rc=$?
	fi
	if mounted; then
		# it serves: a load, its check, a removal (a request may meet the failure: it must
		# be answered, not hang)
		served cat "$MNT/status"
		served cp "$WORK/src" "$MNT/f"
		served cat "$MNT/verify"
		served rm -f "$MNT/f"
		fusermount3 -u "$MNT" 2>> "$log" || { umount -l "$MNT" && bad "$f:$n: unmount failed"; }
	fi
	if [ "$mode" = fg ]; then
		wait "$pid"
		rc=$?
	else
		# the daemon child: gone once unmounted (pkill finds one that would hang)
		for _ in $(seq 1 250); do
			pgrep -f "vram-residency -o $opts" > /dev/null || break
			sleep 0.02
		done
		pkill -9 -f "vram-residency -o $opts" && bad "$f:$n (bg): the daemon outlived its mount"
	fi
	HIT=0
	grep -q "^failshim: $f call" "$log" && HIT=1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		bad "$f:$n ($mode): exit $rc (124: hung; over 128: a signal): $(tail -3 "$log")"
	elif [ "$rc" -eq 1 ] && ! grep -v '^failshim:' "$log" | grep -q .; then
		bad "$f:$n ($mode): exit 1 without saying why"
	elif mounted || [ -n "$(ls -A "$MNT" 2>&1)" ]; then
		bad "$f:$n ($mode): the mount point is not left as it was"
		fusermount3 -u "$MNT" 2> /dev/null || umount -l "$MNT"
	else
		ok
	fi
	[ "$rc" -eq 1 ] && REFUSED=$((REFUSED + 1))
	RC=$rc
	rm -f "$MNT.sock" "$WORK/m.prom"
}

sweep() {
	local mode=$1 f=$2 n=1
	REFUSED=0
	while [ "$n" -le "$MAX_N" ]; do
		one "$mode" "$f" "$n"
		[ "$HIT" -eq 1 ] || break
		n=$((n + 1))
	done
	echo "$f ($mode): calls 1..$((n - 1)) failed in turn: $REFUSED refused the start, the rest served"
	[ "$n" -gt 1 ] || bad "$f ($mode): never called: the sweep tested nothing"
}

# a clean run first: the shim alone changes nothing
REFUSED=0
one fg none 1
check "a clean start and stop under the shim (exit $RC)" test "$RC" -eq 0 -a "$HIT" -eq 0
for f in open fopen socket bind listen sendto getrlimit setrlimit pthread_create pthread_sigmask \
	sigaction fsync rename; do
	sweep fg "$f"
done
for f in pipe fork setsid chdir dup2 open; do
	sweep bg "$f"
done

# what the sweeps do not vary: one thread (-s), the defaults said aloud, a socket path of its
# own, a readiness socket name systemd would never give (ignored, not followed)
VR_E2E_FLAGS=-s NOTIFY_SOCKET=relative/name check "mount -s, options given their defaults" \
	mount_vr "capacity=16M,expect=check,sha256=on,socket=$WORK/own.sock"
check "its socket where it was told" test -S "$WORK/own.sock"
check "it loads and seals" bash -c "cp '$WORK/src' '$MNT/x' && test -s '$MNT/x.seal'"
check "unmount, daemon exits 0" unmount_vr
finish
