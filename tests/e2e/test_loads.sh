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
# the last chunk's close may come while an earlier descriptor's release (sent by the kernel after
# its close returned) is still on its way: the load is then settled at that release, a moment
# after the last close (docs/filesystem.md)
for _ in $(seq 1 100); do [ -e "$MNT/chunked.seal" ] && break; sleep 0.02; done
check "chunked sealed as the source" test "$(json_field "$MNT/chunked.seal" fsverity)" = "$want"

# fallocate: mode 0 grows the size over unwritten bytes, KEEP_SIZE reserves past the end; both
# leave the file incomplete until written; other modes are refused; what does not fit changes
# nothing
head -c $((3 << 20)) "$WORK/src.bin" > "$WORK/3m.bin"
check "fallocate -l reserves" fallocate -l 3M "$MNT/fa"
check "reserved: size 3 MiB" test "$(stat -c %s "$MNT/fa")" = $((3 << 20))
check "reserved, unwritten: not sealed" test ! -e "$MNT/fa.seal"
check "verify says INCOMPLETE" bash -c "cat '$MNT/verify' 2>/dev/null | grep -q '^INCOMPLETE fa '"
check "dd conv=notrunc fills it" dd if="$WORK/3m.bin" of="$MNT/fa" bs=1M conv=notrunc status=none
check "then sealed as its bytes" test "$(json_field "$MNT/fa.seal" fsverity)" = "$(fsv "$WORK/3m.bin")"
# falloc PATH MODE LENGTH: create PATH and fallocate(2) it in one open (the fallocate tool opens
# without O_CREAT for modes other than 0); prints ok or the error
falloc() {
	"$PY" -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
r = libc.fallocate(fd, int(sys.argv[2]), 0, int(sys.argv[3]))
print("ok" if r == 0 else os.strerror(ctypes.get_errno()))
os.close(fd)
' "$@"
}
used=$(json_field "$MNT/status" used_bytes)
check "fallocate KEEP_SIZE reserves past the end" test "$(falloc "$MNT/fk" 1 $((4 << 20)))" = ok
check "size unchanged" test "$(stat -c %s "$MNT/fk")" = 0
check "the reservation holds device memory" test "$(json_field "$MNT/status" used_bytes)" = $((used + (4 << 20)))
check "reserved past the end: not sealed" test ! -e "$MNT/fk.seal"
check "writing it all seals it" dd if="$WORK/src.bin" of="$MNT/fk" bs=1M count=4 conv=notrunc status=none
head -c $((4 << 20)) "$WORK/src.bin" > "$WORK/4m.bin"
check "KEEP_SIZE file sealed as its bytes" test "$(json_field "$MNT/fk.seal" fsverity)" = "$(fsv "$WORK/4m.bin")"
check "punching a hole is refused" test "$(falloc "$MNT/fp" 3 4096)" = "Operation not supported"
check "that empty file is not sealed" test ! -e "$MNT/fp.seal"
check "a retry with cp completes it" cp "$WORK/3m.bin" "$MNT/fp"
check "and seals it" test "$(json_field "$MNT/fp.seal" fsverity)" = "$(fsv "$WORK/3m.bin")"
used=$(json_field "$MNT/status" used_bytes)
refuse "a reservation that does not fit" "No space left on device" fallocate -l 2G "$MNT/fbig"
check "changes nothing" test "$(json_field "$MNT/status" used_bytes)" = "$used"
check "leaves no seal" test ! -e "$MNT/fbig.seal"
rm -f "$MNT/fbig"

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
