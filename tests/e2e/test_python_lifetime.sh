#!/bin/bash
# test_python_lifetime.sh - the Python module never unmaps memory a view still uses: arrays and
# tensors over a mapping stay valid after Mapping.close(), Client.close() and the end of the
# docs' own `with` block; the memory goes (and the lease ends) with the last of them.
. "$(dirname "$0")/lib.sh"

client_python -W ignore

check "mount" mount_vr capacity=64M
head -c 1048577 /dev/urandom > "$WORK/w.bin"
cp "$WORK/w.bin" "$MNT/w.bin"
SUM=$(sha256sum < "$WORK/w.bin" | cut -d' ' -f1)

# run_case NAME CODE: CODE (Python) runs with c, a Client, and m, a Mapping of w.bin, and leaves
# `use` a function returning the bytes a view still sees; it must print their SHA-256
run_case() {
	cat > "$WORK/$1.py" <<PY
import gc, hashlib, sys, numpy, vram_client
mnt = sys.argv[1]
$2
gc.collect()
print(hashlib.sha256(use()).hexdigest())
PY
	"$PY" "$WORK/$1.py" "$MNT" > "$WORK/$1.out" 2>&1
	echo "rc=$?" >> "$WORK/$1.out"
	if grep -qx "$SUM" "$WORK/$1.out" && grep -qx rc=0 "$WORK/$1.out"; then
		ok
	else
		bad "$1: $(tr '\n' ' ' < "$WORK/$1.out")"
	fi
}

run_case "numpy array after Mapping.close()" '
c = vram_client.Client(mnt)
m = c.map("w.bin")
a = numpy.frombuffer(m.buffer, dtype=numpy.uint8)
m.close()
use = lambda: a.tobytes()'
run_case "numpy array after Client.close()" '
c = vram_client.Client(mnt)
a = numpy.frombuffer(c.map("w.bin").buffer, dtype=numpy.uint8)
c.close()
use = lambda: a.tobytes()'
run_case "numpy array after the docs with-block" '
with vram_client.Client(mnt) as c, c.map("w.bin", verify=True) as m:
    a = numpy.frombuffer(m.buffer, dtype=numpy.uint8)
del m, c
use = lambda: a.tobytes()'
run_case "a slice of a view, its parents gone" '
with vram_client.Client(mnt) as c, c.map("w.bin") as m:
    a = numpy.frombuffer(m.buffer, dtype=numpy.uint8)
    b = a[:]
del a, m, c
use = lambda: b.tobytes()'
run_case "memoryview after Client.close()" '
with vram_client.Client(mnt) as c:
    v = c.map("w.bin").buffer
use = lambda: bytes(v)'
run_case "torch.frombuffer tensor after close" '
import torch
with vram_client.Client(mnt) as c, c.map("w.bin") as m:
    t = torch.frombuffer(m.buffer, dtype=torch.uint8)
del m, c
use = lambda: t.numpy().tobytes()'
run_case "torch.from_numpy tensor after close (the docs pattern)" '
import torch
with vram_client.Client(mnt) as c, c.map("w.bin") as m:
    t = torch.from_numpy(numpy.frombuffer(m.buffer, dtype=numpy.uint8))
del m, c
use = lambda: bytes(t.numpy())'
check "the daemon survived every case" kill -0 "$DAEMON_PID"

# the lease lives as long as the views: the file cannot go while one is alive, and can after
cat > "$WORK/lease.py" <<'PY'
import errno, os, sys, numpy, vram_client
mnt = sys.argv[1]
c = vram_client.Client(mnt)
m = c.map("gone.bin")
a = numpy.frombuffer(m.buffer, dtype=numpy.uint8)
c.close()
try:
    os.unlink(os.path.join(mnt, "gone.bin"))
    sys.exit("removed under a live view")
except OSError as e:
    assert e.errno == errno.EBUSY, e
first = int(a[0])
del a
os.unlink(os.path.join(mnt, "gone.bin"))  # the last view gone: unmapped, lease ended
try:
    m.buffer
    sys.exit("a closed mapping handed out a buffer")
except ValueError:
    pass
try:
    c.map("w.bin")
    sys.exit("a closed client mapped")
except ValueError:
    pass
print("ok")
PY
cp "$WORK/w.bin" "$MNT/gone.bin"
check "lease held while a view lives, ended with the last" \
	test "$("$PY" "$WORK/lease.py" "$MNT" 2>&1)" = ok
check "and the file is gone" test ! -e "$MNT/gone.bin"

# an error names the path once, and its errno's text once
cat > "$WORK/err.py" <<'PY'
import sys, vram_client
c = vram_client.Client(sys.argv[1])
try:
    c.map("no/such.bin")
except vram_client.VramError as e:
    print(e)
PY
out=$("$PY" "$WORK/err.py" "$MNT" 2>&1)
check "error names the path: $out" bash -c "printf '%s' \"\$1\" | grep -q \"'no/such.bin'\"" _ "$out"
check "error says its reason once: $out" \
	test "$(printf '%s' "$out" | grep -o 'No such file or directory' | wc -l)" = 1
check "unmount" unmount_vr
finish
