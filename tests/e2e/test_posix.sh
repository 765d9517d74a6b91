#!/bin/bash
# test_posix.sh - POSIX details an independent suite (pjdfstest) found: a failed truncate changes
# nothing (EFBIG past the device, ENOSPC past what is free), a write by another user drops
# set-user-ID, and the name limit is reported truthfully.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

check "mount" mount_vr "capacity=64M"
head -c 100000 /dev/urandom > "$WORK/a.bin"
# 40 of the 64 MiB taken: a 40 MiB truncate cannot fit beside it
check "a filler" sh -c "head -c $((40 << 20)) /dev/zero > '$MNT/filler.bin'"
$PY - "$MNT/t.bin" "$WORK/a.bin" > "$WORK/trunc.out" 2>&1 <<'PYEOF'
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
data = open(sys.argv[2], "rb").read()
os.write(fd, data[:50000])
for size, want in ((1 << 50, errno.EFBIG), (40 << 20, errno.ENOSPC)):
    try:
        os.ftruncate(fd, size)
        print("truncate to", size, "succeeded")
    except OSError as e:
        print("truncate to", size, errno.errorcode[e.errno], "ok" if e.errno == want else "WRONG")
os.write(fd, data[50000:])   # the load goes on
os.close(fd)
PYEOF
check "truncate past the device: EFBIG" grep -q "truncate to 1125899906842624 EFBIG ok" "$WORK/trunc.out"
check "truncate past what is free: ENOSPC" grep -q "truncate to 41943040 ENOSPC ok" "$WORK/trunc.out"
check "the file survived both and sealed whole" cmp "$MNT/t.bin" "$WORK/a.bin"
check "its seal is the whole file's" test "$(json_field "$MNT/t.bin.seal" sha256)" = "$(sha256sum < "$WORK/a.bin" | cut -d' ' -f1)"
refuse "truncate(1) past the device" "File too large" truncate -s 1P "$MNT/u.bin"

# set-user-ID and set-group-ID are dropped by a write of another user (here the loading
# process itself, its effective uid switched: only the loading process may write), kept by root's
for who in nobody root; do
	$PY - "$MNT/suid-$who.bin" "$who" > "$WORK/suid-$who.out" 2>&1 <<'PYEOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"head")
os.fchmod(fd, 0o6775)
if sys.argv[2] == "nobody":
    os.seteuid(65534)
os.write(fd, b"tail")
os.seteuid(0)
print(oct(os.fstat(fd).st_mode & 0o7777))
os.close(fd)
PYEOF
done
check "a write by another user drops set-user-ID and set-group-ID" grep -qx 0o775 "$WORK/suid-nobody.out"
check "root's write keeps them" grep -qx 0o6775 "$WORK/suid-root.out"

# the name limit as pathconf reports it: a file's name leaves room for "<name>.seal"
check "NAME_MAX is 250" test "$(getconf NAME_MAX "$MNT")" = 250
check "a 250-byte name loads" cp "$WORK/a.bin" "$MNT/$(printf 'n%.0s' $(seq 250))"
refuse "a 251-byte name does not" "File name too long" cp "$WORK/a.bin" "$MNT/$(printf 'n%.0s' $(seq 251))"
check "unmount" unmount_vr
finish
