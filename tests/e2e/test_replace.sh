#!/bin/bash
# test_replace.sh - whole replacement of a sealed file (open with O_TRUNC) is a new load with a new
# seal; appends and in-place writes stay refused; immutable=1 refuses replacement too.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

head -c 3000000 /dev/urandom > "$WORK/v1.bin"
head -c 2000000 /dev/urandom > "$WORK/v2.bin"
fsv() { fsverity digest "$1" | cut -d' ' -f1; }
check "mount" mount_vr "capacity=64M"
check "load v1" cp "$WORK/v1.bin" "$MNT/model.bin"
check "sealed as v1" test "$(json_field "$MNT/model.bin.seal" fsverity)" = "$(fsv "$WORK/v1.bin")"
ino=$(stat -c %i "$MNT/model.bin")

# v1's pages in the page cache (read twice: the second open keeps the cache) must not
# survive the replacement
cat "$MNT/model.bin" > /dev/null
check "v1 read through a kept cache" cmp -s "$MNT/model.bin" "$WORK/v1.bin"

# a reader holding the old version open reads ESTALE after the replacement, as after rm
exec 9< "$MNT/model.bin"
check "cp over a sealed file replaces it" cp "$WORK/v2.bin" "$MNT/model.bin"
check "the new bytes are v2" cmp -s "$MNT/model.bin" "$WORK/v2.bin"
check "the new seal is v2's" test "$(json_field "$MNT/model.bin.seal" fsverity)" = "$(fsv "$WORK/v2.bin")"
check "same inode number" test "$(stat -c %i "$MNT/model.bin")" = "$ino"
refuse "the old descriptor reads ESTALE" "Stale file handle" dd bs=4096 count=1 status=none iflag=direct <&9
exec 9<&-
check "audited as replaced" audit_has vram_replaced model.bin
check "verify passes" bash -c "cat '$MNT/verify' | grep -q '^OK model.bin '"
check "one file, the old memory freed" test "$(json_field "$MNT/status" files)" = 1
check "used_bytes = v2's grains" test "$(json_field "$MNT/status" used_bytes)" = "$(held "$(stat -c %s "$WORK/v2.bin")")"

# appends and in-place writes stay refused and audited
refuse "append" "Operation not permitted" bash -c "echo x >> '$MNT/model.bin'"
refuse "in-place dd" "Operation not permitted" dd if=/dev/zero of="$MNT/model.bin" bs=1 count=1 conv=notrunc status=none
refuse "truncate" "Operation not permitted" truncate -s 10 "$MNT/model.bin"
check "still v2" cmp -s "$MNT/model.bin" "$WORK/v2.bin"

# files that are rewritten: a ref file, shell >, and Python's filelock (Hugging Face's locks)
mkdir -p "$MNT/refs"
check "write a ref" bash -c "echo aaaa > '$MNT/refs/main'"
check "rewrite the ref" bash -c "echo bbbb > '$MNT/refs/main'"
check "the ref reads bbbb" test "$(cat "$MNT/refs/main")" = bbbb
check "filelock acquired twice" "$PY" -c '
import sys
from filelock import FileLock
for _ in range(2):
    with FileLock(sys.argv[1]):
        pass
print("ok")
' "$MNT/refs/main.lock"
check "unmount, daemon exits 0" unmount_vr

# immutable=1: no replacement either
check "mount immutable=1" mount_vr "capacity=64M,immutable=1"
check "load" cp "$WORK/v1.bin" "$MNT/m.bin"
refuse "cp over a sealed file refused" "Operation not permitted" cp "$WORK/v2.bin" "$MNT/m.bin"
check "still v1" cmp -s "$MNT/m.bin" "$WORK/v1.bin"
check "the refusal is audited" grep -q '"event":"policy_violation","path":"m.bin"' "$AUDIT"
check "unmount, daemon exits 0" unmount_vr
finish
