#!/bin/bash
# test_audit_chain.sh - the hash-chained audit log through the daemon: vram-seal audit-verify
# passes a real log across a restart, and names an edited or dropped record and a cut tail.
. "$(dirname "$0")/lib.sh"
KEY=$WORK/audit.key
(umask 077 && head -c 32 /dev/urandom > "$KEY")
head -c 100000 /dev/urandom > "$WORK/f.bin"

check "mount with audit_key" mount_vr "capacity=64M,audit_key=$KEY"
check "load" cp "$WORK/f.bin" "$MNT/a.bin"
check "verify" bash -c "cat '$MNT/verify' > /dev/null"
check "unmount" unmount_vr
check "the chain verifies" "$BIN/vram-seal" audit-verify --key "$KEY" "$AUDIT"
check "remount continues it" mount_vr "capacity=64M,audit_key=$KEY"
check "load again" cp "$WORK/f.bin" "$MNT/b.bin"
check "unmount" unmount_vr
n=$(wc -l < "$AUDIT")
check "every record chained, across the restart" bash -c "'$BIN/vram-seal' audit-verify --key '$KEY' --expect-seq $((n - 1)) '$AUDIT' | grep -q '$n chained records'"

cp "$AUDIT" "$WORK/cut.log"
sed -i '$d' "$WORK/cut.log"
check "a cut tail passes without --expect-seq (what a chain cannot see alone)" "$BIN/vram-seal" audit-verify --key "$KEY" "$WORK/cut.log"
refuse "and is named with it" "cut off the end" "$BIN/vram-seal" audit-verify --key "$KEY" --expect-seq $((n - 1)) "$WORK/cut.log"
cp "$AUDIT" "$WORK/edit.log"
sed -i '3s/"outcome":"ok"/"outcome":"no"/' "$WORK/edit.log"
refuse "an edited record is named" "line 3: seq 2: MAC does not verify" "$BIN/vram-seal" audit-verify --key "$KEY" "$WORK/edit.log"
cp "$AUDIT" "$WORK/drop.log"
sed -i '2d' "$WORK/drop.log"
refuse "a dropped record is named" "line 2: seq 2 where 1 was next" "$BIN/vram-seal" audit-verify --key "$KEY" "$WORK/drop.log"
(umask 077 && head -c 32 /dev/urandom > "$WORK/other.key")
refuse "another key verifies nothing" "line 1" "$BIN/vram-seal" audit-verify --key "$WORK/other.key" "$AUDIT"
refuse "the daemon will not extend a chain its key cannot verify" "cannot be continued" \
	"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,audit_key=$WORK/other.key" "$MNT"
finish
