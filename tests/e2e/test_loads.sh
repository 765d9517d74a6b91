#!/bin/bash
# test_loads.sh - loads the way real tools make them: a seal only for a complete file, once, at
# the last close; killed writers leave INCOMPLETE files that resume; one load at a time per file.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

head -c $((5 << 20)) /dev/urandom > "$WORK/src.bin"
fsv() { fsverity digest "$1" | cut -d' ' -f1; }
want=$(fsv "$WORK/src.bin")
check "mount" mount_vr "capacity=256M"

# killed_load FILE SIGNAL COMMAND...: COMMAND reads the source from a FIFO into FILE; once 2 MiB
# have arrived it is killed with SIGNAL while it waits for more
killed_load() {
	local f=$1 sig=$2 pid
	shift 2
	rm -f "$WORK/fifo"
	mkfifo "$WORK/fifo"
	# a background job starts with SIGINT ignored: give the writer the default, as in a terminal
	env --default-signal=INT "$@" < "$WORK/fifo" > /dev/null 2>&1 &
	pid=$!
	exec 7> "$WORK/fifo"
	head -c $((2 << 20)) "$WORK/src.bin" >&7
	for _ in $(seq 200); do
		[ "$(stat -c %s "$f" 2> /dev/null || echo 0)" -ge $((2 << 20)) ] && break
		sleep 0.05
	done
	kill -s "$sig" "$pid"
	timeout 10 tail --pid="$pid" -f /dev/null || bad "$f: the writer outlived SIG$sig"
	wait "$pid" 2> /dev/null
	exec 7>&-
}

# incomplete NAME: not sealed, listed INCOMPLETE by a failing verify, audited
incomplete() {
	local n=$1
	check "$n: no seal" test ! -e "$MNT/$n.seal"
	check "$n: verify fails" bash -c "! cat '$MNT/verify' > '$WORK/v.out' 2> /dev/null"
	check "$n: verify says INCOMPLETE" grep -q "^INCOMPLETE $n " "$WORK/v.out"
	check "$n: audited" audit_has vram_load_incomplete "$n"
	local size
	size=$(stat -c %s "$MNT/$n")
	check "$n: readable, what arrived" cmp -s -n "$size" "$MNT/$n" "$WORK/src.bin"
	check "$n: something arrived" test "$size" -ge $((2 << 20))
}

PYW='import sys
f = open(sys.argv[1], "wb", buffering=0)
for b in iter(lambda: sys.stdin.buffer.read(65536), b""):
    f.write(b)
f.close()'
n=0
for sig in KILL INT TERM; do
	n=$((n + 1))
	killed_load "$MNT/cp$n" "$sig" cp /dev/stdin "$MNT/cp$n"
	incomplete "cp$n"
done
for sig in KILL TERM; do
	n=$((n + 1))
	killed_load "$MNT/dd$n" "$sig" dd of="$MNT/dd$n" bs=64k
	incomplete "dd$n"
	killed_load "$MNT/py$n" "$sig" "$PY" -c "$PYW" "$MNT/py$n"
	incomplete "py$n"
done
check "status counts the incomplete files" test "$(json_field "$MNT/status" incomplete)" = 7
check "status counts no seal for them" test "$(json_field "$MNT/status" sealed)" = 0

# resuming: an append of the rest completes the load, which is then sealed
have=$(stat -c %s "$MNT/cp1")
check "resume cp1 by appending the rest" bash -c "tail -c +$((have + 1)) '$WORK/src.bin' >> '$MNT/cp1'"
check "resumed file sealed" test -e "$MNT/cp1.seal"
check "its seal is the source's fs-verity digest" test "$(json_field "$MNT/cp1.seal" fsverity)" = "$want"
have=$(stat -c %s "$MNT/dd4")
check "resume dd4 with dd seek (wget -c style)" dd if="$WORK/src.bin" of="$MNT/dd4" bs=64k \
	skip="$have" seek="$have" iflag=skip_bytes oflag=seek_bytes conv=notrunc status=none
