#!/bin/bash
# test_load_tree.sh - vram-load of whole directories: several files at once, largest first, the
# same seals as cp -r, refused up front when they cannot fit, and all or nothing when a file
# fails partway (a fault, another load taking the memory), as root and as nobody.
. "$(dirname "$0")/lib.sh"

client_python
chmod 755 "$WORK"
carry_for_nobody

# exit_of CMD...: the exit status, output to $WORK/out
exit_of() {
	"$@" > "$WORK/out" 2>&1
	echo $?
}
# used: the device bytes in use, as df says
used() { df -B1 --output=used "$MNT" | tail -1 | tr -d ' '; }

# a model-like tree: shards of several sizes (none a whole number of MiB), a folder, a tiny file
mkdir -p "$WORK/model/sub"
for i in 1 2 3 4; do head -c $((i * 2500000 + i)) /dev/urandom > "$WORK/model/shard$i.bin"; done
head -c 70001 /dev/urandom > "$WORK/model/sub/tokenizer.json"
: > "$WORK/model/empty"
chmod 640 "$WORK/model/shard2.bin"
(cd "$WORK/model" && sha256sum shard*.bin sub/tokenizer.json empty > SHA256SUMS)

check "mount" mount_vr "capacity=64M,allow_other"
check "-j 3 loads the tree" "$BIN/vram-load" -j 3 "$WORK/model" "$MNT/by-load"
check "cp -r of the same tree" cp -r "$WORK/model" "$MNT/by-cp"
check "identical seals (size, SHA-256, fs-verity) to cp -r's" \
	test "$(seal_facts "$MNT/by-load")" = "$(seal_facts "$MNT/by-cp")"
check "each of its 7 files has a seal" \
	test "$(seal_facts "$MNT/by-load" | grep -cv ' - - -$')" = 7
check "every file sealed, verify passes, none unlisted in the SHA256SUMS" \
	test "$(grep -c '^OK ' "$MNT/by-load/verify")" = 7
check "the SHA256SUMS recorded in the seals" grep -q '"kind":[[:space:]]*"sha256sums"' "$MNT/by-load/shard4.bin.seal"
check "modes kept, less the umask" test "$(stat -c %a "$MNT/by-load/shard2.bin")" = 640
check "folders made with the source's mode" test "$(stat -c %a "$MNT/by-load/sub")" = 755
# largest first: one at a time, the audit's seal records come in descending size
rm -rf "$MNT/by-cp"
check "-j 1 loads it too" "$BIN/vram-load" -j 1 "$WORK/model" "$MNT/one"
order=$(grep '"event":"vram_sealed"' "$AUDIT" | grep -o '"path":"one/[^"]*"' |
	sed 's/.*one\///; s/"$//' | tr '\n' ' ')
check "the largest files are loaded first ($order)" \
	test "$order" = "shard4.bin shard3.bin shard2.bin shard1.bin sub/tokenizer.json SHA256SUMS empty "
rm -rf "$MNT/one"

# does not fit: refused before anything is made, nothing held, nothing audited
head -c 50000000 /dev/urandom > "$WORK/model/huge.bin"
before=$(used)
refuse "a tree larger than the free memory is refused up front" \
	"nothing loaded" "$BIN/vram-load" "$WORK/model" "$MNT/too-big"
check "nothing of it is left" test ! -e "$MNT/too-big"
check "no device memory was taken" test "$(used)" = "$before"
check "no seal of it was audited" bash -c "! grep -q '\"path\":\"too-big/' '$AUDIT'"
rm "$WORK/model/huge.bin"

# two loads that fit one at a time but not together: each is whole or absent, never half
rm -rf "$MNT/by-load"
mkdir -p "$WORK/t1" "$WORK/t2"
for i in 1 2 3 4; do
	head -c 9000000 /dev/urandom > "$WORK/t1/f$i"
	head -c 9000000 /dev/urandom > "$WORK/t2/f$i"
