#!/bin/bash
# test_audit_flood.sh - refused socket requests cannot flood the audit log: a caller's text is
# capped, each user's refusals past a limit are counted in one audit_suppressed record, other
# users' records still land, and the chain verifies across what was dropped.
. "$(dirname "$0")/lib.sh"
KEY=$WORK/audit.key
(umask 077 && head -c 32 /dev/urandom > "$KEY")
chmod 755 "$WORK" # so an unprivileged user reaches the mount (the secrets stay 0600)
SOCK=$MNT.sock
as_user() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }

# flood.py SOCK N PATH: N maps of PATH as fast as the daemon answers; prints how many were
# refused with ENOENT and the seconds it took
cat > "$WORK/flood.py" <<'PY'
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
n, p = int(sys.argv[2]), sys.argv[3].encode()
refused, t = 0, time.monotonic()
for _ in range(n):
    s.send(struct.pack("=IHHIIII", 0x31535256, 1, 1, 0, 0, 0, len(p)) + p)
    refused += struct.unpack_from("=IHHi", s.recv(65536))[3] == -2
print(refused, time.monotonic() - t)
PY
check "mount with allow_other and a chain" mount_vr "capacity=64M,allow_other,audit_key=$KEY"
before=$(stat -c %s "$AUDIT")
# a path of 3,815 bytes that names nothing: each refusal would be a 4 KiB record
name=$(printf 'x%.0s' $(seq 1 240))
long=$(printf 'd%.0s' $(seq 1 200))$(printf "/$name%.0s" $(seq 1 15))
N=3000
read -r refused secs < <(as_user 65534 /usr/bin/python3 "$WORK/flood.py" "$SOCK" "$N" "$long")
check "every one of nobody's maps was refused (ENOENT)" test "$refused" = "$N"
read -r root _ < <(/usr/bin/python3 "$WORK/flood.py" "$SOCK" 1 "root-none")
check "root's refusal is answered" test "$root" = 1
read -r other _ < <(as_user 12345 /usr/bin/python3 "$WORK/flood.py" "$SOCK" 3 "other-none")
check "another user's refusals are answered" test "$other" = 3
check "unmount" unmount_vr
grown=$(($(stat -c %s "$AUDIT") - before))
# within the limit: 64 at once, then 10 a second (+2 for the second's rounding), each record at
# most the 512 bytes kept of the path and the rest of the record (about 300 bytes)
allowed=$((64 + 10 * (${secs%.*} + 2)))
written=$(grep -c '"event":"vram_export_refused".*"uid":65534,' "$AUDIT")
check "nobody's refusals written are within the limit ($written of $N, $allowed allowed)" \
	test "$written" -ge 64 -a "$written" -le "$allowed"
check "the log grew by a bounded amount ($grown bytes)" test "$grown" -le $(((allowed + 20) * 1000))
check "a caller's path is cut, with a marker" \
	grep -q "\"path\":\"${long:0:512}\.\.\.\[$((${#long} - 512)) more bytes\]\"" "$AUDIT"
check "root's refusal is there" grep -q '"event":"vram_export_refused","path":"root-none","uid":0,' "$AUDIT"
check "the other user's three are there" \
	test "$(grep -c '"event":"vram_export_refused","path":"other-none","uid":12345,' "$AUDIT")" = 3
check "what was dropped is counted in audit_suppressed records, to the last one" /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
written = sum(1 for r in recs if r["event"] == "vram_export_refused" and r["uid"] == 65534)
dropped = sum(r["dropped"] for r in recs if r["event"] == "audit_suppressed" and r["uid"] == 65534)
assert dropped > 0 and written + dropped == int(sys.argv[2]), (written, dropped)' "$AUDIT" "$N"
check "the log says a user is over the limit" grep -q "uid 65534's refused requests are over the limit" "$WORK/daemon.log"
check "the chain verifies across the records not written" "$BIN/vram-seal" audit-verify --key "$KEY" "$AUDIT"
finish
