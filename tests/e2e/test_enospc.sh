#!/bin/bash
# test_enospc.sh - failed loads (no space, device errors) are never sealed and leave nothing behind.
. "$(dirname "$0")/lib.sh"

head -c $((20 << 20)) /dev/urandom > "$WORK/big.bin"
head -c $((3 << 20)) /dev/urandom > "$WORK/small.bin"

check "mount" mount_vr "capacity=8M"
check "load a small file" cp "$WORK/small.bin" "$MNT/small.bin"
used_before=$(json_field "$MNT/status" used_bytes)
free_before=$(df -B1 --output=avail "$MNT" | tail -1 | tr -d ' ')

refuse "cp of a file that does not fit" "No space left on device" cp "$WORK/big.bin" "$MNT/big.bin"
check "no entry left" test ! -e "$MNT/big.bin"
check "no seal left" test ! -e "$MNT/big.bin.seal"
check "used_bytes as before" test "$(json_field "$MNT/status" used_bytes)" = "$used_before"
check "df free as before" test "$(df -B1 --output=avail "$MNT" | tail -1 | tr -d ' ')" = "$free_before"
check "status files as before" test "$(json_field "$MNT/status" files)" = 1
check "audit records the failure" audit_has vram_allocation_failed big.bin
check "verify still passes" bash -c "cat '$MNT/verify' | grep -q '^OK small.bin '"
refuse "dd that does not fit" "No space left on device" dd if="$WORK/big.bin" of="$MNT/dd.bin" bs=1M status=none
check "no dd entry left" test ! -e "$MNT/dd.bin"
check "the device is usable after" cp "$WORK/small.bin" "$MNT/again.bin"
check "unmount, daemon exits 0" unmount_vr

# a device error in the middle of a load: EIO to the writer, nothing left
check "mount with a write fault" mount_vr "capacity=64M,mock_fault=write:3:eio"
refuse "cp meets EIO" "Input/output error" cp "$WORK/small.bin" "$MNT/faulty.bin"
check "no entry after EIO" test ! -e "$MNT/faulty.bin"
check "used_bytes back to 0" test "$(json_field "$MNT/status" used_bytes)" = 0
check "next load works" cp "$WORK/small.bin" "$MNT/ok.bin"
check "unmount, daemon exits 0" unmount_vr

# a device error while sealing (the digest): the close reports it, nothing left
check "mount with a digest fault" mount_vr "capacity=64M,mock_fault=digest:1:eio"
refuse "cp meets EIO at close" "Input/output error" cp "$WORK/small.bin" "$MNT/unsealed.bin"
check "no unsealed entry" test ! -e "$MNT/unsealed.bin"
check "used_bytes 0 after a failed seal" test "$(json_field "$MNT/status" used_bytes)" = 0
check "unmount, daemon exits 0" unmount_vr

# a device error while verifying: the check fails and names the file, but could-not-check is
# not "differs": nothing is quarantined, and the next check passes
check "mount with a verify-time digest fault" mount_vr "capacity=64M,verify_on_open=0,mock_fault=digest:2:eio"
check "load" cp "$WORK/small.bin" "$MNT/v.bin"
cat "$MNT/verify" > "$WORK/v.out" 2> /dev/null
check "verify exits non-zero on a device error" test $? -ne 0
check "report says it could not be checked" grep -q '^FAILED v.bin could not be checked: the device digest failed' "$WORK/v.out"
check "audited as a check error" audit_has seal_check_error v.bin
check "not quarantined for it" cmp -s "$MNT/v.bin" "$WORK/small.bin"
check "the next verify passes" bash -c "cat '$MNT/verify' > /dev/null"
check "unmount, daemon exits 0" unmount_vr

# an allocation error: ENOMEM from the device
check "mount with an alloc fault" mount_vr "capacity=64M,mock_fault=alloc:2:enomem"
refuse "cp meets ENOMEM" "Cannot allocate memory" cp "$WORK/small.bin" "$MNT/nomem.bin"
check "no entry after ENOMEM" test ! -e "$MNT/nomem.bin"
check "unmount, daemon exits 0" unmount_vr

# a failed load still held open: a second open for writing gets the load's error (it once got
# ERANGE, with "fuse: bad error value: 28" in the daemon's log)
check "mount with a first-write fault" mount_vr "capacity=64M,mock_fault=write:1:enospc"
# perl (Debian's essential perl-base) opens and writes with plain syscalls: no dup, no early flush
perl -e 'open(my $f, ">", $ARGV[0]) or die "open: $!\n";
	defined(syswrite($f, "x" x 4096)) or print "first write: $!\n";
	if (open(my $g, ">>", $ARGV[0])) { print "second open: ok\n" } else { print "second open: $!\n" }' \
	"$MNT/held.bin" > "$WORK/held.out" 2>&1
check "the first write meets ENOSPC" grep -qx "first write: No space left on device" "$WORK/held.out"
check "a second open meets the load's ENOSPC" grep -qx "second open: No space left on device" "$WORK/held.out"
check "never ERANGE" bash -c "! grep -q 'Numerical result out of range' '$WORK/held.out'"
check "nothing left of the failed load" test ! -e "$MNT/held.bin"
check "unmount, daemon exits 0" unmount_vr

# a read error from the device while sealing (the SHA-256 reads the bytes back): not sealed
check "mount with a fault at the seal's read-back" mount_vr "capacity=64M,verify_on_open=0,mock_fault=read:1:eio"
refuse "cp meets EIO at close" "Input/output error" cp "$WORK/small.bin" "$MNT/r.bin"
check "nothing of it is left" test ! -e "$MNT/r.bin"
check "unmount, daemon exits 0" unmount_vr
# a read error from the device reaches the reader as EIO (sha256=off: the seal reads nothing)
check "mount with a read fault" mount_vr "capacity=64M,verify_on_open=0,sha256=off,mock_fault=read:2:eio"
check "load" cp "$WORK/small.bin" "$MNT/r.bin"
# sealed files are read through the page cache, whose readahead retries a failed page: read
# with O_DIRECT so each read(2) is one device read and the injected failure is the reader's
refuse "a direct read meets EIO" "Input/output error" dd if="$MNT/r.bin" of=/dev/null bs=1M iflag=direct status=none
check "unmount, daemon exits 0" unmount_vr
# reserve=1: the mock takes its capacity at mount; loads then fill it as before
check "mount with reserve=1" mount_vr "capacity=64M,reserve=1"
check "all of it free to files" test "$(json_field "$MNT/status" used_bytes)" = 0
head -c $((60 << 20)) /dev/urandom > "$WORK/60m.bin"
check "a 60 MiB load fits" cp "$WORK/60m.bin" "$MNT/60m.bin"
check "and reads back" cmp -s "$WORK/60m.bin" "$MNT/60m.bin"
refuse "a second does not" "No space left on device" cp "$WORK/60m.bin" "$MNT/again.bin"
check "unmount after reserve=1" unmount_vr
refuse "reserve=2 is refused" "reserve=2" "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,reserve=2" "$MNT"
finish