done
"$BIN/vram-load" -j 2 "$WORK/t1" "$MNT/t1" 2> "$WORK/t1.err" &
p1=$!
"$BIN/vram-load" -j 2 "$WORK/t2" "$MNT/t2" 2> "$WORK/t2.err" &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
check "at least one of two loads that cannot both fit failed ($r1 $r2)" test $((r1 + r2)) -gt 0
for t in t1 t2; do
	r=$([ "$t" = t1 ] && echo $r1 || echo $r2)
	if [ "$r" -eq 0 ]; then
		check "$t loaded whole" test "$(grep -c '^OK ' "$MNT/$t/verify")" = 4
	else
		check "$t failed and left nothing ($(cat "$WORK/$t.err"))" test ! -e "$MNT/$t"
		check "$t said why" grep -qE 'No space left|needs [0-9]+ bytes' "$WORK/$t.err"
	fi
done
rm -rf "$MNT/t1" "$MNT/t2"
check "memory given back after the competing loads" test "$(used)" = 0

# a device fault in the middle of the second file (2 MiB slots: five writes a file): the load
# stops, what it loaded goes
unmount_vr
check "mount with a write fault" mount_vr "capacity=64M,allow_other,mock_fault=write:9,staging=2Mx4x16"
refuse "a load whose write fails partway fails" "Input/output error" \
	"$BIN/vram-load" -j 1 "$WORK/t1" "$MNT/faulted"
check "the files it loaded were removed, the folder too" test ! -e "$MNT/faulted"
check "no memory stays taken" test "$(used)" = 0
check "what was sealed before the fault was sealed, then removed (audited)" \
	audit_has vram_sealed faulted/f1
check "nothing of it is left sealed" bash -c "! ls '$MNT' | grep -q faulted"
unmount_vr

# vram-load killed mid-import: the daemon cancels what it was loading for it, keeps nothing
check "mount with room for a big import" mount_vr "capacity=2560M,allow_other"
truncate -s 2G "$WORK/sparse"
"$BIN/vram-load" "$WORK/sparse" "$MNT/killed" &
lp=$!
for _ in $(seq 1 200); do [ -e "$MNT/killed" ] && break; sleep 0.01; done
kill -9 $lp
wait $lp 2> /dev/null
# the daemon sees the hang-up before its next piece, then scrubs what it had taken
for _ in $(seq 1 200); do
	[ ! -e "$MNT/killed" ] && [ "$(used)" = 0 ] && grep -q "went away" "$WORK/daemon.log" && break
	sleep 0.05
done
check "the import of a killed vram-load is cancelled, nothing left" test ! -e "$MNT/killed"
check "and its memory given back" test "$(used)" = 0
check "the daemon said why" grep -q 'the client went away at byte' "$WORK/daemon.log"

# a second signal of any of the three ends vram-load at once (SIGTERM, then SIGINT)
"$BIN/vram-load" "$WORK/sparse" "$MNT/twice" 2> "$WORK/twice.err" &
lp=$!
for _ in $(seq 1 200); do [ -e "$MNT/twice" ] && break; sleep 0.01; done
kill -TERM $lp
sleep 0.2
kill -INT $lp
for _ in $(seq 1 40); do kill -0 $lp 2> /dev/null || break; sleep 0.05; done
check "SIGTERM then SIGINT: it quits at once" bash -c "! kill -0 $lp 2> /dev/null"
wait $lp
check "by the second signal (status $?)" test $? = 130
kill -9 $lp 2> /dev/null
for _ in $(seq 1 200); do [ ! -e "$MNT/twice" ] && [ "$(used)" = 0 ] && break; sleep 0.05; done
check "and the daemon cancelled its import" test ! -e "$MNT/twice"
rm -f "$WORK/sparse"

