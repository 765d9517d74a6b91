#!/bin/bash
# test_small_files.sh - 10,000 files of 1 KiB fit in 1 GiB of mock memory (each holds 64 KiB),
# each sealed and checked, and all of it comes back at rm -r.
. "$(dirname "$0")/lib.sh"
N=${VR_SMALL_FILES:-10000}

check "mount 1 GiB" mount_vr "capacity=1G"
head -c 1024 /dev/urandom > "$WORK/one.bin"
check "$N files of 1 KiB load" /usr/bin/python3 -c '
import os, sys
d, n, blob = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
os.mkdir(d)
for i in range(n):
    with open(f"{d}/f{i}", "wb") as f:
        f.write(blob)
' "$MNT/small" "$N" "$WORK/one.bin"
check "all sealed" test "$(json_field "$MNT/status" sealed)" = "$N"
used=$(json_field "$MNT/status" used_bytes)
echo "$N files of 1 KiB hold $used bytes of device memory"
check "at most 64 KiB each" test "$used" -le $((N * 65536))
check "du agrees with the device" test "$(du -sk "$MNT/small" | cut -f1)" -le $((N * 64 + 64))
check "every one verifies" test "$(grep -c '^OK small/' "$MNT/small/verify")" = "$N"
check "one reads back" cmp -s "$WORK/one.bin" "$MNT/small/f$((N - 1))"
check "rm -r" rm -r "$MNT/small"
check "all device memory back" test "$(json_field "$MNT/status" used_bytes)" = 0
check "unmount, daemon exits 0" unmount_vr
finish
