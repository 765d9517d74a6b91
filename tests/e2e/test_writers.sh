#!/bin/bash
# test_writers.sh - real writers whose first write is small and later ones large (torch.save,
# a safetensors file written in place, two dd's in one group, a downloader's short first read),
# and interrupted loads (cp, dd and Python killed by SIGINT, SIGTERM and SIGKILL from slow
# pipes), one resumed by an append, then all removed: the daemon must live through every round,
# a resumed load is sealed once, at its end, and no seal ever describes a partial load
# (issue 20). Runs beside busy loops; VR_ROUNDS=N (default 3) repeats the interrupted sequence.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
ROUNDS=${VR_ROUNDS:-3}
busy_start 2
check "mount" mount_vr "capacity=1G"
alive() { kill -0 "$DAEMON_PID" 2> /dev/null; }
same() { [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$(sha256sum < "$2" | cut -d' ' -f1)" ]; }
# the seal's size field
seal_size() { json_field "$1.seal" size; }

# --- writers whose first write is small, then large ones ---
head -c 40000000 /dev/urandom > "$WORK/big"
head -c 4096 /dev/urandom > "$WORK/small"
{
	dd bs=4096 count=1 if="$WORK/small" status=none
	dd bs=40000000 count=1 if="$WORK/big" status=none
} > "$MNT/dd2.bin"
check "two dd's in one group (4 KiB, then 40 MB): written" test "$(stat -c %s "$MNT/dd2.bin")" -eq 40004096
check "the daemon lives after the two dd's" alive
check "and the file holds their bytes" same "$MNT/dd2.bin" <(cat "$WORK/small" "$WORK/big")
check "and is sealed" test "$(seal_size "$MNT/dd2.bin")" = 40004096

"$PY" - "$MNT/dl.bin" "$WORK/dl.ref" << 'PY'
import os, sys
data = os.urandom(50 * 1024 * 1024 + 333)
for path in sys.argv[1:]:
    with open(path, "wb") as f:
        f.write(data[:100])  # a downloader whose first read was short
        for i in range(100, len(data), 1 << 20):
            f.write(data[i:i + (1 << 20)])
PY
check "a downloader's short first write, then 1 MiB writes" same "$MNT/dl.bin" "$WORK/dl.ref"
check "the daemon lives after it" alive

# safetensors written in place: 8-byte length, the JSON header, then the tensors' data
"$PY" - "$MNT/model.safetensors" "$WORK/model.safetensors" << 'PY'
import json, os, struct, sys
tensors = {"norm.weight": 256, "fc.weight": 12 * 1024 * 1024, "fc.bias": 4096}
header, off = {}, 0
for name, n in tensors.items():
    header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + 4 * n]}
    off += 4 * n
h = json.dumps(header).encode()
blobs = [os.urandom(4 * n) for n in tensors.values()]
for path in sys.argv[1:]:
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
PY
check "a safetensors file written in place" same "$MNT/model.safetensors" "$WORK/model.safetensors"
check "the daemon lives after it" alive

# torch.save (Debian's python3-torch): a small LayerNorm before a large Linear, in the zip
# format and in the legacy one; loaded back from the mount and compared tensor by tensor
for legacy in 0 1; do
	if "$PY" - "$MNT/m$legacy.pt" "$legacy" << 'PY'; then ok; else bad "torch.save (legacy=$legacy) into the mount, loaded back equal"; fi
import sys, torch
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.LayerNorm(64), torch.nn.Linear(64, 64),
                            torch.nn.Linear(4096, 4096))
sd = model.state_dict()
torch.save(sd, sys.argv[1], _use_new_zipfile_serialization=sys.argv[2] == "0")
back = torch.load(sys.argv[1])
assert sd.keys() == back.keys()
for k in sd:
    assert torch.equal(sd[k], back[k]), k
PY
	check "the daemon lives after torch.save (legacy=$legacy)" alive
done
check "verify checks every writer's file" grep -q '^OK m1.pt ' <(cat "$MNT/verify")
check "and finds nothing wrong" bash -c "cat '$MNT/verify' > /dev/null"

# a writer and a reader that run programs mid-use: execve closes their close-on-exec
# descriptors, and the flush it sends must not wait on the exec (it hung worker and process)
check "a writer that runs a program mid-load finishes" timeout 20 "$PY" -c '
import os, subprocess, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"a" * 100000)
subprocess.run(["true"], check=True)
os.system("true")
os.write(fd, b"b" * 100000)
os.close(fd)
f = open(sys.argv[2], "rb")
subprocess.run(["true"], check=True)
f.close()
' "$MNT/exec.bin" "$MNT/dl.bin"
check "and its file is sealed whole" test "$(seal_size "$MNT/exec.bin")" = 200000
check "the daemon lives after it" alive

