#!/bin/bash
# test_socket.sh - the daemon's socket: zero-copy read-only maps of sealed files, leases, imports.
. "$(dirname "$0")/lib.sh"

client_python
chmod 755 "$WORK" # so an unprivileged user reaches the mount (the secret stays 0600)
VRAM=$WORK/vram
SOCK=$MNT.sock
# digest_of FILE: what `fsverity digest` says (the independent oracle)
digest_of() { fsverity digest "$1" | cut -d' ' -f1; }
# the steps run as nobody use copies it can reach (lib.sh)
carry_for_nobody

check "mount with allow_other" mount_vr "capacity=256M,mock_vram=$VRAM,allow_other"
check "socket bound beside the mount" test -S "$SOCK"
check "status names the socket" grep -q "\"path\":[[:space:]]*\"$SOCK\"" "$MNT/status"
check "socket mode 0666 under allow_other" test "$(stat -c %a "$SOCK")" = 666

# the mapped bytes' digest equals the source's for every size at the boundaries
for size in 0 1 4095 4096 4097 1048575 1048576 1048577 3145733; do
	head -c "$size" /dev/urandom > "$WORK/s$size"
	cp "$WORK/s$size" "$MNT/s$size"
	want=$(digest_of "$WORK/s$size")
	got=$("$BIN/vram-map" "$MNT/s$size" | cut -d' ' -f1)
	check "size $size: mapped digest = fsverity digest" test "$got" = "$want"
done
check "vram-map prints fsverity digest's format" \
	test "$("$BIN/vram-map" "$MNT/s4097")" = "$(fsverity digest "$WORK/s4097" | cut -d' ' -f1) $MNT/s4097"
check "--verify re-checks first" "$BIN/vram-map" --verify "$MNT/s1048577"
check "audited with pid and uid" bash -c "grep '\"event\":\"vram_exported\"' '$AUDIT' | grep -q '\"path\":\"s1048577\",\"uid\":0,\"pid\":'"
check "the check audited" grep -q 'checked on the device first' "$AUDIT"
mkdir -p "$MNT/hf/blobs" "$MNT/hf/snapshots/r1"
cp "$WORK/s4097" "$MNT/hf/blobs/abc"
ln -s ../../blobs/abc "$MNT/hf/snapshots/r1/w.bin"
check "a link (Hugging Face cache) is followed" \
	test "$("$BIN/vram-map" "$MNT/hf/snapshots/r1/w.bin" | cut -d' ' -f1)" = "$(digest_of "$WORK/s4097")"

# Python: zero copy (the array's address is the mapping's), read-only, verify
cat > "$WORK/zero_copy.py" <<'PY'
import sys, numpy, vram_client
mnt, name, src = sys.argv[1:4]
with vram_client.Client(mnt) as c, c.map(name, verify=True) as m:
    a = numpy.frombuffer(m.buffer, dtype=numpy.uint8)
    assert a.ctypes.data == m.ptr, "copied"
    assert a.tobytes() == open(src, "rb").read(), "bytes differ"
    assert m.seal["size"] == m.size and m.seal["path"] == name, m.seal
    assert not a.flags.writeable
    try:
        m.buffer[0] = 1
        sys.exit("wrote through the buffer")
    except TypeError:
        pass
    m.verify()
print("ok")
PY
check "python: zero-copy numpy view of the sealed bytes" \
	test "$("$PY" "$WORK/zero_copy.py" "$MNT" s1048577 "$WORK/s1048577")" = ok
cat > "$WORK/write.py" <<'PY'
import ctypes, sys, vram_client
c = vram_client.Client(sys.argv[1])
m = c.map(sys.argv[2])
ctypes.memmove(m.ptr + 100, b"X", 1)
print("wrote")
PY
"$PY" "$WORK/write.py" "$MNT" s4097 > "$WORK/write.out" 2>&1
rc=$?
# (under ASan its handler reports the SEGV and exits 1)
check "a store through the mapping faults (SIGSEGV)" \
	bash -c "[ $rc = 139 ] || { [ -n '$preload' ] && grep -q 'SEGV on unknown address' '$WORK/write.out'; }"
check "the store did not go through" bash -c "! grep -q wrote '$WORK/write.out'"
check "and nothing was written" test "$("$BIN/vram-map" --verify "$MNT/s4097" | cut -d' ' -f1)" = "$(digest_of "$WORK/s4097")"

