#!/bin/bash
# test_systemd.sh - the template unit passes systemd-analyze verify without a warning, and the
# daemon speaks systemd's readiness protocol: READY=1 once the mount answers, STOPPING=1 at
# the end (a listener stands in for systemd).
. "$(dirname "$0")/lib.sh"

UNIT=$(cd "$(dirname "$0")/../../systemd" && pwd)/vram-residency@.service
verify_unit() { # DIR: systemd-analyze's words on the instance (empty: clean), and its status
	(cd "$1" && systemd-analyze verify --man=no ./vram-residency@0.service 2>&1)
}
mkdir -p "$WORK/units" "$WORK/bad"
# the daemon where the unit expects it: systemd-analyze checks that ExecStart exists
sed "s|/usr/local/bin/vram-residency|$BIN/vram-residency|" "$UNIT" > "$WORK/units/vram-residency@.service"
out=$(verify_unit "$WORK/units")
rc=$?
check "systemd-analyze verify passes" test "$rc" = 0
check "with nothing to say: $out" test -z "$out"
sed 's/^Type=notify$/Type=notifyy/' "$WORK/units/vram-residency@.service" > "$WORK/bad/vram-residency@.service"
check "(a broken line would be caught)" test -n "$(verify_unit "$WORK/bad")"

# the readiness protocol, with a datagram listener in systemd's place
/usr/bin/python3 - "$WORK/notify.sock" "$WORK/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
with open(sys.argv[2], "a") as log:
    try:
        while True:
            msg = s.recv(4096).decode()
            log.write(msg.replace("\n", " ") + "\n")
            log.flush()
            if "STOPPING=1" in msg:
                break
    except socket.timeout:
        pass
PY
listener=$!
for _ in $(seq 1 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done
export NOTIFY_SOCKET=$WORK/notify.sock
check "mount with NOTIFY_SOCKET" mount_vr "capacity=64M"
unset NOTIFY_SOCKET
for _ in $(seq 1 50); do grep -q READY=1 "$WORK/notify.log" 2> /dev/null && break; sleep 0.1; done
check "READY=1 sent" grep -q "READY=1" "$WORK/notify.log"
check "with the daemon's pid" grep -q "MAINPID=$DAEMON_PID" "$WORK/notify.log"
check "and the mount answers" cat "$MNT/status" > /dev/null
check "nothing else first" test "$(head -1 "$WORK/notify.log" | cut -d' ' -f1)" = READY=1
check "unmount, daemon exits 0" unmount_vr
wait "$listener"
check "STOPPING=1 at the end" grep -q "STOPPING=1" "$WORK/notify.log"
finish