# --- interrupted loads, one resumed, then removed: ROUNDS times ---
SRC=$WORK/src
head -c $((64 << 20)) /dev/urandom > "$SRC"
HALF=$((16 << 20))
mkdir "$MNT/int"
for round in $(seq 1 "$ROUNDS"); do
	alive || break
	# cp from a slow pipe, killed by SIGINT (a background job ignores it unless told)
	(
		head -c "$HALF" "$SRC"
		sleep 30.$$
	) | env --default-signal=INT cp /dev/stdin "$MNT/int/cp.bin" &
	cp_pid=$!
	# dd bs=1M from a slow pipe (short reads of random sizes), killed by SIGTERM
	(
		"$PY" -c '
import random, sys, time
src, n, out = open(sys.argv[1], "rb"), int(sys.argv[2]), sys.stdout.buffer
random.seed(int(sys.argv[3]))
while n > 0:
    k = min(n, random.randint(1, 300000))
    out.write(src.read(k))
    out.flush()
    n -= k
    time.sleep(0.0005)
' "$SRC" $((HALF + 12345)) "$round"
		sleep 30.$$
	) | dd bs=1M of="$MNT/int/dd.bin" status=none &
	dd_pid=$!
	# a Python writer, killed by SIGKILL
	"$PY" -c '
import sys, time
f = open(sys.argv[1], "wb")
src = open(sys.argv[2], "rb")
f.write(src.read(int(sys.argv[3])))
f.flush()
print("written", flush=True)
time.sleep(30)
' "$MNT/int/py.bin" "$SRC" "$HALF" > "$WORK/py.out" &
	py_pid=$!
	for _ in $(seq 1 200); do
		[ "$(stat -c %s "$MNT/int/cp.bin" 2> /dev/null)" = "$HALF" ] &&
			[ "$(stat -c %s "$MNT/int/dd.bin" 2> /dev/null)" = $((HALF + 12345)) ] &&
			grep -q written "$WORK/py.out" && break
		sleep 0.1
	done
	pkill -INT -P "$cp_pid" -x cp 2> /dev/null || pkill -INT -x cp
	pkill -TERM -x dd
	kill -KILL "$py_pid"
	pkill -f "sleep 30.$$" 2> /dev/null # the pipes' writers: a pipeline is waited whole
	wait "$cp_pid" "$dd_pid" "$py_pid" 2> /dev/null
	for f in cp dd py; do
		if ! grep -q "^INCOMPLETE int/$f.bin" <(cat "$MNT/int/verify" 2> /dev/null); then
			bad "round $round: the killed $f load is INCOMPLETE"
		else ok; fi
		if [ -e "$MNT/int/$f.bin.seal" ]; then bad "round $round: a killed load has no seal ($f)"; else ok; fi
	done
	# a resume that adds no bytes (a cut, a rewrite inside) completes nothing: still incomplete
	truncate -s 50000 "$MNT/int/dd.bin"
	printf X | dd of="$MNT/int/cp.bin" bs=1 seek=5 conv=notrunc status=none
	for f in cp dd; do
		check "round $round: a resume of $f.bin that added no bytes leaves it INCOMPLETE" \
			grep -q "^INCOMPLETE int/$f.bin" <(cat "$MNT/int/verify" 2> /dev/null)
		check "round $round: and unsealed ($f)" test ! -e "$MNT/int/$f.bin.seal"
	done
	# an open and close with nothing written (touch) resumes nothing: still incomplete
	touch "$MNT/int/py.bin"
	check "round $round: a touch of the killed load leaves it INCOMPLETE" \
		grep -q "^INCOMPLETE int/py.bin" <(cat "$MNT/int/verify" 2> /dev/null)
	check "round $round: and unsealed" test ! -e "$MNT/int/py.bin.seal"
	# the Python file resumed by an append; seals sampled while it runs
	sealed_before=$(grep -c "sealed int/py.bin " "$WORK/daemon.log")
	(
		for _ in $(seq 1 400); do
			s=$(json_field "$MNT/int/py.bin.seal" size 2> /dev/null)
			[ -n "$s" ] && echo "$s"
			sleep 0.005
		done
	) > "$WORK/sampled" 2> /dev/null &
	sampler=$!
	tail -c +$((HALF + 1)) "$SRC" >> "$MNT/int/py.bin"
	sleep 0.3
	kill "$sampler" 2> /dev/null
	wait "$sampler" 2> /dev/null
	check "round $round: the resumed load holds the whole source" same "$MNT/int/py.bin" "$SRC"
	check "round $round: and is sealed at its whole size" test "$(seal_size "$MNT/int/py.bin")" = $((64 << 20))
	sealed_after=$(grep -c "sealed int/py.bin " "$WORK/daemon.log")
	check "round $round: sealed once, at the end of the resume (not over its partial bytes)" \
		test $((sealed_after - sealed_before)) -eq 1
	check "round $round: no seal sampled during the resume describes a partial load" \
		bash -c "! grep -qvx $((64 << 20)) '$WORK/sampled'"
	rm -f "$MNT"/int/*.bin
	check "round $round: the daemon lives after rm of the interrupted loads" alive
	check "round $round: and they are gone" test -z "$(ls "$MNT/int")"
done
n_partial=$(grep -c "\"event\":\"vram_sealed\".*\"path\":\"int/py.bin\"" "$AUDIT")
check "one vram_sealed audit record per resumed load ($n_partial for $ROUNDS rounds)" test "$n_partial" -eq "$ROUNDS"
busy_stop
check "unmount, daemon exits 0" unmount_vr
finish
