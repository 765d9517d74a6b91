#!/bin/bash
# test_tamper.sh - a byte changed in device memory behind the daemon is caught, named and quarantined.
. "$(dirname "$0")/lib.sh"

VRAM=$WORK/vram
# distinctive content, so the test can find the bytes in the mock's device memory as an attacker would
{ printf 'TAMPER-TARGET-MARKER'; head -c 2000000 /dev/urandom; } > "$WORK/victim.bin"
head -c 1500000 /dev/urandom > "$WORK/other.bin"

check "mount" mount_vr "capacity=32M,mock_vram=$VRAM"
mkdir -p "$MNT/llama"
check "load victim" cp "$WORK/victim.bin" "$MNT/llama/victim.bin"
check "load other" cp "$WORK/other.bin" "$MNT/other.bin"
check "verify passes before" cat "$MNT/verify" > /dev/null

# the mock's device memory is a directory of chunk files: grep says FILE:OFFSET:MATCH
hit=$(grep -obUa 'TAMPER-TARGET-MARKER' "$VRAM"/chunk-* | head -1)
check "victim's bytes found in device memory" test -n "$hit"
# a byte near the marker: inside the file's first chunk whatever size its first write had (a
# chunk is at least 64 KiB; 123456 bytes on landed past a first chunk made by a small write)
printf 'X' | dd of="${hit%%:*}" bs=1 seek=$(($(echo "$hit" | cut -d: -f2) + 12345)) conv=notrunc status=none

cat "$MNT/verify" > "$WORK/report" 2> "$WORK/report.err"
rc=$?
check "verify exits non-zero" test "$rc" -ne 0
check "verify read fails with EIO" grep -q "Input/output error" "$WORK/report.err"
check "report names the victim" grep -q '^FAILED llama/victim.bin ' "$WORK/report"
check "report: other still OK" grep -q '^OK other.bin sha256:' "$WORK/report"
check "audit names the victim" audit_has seal_verification_failed llama/victim.bin
refuse "victim quarantined" "Input/output error" cat "$MNT/llama/victim.bin"
check "other still readable" cmp -s "$WORK/other.bin" "$MNT/other.bin"
check "status counts quarantine" test "$(json_field "$MNT/status" quarantined)" = 1
check "dir verify fails too" bash -c "! cat '$MNT/llama/verify' > /dev/null 2>&1"
check "other dir verify fine" bash -c "mkdir '$MNT/clean' && cp '$WORK/other.bin' '$MNT/clean/o' && cat '$MNT/clean/verify' | grep -q '^OK clean/o '"

# verify_on_open: a tampered file is refused at its next open, before any byte is read
{ printf 'SECOND-TARGET-MARKER'; head -c 700000 /dev/urandom; } > "$WORK/third.bin"
check "load third" cp "$WORK/third.bin" "$MNT/third.bin"
check "third reads fine" cmp -s "$WORK/third.bin" "$MNT/third.bin"
check "and again, from the kept page cache" cmp -s "$WORK/third.bin" "$MNT/third.bin"
hit=$(grep -obUa 'SECOND-TARGET-MARKER' "$VRAM"/chunk-* | head -1)
check "third's bytes found" test -n "$hit"
printf 'Y' | dd of="${hit%%:*}" bs=1 seek=$(($(echo "$hit" | cut -d: -f2) + 5)) conv=notrunc status=none
refuse "open of tampered file fails" "Input/output error" cat "$MNT/third.bin"
check "audit names third" audit_has seal_verification_failed third.bin
check "status counts both" test "$(json_field "$MNT/status" quarantined)" = 2
check "unmount, daemon exits 0" unmount_vr
finish