# a source swapped for a FIFO after the walk (the largest file loads first, meanwhile): refused
# when it comes to be opened, never waited on, and the tree rolled back
mkdir -p "$WORK/swap"
head -c 200000000 /dev/zero > "$WORK/swap/big"
echo small > "$WORK/swap/small"
"$BIN/vram-load" -j 1 "$WORK/swap" "$MNT/swapped" > "$WORK/swap.out" 2>&1 &
lp=$!
for _ in $(seq 1 400); do [ -e "$MNT/swapped/big" ] && break; sleep 0.005; done
rm "$WORK/swap/small" && mkfifo "$WORK/swap/small"
for _ in $(seq 1 200); do kill -0 $lp 2> /dev/null || break; sleep 0.05; done
check "a source swapped for a FIFO does not hang the load" bash -c "! kill -0 $lp 2> /dev/null"
kill -9 $lp 2> /dev/null
wait $lp
check "it fails (status $?)" test $? = 1
check "saying why" grep -q 'small: no longer a regular file' "$WORK/swap.out"
check "and leaves nothing" test ! -e "$MNT/swapped"
rm -rf "$WORK/swap"
unmount_vr

check "mount again" mount_vr "capacity=64M,allow_other"
# a source that reads shorter than its size (as one cut while it is read): refused, not sealed
short=/sys/kernel/mm/transparent_hugepage/enabled # sysfs: 4096 bytes by stat, fewer by read
if [ -r "$short" ] && [ "$(stat -c %s "$short")" -gt "$(wc -c < "$short")" ]; then
	refuse "a source that reads short is refused" "shrank while it was read" \
		"$BIN/vram-load" "$short" "$MNT/short"
	check "nothing of it is left" test ! -e "$MNT/short"
else
	bad "no sysfs file here reads shorter than its size: the short-read check cannot run"
fi
# a folder into itself (cp's "cannot copy a directory into itself"), an empty path
mkdir -p "$MNT/self"
echo x > "$MNT/self/f"
refuse "a folder loaded into itself is refused" "into itself" \
	"$BIN/vram-load" "$MNT/self" "$MNT/self/sub"
check "and nothing is made in it" test ! -e "$MNT/self/sub"
refuse "an empty destination is refused, saying so" "an empty destination" \
	"$BIN/vram-load" "$WORK/model" ""
rm -rf "$MNT/self"
# as nobody, into a sticky folder every user may write: its files, its modes
mkdir -m 1777 "$MNT/shared"
cp -r "$WORK/model" "$WORK/nmodel"
chmod -R a+rX "$WORK/nmodel"
check "nobody loads a tree into a shared folder" as_nobody sh -c \
	"umask 027 && '$NBIN/vram-load' '$WORK/nmodel' '$MNT/shared/mine'"
check "its files are nobody's" test "$(stat -c %U "$MNT/shared/mine/shard1.bin")" = nobody
check "with nobody's umask applied" test "$(stat -c %a "$MNT/shared/mine/shard1.bin")" = 640
check "and its folders too" test "$(stat -c %a "$MNT/shared/mine/sub")" = 750
check "nobody's tree verifies" test "$(grep -c '^OK ' "$MNT/shared/mine/verify")" = 7
mkdir -m 755 "$MNT/roots"
refuse "nobody may not load into root's folder; nothing made" "Permission denied" \
	as_nobody "$NBIN/vram-load" "$WORK/nmodel" "$MNT/roots/x"
check "nothing of nobody's load there" test ! -e "$MNT/roots/x"
rm -rf "$MNT/shared/mine"

# the command line: -j is checked; progress at a terminal only
for j in 0 17 65 x -1; do
	check "-j $j is a usage error (exit 2)" test "$(exit_of "$BIN/vram-load" -j "$j" "$WORK/model" "$MNT/j")" = 2
done
"$BIN/vram-load" "$WORK/model" "$MNT/quiet" > "$WORK/quiet.out" 2>&1
check "quiet when not at a terminal" test ! -s "$WORK/quiet.out"
rm -rf "$MNT/quiet"
script -qec "'$BIN/vram-load' -j 2 '$WORK/model' '$MNT/tty'" /dev/null > "$WORK/tty.out"
check "progress at a terminal: files, bytes, GB/s" grep -qE '7/7 files, [0-9.]+/[0-9.]+ GB, [0-9.]+ GB/s' "$WORK/tty.out"
rm -rf "$MNT/tty"