# docs/socket.md's worked example: a safetensors file's tensors viewed in the mapping
cat > "$WORK/make_st.py" <<'PY'
import hashlib, json, struct, sys, numpy
rng = numpy.random.default_rng(7)
ts = {"embed": rng.standard_normal((64, 32)).astype("<f4"),
      "norm": rng.standard_normal(32).astype("<f2"), "ids": numpy.arange(10, dtype="<i8")}
kinds = {"float32": "F32", "float16": "F16", "int64": "I64"}
header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for name, a in ts.items():
    b = a.tobytes()
    header[name] = {"dtype": kinds[str(a.dtype)], "shape": list(a.shape),
                    "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
    print(name, hashlib.sha256(b).hexdigest())
h = json.dumps(header).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
"$PY" "$WORK/make_st.py" "$WORK/model.safetensors" | sort > "$WORK/st.want"
mkdir -p "$MNT/llama" && cp "$WORK/model.safetensors" "$MNT/llama/"
"$PY" "$PYTHONPATH/examples/safetensors_tensors.py" "$MNT" llama/model.safetensors --verify \
	> "$WORK/st.out"
check "example: every tensor viewed in place, bytes as written" \
	bash -c "grep -v '^#' '$WORK/st.out' | awk '{print \$1, \$NF}' | sort | cmp -s - '$WORK/st.want'"
check "example: shapes as written" grep -q '^embed float32 \[64, 32\] ' "$WORK/st.out"

# permissions: the caller must be able to open the file for reading
cp "$WORK/s4096" "$MNT/private" && chmod 600 "$MNT/private"
cp "$WORK/s4096" "$MNT/public" && chmod 644 "$MNT/public"
mkdir -m 700 "$MNT/closed" && cp "$WORK/s4096" "$MNT/closed/f" && chmod 644 "$MNT/closed/f"
check "nobody maps a 0644 file" as_nobody "$NBIN/vram-map" "$MNT/public"
cat > "$WORK/denied.py" <<'PY'
import errno, sys, vram_client
c = vram_client.Client(sys.argv[1])
try:
    c.map(sys.argv[2])
    sys.exit("mapped")
except vram_client.VramError as e:
    assert e.errno == errno.EACCES, e
print("refused")
PY
check "nobody is refused a 0600 file by the daemon" \
	test "$(as_nobody "$PY" "$WORK/denied.py" "$MNT" private)" = refused
check "nobody is refused below a 0700 directory" \
	test "$(as_nobody "$PY" "$WORK/denied.py" "$MNT" closed/f)" = refused
# no existence oracle: below a directory it may not search, every name is EACCES, as open(2)
check "nobody is refused a name that does not exist below a 0700 directory" \
	test "$(as_nobody "$PY" "$WORK/denied.py" "$MNT" closed/none)" = refused
check "nor learns that closed/f is a file" \
	test "$(as_nobody "$PY" "$WORK/denied.py" "$MNT" closed/f/x)" = refused
check "nor that closed/none is not a folder" \
	test "$(as_nobody "$PY" "$WORK/denied.py" "$MNT" closed/none/x)" = refused
refuse "nobody's import below a 0700 directory, into a folder that does not exist" \
	"Permission denied" as_nobody "$NBIN/vram-load" "$WORK/s1" "$MNT/closed/nodir/x"
check "refusal audited" bash -c "grep '\"event\":\"vram_export_refused\"' '$AUDIT' | grep -q '\"path\":\"private\"'"
# a raw client's paths are names as the mount takes them: invalid UTF-8, control characters
# and ".." are refused (EINVAL) without their bytes in any log; the logs stay valid UTF-8
cat > "$WORK/raw.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
for p in [b"bad\xff.bin", b"esc\x1b[31mred", b"ok/../private", b"\xc0\xaf", b"closed/\xfe"]:
    s.send(struct.pack("=IHHIIII", 0x31535256, 1, 1, 0, 0, 0, len(p)) + p)
    status = struct.unpack_from("=IHHi", s.recv(65536))[3]
    print(p, status)
    assert status == -22, (p, status)
s.send(struct.pack("=IHHIIII", 0x31535256, 1, 1, 0, 0, 0, 4) + b"none")
assert struct.unpack_from("=IHHi", s.recv(65536))[3] == -2  # a valid name still answers
print("refused")
PY
check "a raw client's bad paths are refused with EINVAL" \
	test "$(as_nobody "$PY" "$WORK/raw.py" "$SOCK" | tail -1)" = refused
check "said in the log, without the bytes" grep -q "sent a path that is not valid" "$WORK/daemon.log"
check "the daemon's log is valid UTF-8" iconv -f UTF-8 -t UTF-8 "$WORK/daemon.log" -o /dev/null
check "every audit record is strict JSON" "$PY" -c "
import json, sys
for line in open(sys.argv[1], 'rb'):
    json.loads(line.decode('utf-8', 'strict'))" "$AUDIT"
# the client trusts only a daemon that is root or the mount's owner: a socket nobody bound
# (a squatter, or a status file pointing elsewhere) is refused before any request
cat > "$WORK/squat.py" <<'PY'
import ctypes, os, socket, sys, threading
lib = ctypes.CDLL(os.environ["VRAM_CLIENT_LIB"], use_errno=True)
path = sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
srv.bind(path)
srv.listen(1)
threading.Thread(target=srv.accept, daemon=True).start()
c = ctypes.c_void_p()
ret = lib.vr_client_connect_socket(path.encode(), sys.argv[1].encode(), ctypes.byref(c))
print("refused" if ret == -1 else "connected %d" % ret)
PY
check "a socket another user serves is refused (EPERM)" \
	test "$(as_nobody "$PY" "$WORK/squat.py" "$MNT" "/tmp/vr-squat-$$.sock" | tail -1)" = refused
rm -f "/tmp/vr-squat-$$.sock"
# leases are capped: 1024 live per connection, 4096 per user other than root (a lease pins
# its file against rm and replacement); past them a map is EAGAIN, and an unmap makes room
cat > "$WORK/many.py" <<'PY'
import socket, struct, sys
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    return s
def req(s, op, lease=0, path=b""):
    s.send(struct.pack("=IHHIIII", 0x31535256, 1, op, 0, lease, 0, len(path)) + path)
    r = s.recv(1 << 16)  # the descriptors are dropped with the control data
    return struct.unpack_from("=IHHiI", r)
statuses = []
conns = [conn() for _ in range(5)]
for c in conns[:4]:
    got = [req(c, 1, path=b"public") for _ in range(1025)]
    statuses.append(sum(1 for g in got if g[3] == 0))
    statuses.append(got[-1][3])
statuses.append(req(conns[4], 1, path=b"public")[3])  # the user's 4097th
lease = req(conns[0], 3, lease=1)[3]                 # unmap lease 1 on the first
statuses.append(lease)
statuses.append(req(conns[4], 1, path=b"public")[3])  # room again
print(" ".join(map(str, statuses)))
PY
check "1024 leases per connection, 4096 per user, then EAGAIN; an unmap makes room" \
	test "$(as_nobody "$PY" "$WORK/many.py" "$SOCK")" = "1024 -11 1024 -11 1024 -11 1024 -11 -11 0 0"
check "the refusals are logged" grep -q "this user holds 4096 leases already" "$WORK/daemon.log"
refuse "a directory is not mapped" "Is a directory" "$BIN/vram-map" "$MNT/hf"
cat > "$WORK/loading.py" <<'PY'
import subprocess, sys
with open(sys.argv[1] + "/loading", "wb") as f:  # one descriptor, open for writing meanwhile
    f.write(b"partial")
    f.flush()
    r = subprocess.run([sys.argv[2], sys.argv[1] + "/loading"], capture_output=True, text=True)
    print(r.returncode, r.stderr.strip())
PY
check "a file still loading is not handed out" \
	bash -c "'$PY' '$WORK/loading.py' '$MNT' '$BIN/vram-map' | grep -q '^1 .*Resource temporarily unavailable'"

# leases: no rm, rename over or replacement while mapped; a killed client's lease ends
"$BIN/vram-map" --hold 30 "$MNT/s1048576" > /dev/null &
holder=$!
for _ in $(seq 1 100); do
	[ "$(json_field "$MNT/status" leases)" = 1 ] && break
	sleep 0.05
done
check "status counts the lease" test "$(json_field "$MNT/status" leases)" = 1
refuse "rm of a leased file" "Device or resource busy" rm "$MNT/s1048576"
refuse "mv over a leased file" "Device or resource busy" mv "$MNT/s1" "$MNT/s1048576"
refuse "replacing a leased file" "Device or resource busy" cp "$WORK/s4096" "$MNT/s1048576"
check "mv of the leased file itself is fine" mv "$MNT/s1048576" "$MNT/moved"
check "refusals audited" bash -c "grep -c 'mapped by 1 lease' '$AUDIT' | grep -qx 3"
kill -9 "$holder"
wait "$holder" 2> /dev/null
for _ in $(seq 1 100); do
	[ "$(json_field "$MNT/status" leases)" = 0 ] && break
	sleep 0.05
done
check "a killed client's lease ends" test "$(json_field "$MNT/status" leases)" = 0
check "then rm works" rm "$MNT/moved"

# tamper with device memory under a live mapping: the mapping shows it, verify fails
{ printf 'SOCKET-TAMPER-MARKER'; head -c 2000000 /dev/urandom; } > "$WORK/victim"
cp "$WORK/victim" "$MNT/victim"
"$BIN/vram-map" --hold 1 --recheck "$MNT/victim" > "$WORK/recheck.out" 2> "$WORK/recheck.err" &
mapper=$!
sleep 0.3
hit=$(grep -obUa 'SOCKET-TAMPER-MARKER' "$VRAM"/chunk-* | head -1)
check "victim's bytes found in device memory" test -n "$hit"
printf 'Z' | dd of="${hit%%:*}" bs=1 seek=$(($(echo "$hit" | cut -d: -f2) + 777)) conv=notrunc status=none
wait "$mapper"
rc=$?
check "the mapper sees the change and fails" test "$rc" = 1
check "its bytes changed under the mapping" grep -q "the mapped bytes changed" "$WORK/recheck.err"
check "the daemon's verify failed" grep -q "verify FAILED" "$WORK/recheck.err"
check "quarantined and audited" audit_has seal_verification_failed victim
refuse "a quarantined file is not handed out" "Input/output error" "$BIN/vram-map" "$MNT/victim"

# import: vram-load seals exactly what cp seals
head -c 5000000 /dev/urandom > "$WORK/big"
cp "$WORK/big" "$MNT/by-cp"
check "vram-load a file" "$BIN/vram-load" "$WORK/big" "$MNT/by-load"
check "same bytes" cmp -s "$WORK/big" "$MNT/by-load"
for k in fsverity sha256 size; do
	check "seal $k as cp's" test "$(json_field "$MNT/by-load.seal" "$k")" = "$(json_field "$MNT/by-cp.seal" "$k")"
done
check "loaded file's seal verifies offline" "$BIN/vram-seal" verify --secret "$SECRET" "$MNT/by-load.seal" "$WORK/big"
check "import audited as a seal" audit_has vram_sealed by-load
mkdir -p "$WORK/tree/sub"
head -c 7000 /dev/urandom > "$WORK/tree/a"
head -c 70000 /dev/urandom > "$WORK/tree/sub/b"
chmod 640 "$WORK/tree/sub/b"
check "vram-load a directory into a directory" "$BIN/vram-load" "$WORK/tree" "$MNT"
check "tree loaded" cmp -s "$WORK/tree/sub/b" "$MNT/tree/sub/b"
check "mode kept (less the umask)" test "$(stat -c %a "$MNT/tree/sub/b")" = 640
check "directory verify passes" grep -q '^OK tree/sub/b ' "$MNT/tree/verify"
"$BIN/vram-load" -v "$WORK/tree/" "$MNT/" > "$WORK/load-v.out"
check "vram-load -v names the files, without doubled slashes" bash -c \
	"grep -q ' -> $MNT/tree/sub/b (70000 bytes' '$WORK/load-v.out' && ! grep -q '//' '$WORK/load-v.out'"
check "replacing through import" "$BIN/vram-load" "$WORK/s4097" "$MNT/by-load"
check "replaced" cmp -s "$WORK/s4097" "$MNT/by-load"
refuse "nobody may not import into a root 0755 directory" "Permission denied" as_nobody "$NBIN/vram-load" "$WORK/s1" "$MNT/hf/x"
check "a refused import leaves nothing" test ! -e "$MNT/hf/x"
printf '%s  good\n' "$(sha256sum < "$WORK/s4096" | cut -d' ' -f1)" > "$WORK/SHA256SUMS"
mkdir "$MNT/exp" && cp "$WORK/SHA256SUMS" "$MNT/exp/"
refuse "an import a SHA256SUMS contradicts is refused as cp's is" "Input/output error" "$BIN/vram-load" "$WORK/s4097" "$MNT/exp/good"
check "import of the listed bytes seals" "$BIN/vram-load" "$WORK/s4096" "$MNT/exp/good"
check "as checked" grep -q '"expected"' "$MNT/exp/good.seal"
cat > "$WORK/badfd.py" <<'PY'
import ctypes, errno, os, sys, vram_client
c = vram_client.Client(sys.argv[1])
try:
    c.load("/dev/null", "from-a-device")
    sys.exit("a device imported")
except vram_client.VramError as e:
    assert e.errno == errno.EBADF, e
fd = os.open(sys.argv[2], os.O_RDONLY)
got = ctypes.c_uint64()
ret = vram_client._library().vr_client_import(c._conn.handle, fd, b"from-a-dir", 0o644, ctypes.byref(got))
assert ret == -errno.EBADF, ret
print("refused")
PY
check "a device or directory descriptor is refused" test "$("$PY" "$WORK/badfd.py" "$MNT" "$WORK")" = refused
check "and nothing was created" test ! -e "$MNT/from-a-device" -a ! -e "$MNT/from-a-dir"

# bad requests get clear errors and leave the daemon serving (raw protocol, docs/socket.md)
cat > "$WORK/proto.py" <<'PY'
import errno, socket, struct, sys
MAGIC = 0x31535256
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    return s
def req(op, path=b"", version=1, lease=0, magic=MAGIC, length=None):
    n = len(path) if length is None else length
    return struct.pack("<IHHIIII", magic, version, op, 0, lease, 0o644, n) + path
def status(s):
    r = s.recv(1 << 19)
    return struct.unpack("<IHHiIIIQII", r[:40])[3], r[40:]
s = conn()
s.send(req(1, b"s4096", version=2))
assert status(s)[0] == -errno.EPROTONOSUPPORT
s.send(req(9))
assert status(s)[0] == -errno.EOPNOTSUPP
s.send(req(2, lease=7))
assert status(s)[0] == -errno.EBADF      # verify of a lease this connection does not hold
s.send(req(3, lease=0))
assert status(s)[0] == -errno.EBADF      # unmap of none
s.send(req(4, b"x.bin"))
assert status(s)[0] == -errno.EBADF      # import without a descriptor
s.send(req(1, b"no/such/file"))
code, rest = status(s)
assert code == -errno.ENOENT and rest, rest  # with a reason
s.send(req(1, b"s4096", length=3))     # a length that lies: malformed, disconnected
assert status(s)[0] == -errno.EPROTO
assert s.recv(64) == b""
s = conn()
s.send(req(1, b"s4096", magic=0))
assert status(s)[0] == -errno.EPROTO
s = conn()
s.send(b"\x01")                          # shorter than a header
assert status(s)[0] == -errno.EPROTO
s = conn()
s.send(req(1, b"a" * 5000))              # longer than a path may be
assert status(s)[0] == -errno.EPROTO
s = conn()
s.send(req(1, b"s4096"))                 # and it still serves
r = s.recv(1 << 19)
code, lease = struct.unpack("<IHHiIIIQII", r[:40])[3:5]
assert code == 0 and lease == 1, (code, lease)
s.send(req(3, lease=lease))
assert status(s)[0] == 0
s.send(req(2, lease=lease))
assert status(s)[0] == -errno.EBADF      # an ended lease is gone
s.send(req(1, b"s4097"))
r = s.recv(1 << 19)
assert struct.unpack("<IHHiIIIQII", r[:40])[3:5] == (0, 1)  # its number serves again
s.send(req(2, lease=1))
assert status(s)[0] == 0                 # and verifies the new file
print("ok")
PY
check "bad requests: clear errors, the daemon serves on" test "$("$PY" "$WORK/proto.py" "$SOCK")" = ok
check "a malformed request is logged" grep -q "malformed request" "$WORK/daemon.log"

# the socket goes with the mount; a stale one is replaced at the next mount
check "unmount, daemon exits 0" unmount_vr
check "socket removed at unmount" test ! -e "$SOCK"
"$PY" -c "import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind('$SOCK')"
check "mount over a stale socket" mount_vr "capacity=64M"
check "stale socket replaced" grep -q "stale socket" "$WORK/daemon.log"
check "unmount again" unmount_vr
touch "$SOCK"
refuse "a regular file where the socket goes stops the mount" "not a socket" mount_vr "capacity=64M"
# a folder another user may write, even a sticky one: they could take the socket's name first
mkdir -m 1777 "$WORK/shared"
refuse "a socket in a folder others may write" "may be written by another user" mount_vr "capacity=64M,socket=$WORK/shared/s.sock"
check "nothing was mounted" bash -c "! mountpoint -q '$MNT'"
rm -f "$SOCK"
check "socket=none: no socket" mount_vr "capacity=64M,socket=none"
check "status says so" grep -q '"path":[[:space:]]*null' "$MNT/status"
check "final unmount" unmount_vr
finish