check "dd4 sealed as the source" test "$(json_field "$MNT/dd4.seal" fsverity)" = "$want"

# a duplicate's close never seals early: shell groups, loops, exec 3>, a forked child
split -b $((1 << 20)) -d "$WORK/src.bin" "$WORK/p."
check "{ cat; cat; } > f" bash -c "{ cat '$WORK/p.00' '$WORK/p.01'; cat '$WORK'/p.0[2-4]; } > '$MNT/group'"
check "group sealed as the whole source" test "$(json_field "$MNT/group.seal" fsverity)" = "$want"
check "for ... done > f" bash -c "for p in '$WORK'/p.0*; do cat \"\$p\"; done > '$MNT/loop'"
check "loop sealed as the whole source" test "$(json_field "$MNT/loop.seal" fsverity)" = "$want"
check "exec 3>" bash -c "exec 3> '$MNT/exec3'; cat '$WORK/p.00' >&3; (cat '$WORK'/p.0[1-4]) >&3; exec 3>&-"
check "exec 3> sealed as the whole source" test "$(json_field "$MNT/exec3.seal" fsverity)" = "$want"
check "a writer that forks and runs subprocesses mid-load" "$PY" -c '
import os, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
with open(dst, "wb") as f:
    f.write(data[: len(data) // 2])
    f.flush()
    subprocess.run(["true"], check=True)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    f.write(data[len(data) // 2 :])
' "$WORK/src.bin" "$MNT/forked"
check "forked sealed as the whole source" test "$(json_field "$MNT/forked.seal" fsverity)" = "$want"
check "each sealed exactly once" test "$(grep -c '"event":"vram_sealed","path":"forked"' "$AUDIT")" = 1

# truncate first, then chunks written by several threads, each opening and closing (hf_transfer)
check "truncate -s reserves" truncate -s $((5 << 20)) "$MNT/chunked"
check "reserved but unwritten is incomplete" bash -c "! test -e '$MNT/chunked.seal'"
check "threads write the chunks" "$PY" -c '
import os, sys
from concurrent.futures import ThreadPoolExecutor
src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
step = len(data) // 8
def chunk(i):
    fd = os.open(dst, os.O_WRONLY)
    try:
        os.pwrite(fd, data[i * step : (i + 1) * step if i < 7 else len(data)], i * step)
    finally:
        os.close(fd)
with ThreadPoolExecutor(4) as ex:
    list(ex.map(chunk, range(8)))
' "$WORK/src.bin" "$MNT/chunked"
check "chunked sealed as the source" test "$(json_field "$MNT/chunked.seal" fsverity)" = "$want"

# one load at a time: another process opening a file being loaded gets ETXTBSY
exec 8> "$MNT/busy"
printf 'first' >&8
refuse "a second process cannot write a file being loaded" "Text file busy" bash -c "echo x >> '$MNT/busy'"
check "the refusal is audited" grep -q '"event":"policy_violation","path":"busy"' "$AUDIT"
exec 8>&-
check "the first load sealed, unmixed" test "$(cat "$MNT/busy")" = first

# two cp of different files to one new name at once: never a sealed mixture
head -c $((3 << 20)) /dev/urandom > "$WORK/other.bin"
other=$(fsv "$WORK/other.bin")
mixed=0
for i in $(seq 1 8); do
	cp "$WORK/src.bin" "$MNT/race$i" 2> /dev/null &
	p1=$!
	cp "$WORK/other.bin" "$MNT/race$i" 2> /dev/null &
	wait "$p1" $!
	if [ -e "$MNT/race$i.seal" ]; then
		s=$(json_field "$MNT/race$i.seal" fsverity)
		if ! { [ "$s" = "$want" ] && cmp -s "$MNT/race$i" "$WORK/src.bin"; } &&
			! { [ "$s" = "$other" ] && cmp -s "$MNT/race$i" "$WORK/other.bin"; }; then
			mixed=$((mixed + 1))
		fi
	fi
done
check "no race left a sealed mixture" test "$mixed" = 0
check "unmount, daemon exits 0" unmount_vr
finish