# the Python module's call for a directory
check "vram_client.load loads a tree" "$PY" -c "
import sys, vram_client
seen = []
n = vram_client.load(sys.argv[1], sys.argv[2], jobs=2, progress=lambda *a: seen.append(a))
assert len(seen) == 7 and seen[-1][0] == 7 and n == seen[-1][2], (n, seen)
" "$WORK/model" "$MNT/py"
check "and it verifies" test "$(grep -c '^OK ' "$MNT/py/verify")" = 7
# Ctrl-C while a tree loads (here the progress callback's own SIGINT, after the first of two
# files: the second is small and loads before the main thread runs the handler, unless the
# load waits for it): KeyboardInterrupt, and nothing of the tree left
mkdir -p "$WORK/ctrlc"
head -c 30000000 /dev/urandom > "$WORK/ctrlc/big"
head -c 1000 /dev/urandom > "$WORK/ctrlc/small"
for round in 1 2 3; do
	check "Ctrl-C in a Python load raises KeyboardInterrupt (round $round)" "$PY" -c "
import os, signal, sys, vram_client
signal.signal(signal.SIGINT, signal.default_int_handler)
sent = []
def step(*a):
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
try:
    vram_client.load(sys.argv[1], sys.argv[2], jobs=1, progress=step)
except KeyboardInterrupt:
    sys.exit(0)
sys.exit('no KeyboardInterrupt')
" "$WORK/ctrlc" "$MNT/ctrlc"
	check "and nothing of the tree is left (round $round)" test ! -e "$MNT/ctrlc"
done
check "Python gets ENOSPC for a tree that cannot fit" "$PY" -c "
import errno, sys, vram_client
try:
    vram_client.load(sys.argv[1], sys.argv[2])
except OSError as e:
    assert e.errno == errno.ENOSPC and 'nothing loaded' in e.strerror, e
else:
    sys.exit('loaded')
" "$WORK/t1" "$MNT/py-too-big-$(head -c 30000000 /dev/zero > "$WORK/t1/f5"; echo x)"

# the smallest staging (-o staging): two 64 KiB slots, one stage for every loader at once; four
# loaders then wait for it in turn, and every file still loads whole, sealed as sha256sum says
check "unmount" unmount_vr
refuse "a bad staging is refused at mount" "staging=8Mx1x4: 2 to 16 slots a stage" \
	"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,staging=8Mx1x4" "$MNT"
"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,staging=8Mx4" "$MNT" 2> /dev/null
check "a usage error: exit status 2 ($?)" test $? = 2
check "mount with staging=64Kx2x1" mount_vr "capacity=64M,allow_other,staging=64Kx2x1"
check "status shows it" grep -q '"slot_bytes":[[:space:]]*65536' "$MNT/status"
mkdir -p "$WORK/small"
for n in 1 65535 65536 65537 131073 300001 1000003; do
	head -c "$n" /dev/urandom > "$WORK/small/s$n"
done
check "vram-load -j 4 through one stage" "$BIN/vram-load" -j 4 "$WORK/small" "$MNT/small"
mkdir -m 1777 "$MNT/shared"
check "as nobody too" as_nobody "$NBIN/vram-load" -j 4 "$WORK/small" "$MNT/shared/small-nobody"
for d in small shared/small-nobody; do
	check "$d: every seal is sha256sum's" test "$(seal_facts "$MNT/$d" | cut -d' ' -f1-3)" = \
		"$(cd "$WORK/small" && for f in $(find . -type f | sort); do
			echo "$f $(stat -c %s "$f") $(sha256sum < "$f" | cut -d' ' -f1)"
		done)"
done
finish
