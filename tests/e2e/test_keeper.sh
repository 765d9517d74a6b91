#!/bin/bash
# test_keeper.sh - vram-keeper as a store of systemd's protocol, driven by a stand-in daemon
# (Python: sd_notify's datagrams with SCM_RIGHTS, written here from the protocol's text, not
# from the keeper's code): descriptors kept by name and handed back in order with
# LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID, FDSTOREREMOVE, names systemd refuses, senders other
# than the daemon ignored, a store whose names would not fit the environment let go, restarts
# bounded, the keeper's own stop.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
cat > "$WORK/fake.py" << 'EOF'
import array, os, socket, sys
out, plan = sys.argv[1], sys.argv[2]
mine = os.environ.get("LISTEN_PID") == str(os.getpid())
n = int(os.environ.get("LISTEN_FDS", "0")) if mine else 0
names = os.environ.get("LISTEN_FDNAMES", "").split(":") if n else []
got = []
for i in range(n):
    fd = 3 + i
    os.lseek(fd, 0, 0)
    got.append("%s=%s" % (names[i], os.read(fd, 64).decode()))
step = len(open(out).read().splitlines()) if os.path.exists(out) else 0
with open(out, "a") as f:
    f.write("start %d %s\n" % (n, " ".join(got)))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
def store(name, text):
    fd = os.memfd_create("x")
    os.write(fd, text.encode())
    s.sendmsg([b"FDSTORE=1\nFDNAME=" + name.encode() + b"\nFDPOLL=0"],
               [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    os.close(fd)
def remove(name):
    s.send(b"FDSTOREREMOVE=1\nFDNAME=" + name.encode())
actions = plan.split(";")[step] if step < len(plan.split(";")) else "exit0"
for a in actions.split(","):
    if a.startswith("store:"):
        store(a[6:], "v-" + a[6:])
    elif a.startswith("many:"):
        for i in range(int(a[5:])):
            store("n%039d" % i, "m")
    elif a.startswith("rm:"):
        remove(a[3:])
    elif a == "exit1":
        sys.exit(1)
    elif a == "exit0":
        sys.exit(0)
    elif a == "kill":
        os.kill(os.getpid(), 9)
    elif a == "wait":
        import time
        time.sleep(30)
EOF
# run_keeper PLAN [KEEPER OPTIONS]: the stand-in under vram-keeper, one step of PLAN (;) per start
run_keeper() {
	rm -f "$WORK/out"
	timeout 60 "$BIN/vram-keeper" "${@:2}" -- "$PY" "$WORK/fake.py" "$WORK/out" "$1" -f \
		2> "$WORK/keeper.log"
}

check "kept by name, handed back in order" run_keeper "store:a,store:b,store:c,exit1;rm:b,kill;rm:a,rm:c,exit0"
check "the second start got a, b and c with their bytes" \
	grep -qx "start 3 a=v-a b=v-b c=v-c" "$WORK/out"
check "FDSTOREREMOVE let b go: the third start got a and c" grep -qx "start 2 a=v-a c=v-c" "$WORK/out"
check "an exit 0 with nothing held ends the keeper, status 0" [ "$(wc -l < "$WORK/out")" -eq 3 ]

check "names systemd refuses are ignored" run_keeper "store:bad:name,store:ok,exit1;rm:ok,exit0"
check "only the valid name came back" grep -qx "start 1 ok=v-ok" "$WORK/out"
check "the refusal is said" grep -q "invalid name" "$WORK/keeper.log"

run_keeper "exit1;exit1;exit1;exit1" --max-restarts 2
check "restarts are bounded: gives up with status 1" [ $? -eq 1 ]
check "three starts, then it gave up" [ "$(wc -l < "$WORK/out")" -eq 3 ]
check "it says so" grep -q "restarts within a minute: giving up" "$WORK/keeper.log"

# 4000 names of 40 bytes: more than one environment string may hold (128 KiB)
check "a store whose names would not fit is let go; the daemon starts empty" \
	run_keeper "many:4000,exit1;exit0"
check "the second start got nothing, and started" grep -qx "start 0 " "$WORK/out"
check "the keeper says why" grep -q "names too long to hand over" "$WORK/keeper.log"

# another process (root's, not the daemon) sending to the keeper's socket is ignored
"$BIN/vram-keeper" -- "$PY" "$WORK/fake.py" "$WORK/out2" "store:x,wait;wait" -f \
	2> "$WORK/keeper2.log" &
K=$!
for _ in $(seq 1 100); do
	sock=$(tr '\0' '\n' < "/proc/$(pgrep -P $K -f fake.py)/environ" 2> /dev/null |
		sed -n 's/^NOTIFY_SOCKET=//p')
	[ -n "$sock" ] && break
	sleep 0.05
done
NOTIFY_SOCKET=$sock "$PY" -c '
import array, os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ["NOTIFY_SOCKET"])
fd = os.memfd_create("evil"); os.write(fd, b"evil")
s.sendmsg([b"FDSTORE=1\nFDNAME=x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
s.send(b"FDSTOREREMOVE=1\nFDNAME=x")'
sleep 0.3
check "a sender other than the daemon is ignored" grep -q "ignored a message from pid" "$WORK/keeper2.log"
kill -KILL "$(pgrep -P $K -f fake.py)"
for _ in $(seq 1 100); do
	[ "$(wc -l < "$WORK/out2" 2> /dev/null)" = 2 ] && break
	sleep 0.05
done
check "the daemon's own descriptor came back, not the forged one" grep -qx "start 1 x=v-x" "$WORK/out2"
check "the keeper still runs the daemon" [ -n "$(pgrep -P $K -f fake.py)" ]
kill -TERM "$K"
wait "$K"
check "SIGTERM to the keeper passes it on and ends both (the daemon's status: 128+15)" [ $? -eq 143 ]
check "no daemon is left" [ -z "$(pgrep -f "fake.py $WORK/out2")" ]
check "a socket path was made and is gone" [ -n "$sock" ] && [ ! -e "$sock" ]

refuse "a daemon that would detach is refused" "give it -f" "$BIN/vram-keeper" -- /bin/true

# the daemon's side of NOTIFY_SOCKET: a path that is no socket's, one nobody listens on, and an
# abstract socket (systemd's own form, "@name") whose keeper hears FDSTORE= messages
DOPTS="backend=mock,secret=$SECRET,audit=$AUDIT,keep=on"
NOTIFY_SOCKET=relative/notify timeout 20 "$BIN/vram-residency" -f -o "$DOPTS" "$MNT" 2> "$WORK/d1.log"
check "keep=on with a NOTIFY_SOCKET that is no path: nothing mounted, said why" \
	sh -c "[ $? = 1 ] && grep -q 'NOTIFY_SOCKET=relative/notify is not a socket' '$WORK/d1.log'"
NOTIFY_SOCKET=$WORK/nobody-listens timeout 20 "$BIN/vram-residency" -f -o "$DOPTS" "$MNT" 2> "$WORK/d2.log"
check "keep=on with nobody at NOTIFY_SOCKET: said why" grep -q "cannot reach the keeper at NOTIFY_SOCKET" "$WORK/d2.log"
name="vr-test-keeper-$$"
"$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("\0" + sys.argv[1]); s.settimeout(0.2)
out = open(sys.argv[2], "ab"); end = time.time() + 20
while time.time() < end:
    try:
        data, anc, flags, addr = s.recvmsg(4096, 4096)
    except socket.timeout:
        continue
    out.write(data + b"\n"); out.flush()' "$name" "$WORK/abstract.out" &
listener=$!
sleep 0.3
NOTIFY_SOCKET=@$name FDSTORE=100 "$BIN/vram-residency" -f -o "$DOPTS" "$MNT" 2> "$WORK/d3.log" &
DAEMON_PID=$!
for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
echo kept > "$MNT/k"
sleep 0.3
check "an abstract NOTIFY_SOCKET is the keeper" grep -q "kept across restarts by the keeper at @$name" "$WORK/d3.log"
check "which hears the file's memory stored" grep -q "^FDSTORE=1" "$WORK/abstract.out"
check "unmount, daemon exits 0" unmount_vr
kill "$listener" 2> /dev/null
wait "$listener" 2> /dev/null
finish
