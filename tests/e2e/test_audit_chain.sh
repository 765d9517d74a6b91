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

# the chain's state (the next seq, the last MAC, the next key), replaced after every record:
# a restart needs only it, and the first key can stay offline, for verification
check "the state file is the daemon's alone" test "$(stat -c %a "$AUDIT.chain")" = 600
check "restart without audit_key goes on from the state" mount_vr "capacity=64M"
check "load without the key" cp "$WORK/f.bin" "$MNT/c.bin"
check "unmount" unmount_vr
check "restart with the key again" mount_vr "capacity=64M,audit_key=$KEY"
check "unmount" unmount_vr
n=$(wc -l < "$AUDIT")
check "the offline first key verifies the whole log, across restarts with and without it" \
	bash -c "'$BIN/vram-seal' audit-verify --key '$KEY' --expect-seq $((n - 1)) '$AUDIT' | grep -q '$n chained records'"
check "the records written without the key are in it" grep -q '"event":"vram_sealed","path":"c.bin"' "$AUDIT"
# its first records cut off: a failure, unless asked for
cp "$AUDIT" "$WORK/head.log"
sed -i '1,2d' "$WORK/head.log"
refuse "a log whose first records were cut off fails" "begins at record 2, not 0" \
	"$BIN/vram-seal" audit-verify --key "$KEY" "$WORK/head.log"
check "--from-middle checks it from there" "$BIN/vram-seal" audit-verify --key "$KEY" --from-middle "$WORK/head.log"
# a state and a log that disagree: refused, never chained onto
start_bare() { timeout 10 "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT$1" "$MNT"; }
cp "$AUDIT.chain" "$WORK/old.chain"
check "mount" mount_vr "capacity=64M"
check "unmount" unmount_vr
cp "$AUDIT.chain" "$WORK/new.chain"
cp "$WORK/old.chain" "$AUDIT.chain"
refuse "an older state under a longer log is refused" "disagree: the log's last record is seq" start_bare ""
refuse "also with the key" "disagree" start_bare ",audit_key=$KEY"
cp "$WORK/new.chain" "$AUDIT.chain"
cp "$AUDIT" "$WORK/whole.log"
sed -i '$d' "$AUDIT"
refuse "a log cut at its end is refused" "records were cut off its end" start_bare ""
cp "$WORK/whole.log" "$AUDIT"
rm "$AUDIT.chain"
refuse "a chained log without its state is refused" "is chained, but its state .* is missing" start_bare ""
check "audit_key= checks the log and writes the state again" mount_vr "capacity=64M,audit_key=$KEY"
check "unmount" unmount_vr
check "and the chain goes on without it" mount_vr "capacity=64M"
check "unmount" unmount_vr
n=$(wc -l < "$AUDIT")
check "every record verifies" bash -c "'$BIN/vram-seal' audit-verify --key '$KEY' --expect-seq $((n - 1)) '$AUDIT' | grep -q '$n chained records'"

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
# logrotate's way: move the log aside, SIGHUP, and the daemon writes a new file with nothing
# resident touched and no record lost or split; the chain runs on across both files
check "mount for a rotation" mount_vr "capacity=64M,audit_key=$KEY"
( for i in $(seq 1 60); do cp "$WORK/f.bin" "$MNT/r$((i % 5))" && rm "$MNT/r$((i % 5))"; done ) &
loads=$!
sleep 0.3
mv "$AUDIT" "$AUDIT.1"
check "SIGHUP" kill -HUP "$DAEMON_PID"
sleep 0.3
check "still mounted after SIGHUP" mountpoint -q "$MNT"
wait "$loads"
check "loads went on" test "$(json_field "$MNT/status" files)" = 0
check "a new log was started" test -s "$AUDIT"
check "the reopening is recorded" grep -q '"event":"audit_reopened"' "$AUDIT"
check "unmount" unmount_vr
check "the chain runs on across both files" "$BIN/vram-seal" audit-verify --key "$KEY" "$AUDIT.1" "$AUDIT"
check "every line of both is one JSON record" /usr/bin/python3 -c '
import json, sys
for p in sys.argv[1:]:
    for line in open(p):
        json.loads(line)' "$AUDIT.1" "$AUDIT"
refuse "the new file alone fails: it begins mid-chain" "not 0" "$BIN/vram-seal" audit-verify --key "$KEY" "$AUDIT"
check "with --from-middle it says so, and passes" bash -c "'$BIN/vram-seal' audit-verify --key '$KEY' --from-middle '$AUDIT' | grep -q 'begins mid-chain'"

# a reordered pair of records is named
cp "$AUDIT.1" "$WORK/swap.log"
sed -i '2{h;d};3{G}' "$WORK/swap.log"
refuse "reordered records are named" "line 2: seq 2 where 1 was next" "$BIN/vram-seal" audit-verify --key "$KEY" "$WORK/swap.log"

# the audit log's file system full (a 4 KiB file-size limit plays it): the daemon lives (it
# was killed by SIGXFSZ), every load that cannot be recorded fails and leaves nothing, and
# every line of the log is whole JSON
FULL=$WORK/full-audit.log
(ulimit -f 4; exec "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$FULL,capacity=64M" "$MNT" 2>> "$WORK/daemon.log") &
DAEMON_PID=$!
for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
for i in $(seq 1 40); do head -c 1000 /dev/urandom > "$MNT/full$i" 2> /dev/null; done
check "the daemon lives on when its log cannot grow" kill -0 "$DAEMON_PID"
check "the loads it could not record left nothing" test "$(ls "$MNT" | wc -l)" -lt 40
check "the log stayed under its limit" test "$(stat -c %s "$FULL")" -le 4096
check "every line of the full log is one JSON record" /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)' "$FULL"
check "unmount, daemon exits 0" unmount_vr

# a rotation whose new file cannot be made (a directory took its name): said, and the old file
# goes on taking every record, so nothing is lost
ROT=$WORK/rot.log
check "mount for a failed rotation" mount_vr "capacity=64M,audit=$ROT"
mv "$ROT" "$ROT.old"
mkdir "$ROT"
check "SIGHUP" kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do grep -q "could not be reopened" "$WORK/daemon.log" && break; sleep 0.05; done
check "the failed reopening is said" grep -q "audit log $ROT could not be reopened (Is a directory): still writing the old one" "$WORK/daemon.log"
check "a load after it" cp "$WORK/f.bin" "$MNT/after-hup"
check "is recorded in the old file" grep -q '"event":"vram_sealed".*"path":"after-hup"' "$ROT.old"
check "unmount, daemon exits 0" unmount_vr
finish
