#!/bin/bash
# test_tools.sh - the patterns real tools use: globs, cp -r out and back, rm -r, git, grep -r,
# and shared read-only mmap (llama.cpp's loader, numpy.memmap) of sealed files.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with python3-numpy (scripts/deps.sh)

head -c 1500000 /dev/urandom > "$WORK/model.bin"
split -b 500000 -d "$WORK/model.bin" "$WORK/part."
mkdir -p "$WORK/tree/sub"
head -c 70000 /dev/urandom > "$WORK/tree/a.bin"
head -c 5000 /dev/urandom > "$WORK/tree/sub/b.bin"
echo "needle in a haystack" > "$WORK/tree/sub/c.txt"

check "mount" mount_vr "capacity=64M"

# a glob sees the parts, never their seals: the joined model is the model
check "cp the parts" cp "$WORK"/part.0* "$MNT/"
cat "$MNT"/part.* > "$WORK/joined.bin"
check "cat part.* joins only the parts" cmp -s "$WORK/joined.bin" "$WORK/model.bin"
check "the glob has three names" test "$(echo "$MNT"/part.* | wc -w)" = 3
check "cat part.* > model inside the mount" bash -c "cat '$MNT'/part.* > '$MNT/model.bin'"
check "that model is the model" cmp -s "$MNT/model.bin" "$WORK/model.bin"
check "and its seal matches fsverity digest" test "$(json_field "$MNT/model.bin.seal" fsverity)" = \
	"$(fsverity digest "$WORK/model.bin" | cut -d' ' -f1)"

# a tree copied in, out and back in again
check "cp -r in" cp -r "$WORK/tree" "$MNT/tree"
check "cp -r out" cp -r "$MNT/tree" "$WORK/out"
check "what came out is what went in" diff -r "$WORK/tree" "$WORK/out"
check "cp -r back in, as a second tree" cp -r "$WORK/out" "$MNT/again"
check "rsync -a out" rsync -a "$MNT/tree/" "$WORK/rsynced/"
check "rsync copied no generated entry" diff -r "$WORK/tree" "$WORK/rsynced"
check "tar of the mounted tree has only the files" \
	test "$(tar cf - -C "$MNT" tree | tar tf - | grep -c -E 'verify|status|\.seal')" = 0

# grep -r checks each file at most once (verify_on_open; a passing check is audited once per
# sealed version, so files cp, rsync and tar opened already add nothing), never a verify entry
before=$(grep -c '"event":"seal_verified"' "$AUDIT")
check "grep -r finds the needle" bash -c "grep -r needle '$MNT/tree' | grep -q c.txt"
after=$(grep -c '"event":"seal_verified"' "$AUDIT")
check "grep -r verified no file twice and ran no verify" test $((after - before)) -le 3

# git clone --no-local of a small repository into the mount
git init -q "$WORK/repo"
git -C "$WORK/repo" -c user.email=t@t -c user.name=t commit -q --allow-empty -m one
echo hello > "$WORK/repo/f.txt"
git -C "$WORK/repo" add f.txt
git -C "$WORK/repo" -c user.email=t@t -c user.name=t commit -q -m two
check "git clone --no-local into the mount" git clone -q --no-local "$WORK/repo" "$MNT/repo"
check "the clone checks out" test "$(cat "$MNT/repo/f.txt")" = hello

# rm -r removes whole trees
check "rm -r exits 0" rm -r "$MNT/again" "$MNT/repo"
check "the trees are gone" test ! -e "$MNT/again" -a ! -e "$MNT/repo"
check "rmdir of a directory holding only generated entries" bash -c "mkdir '$MNT/e' && rmdir '$MNT/e'"

# shared read-only mmap of a sealed file: Python mmap, numpy.memmap, and the bytes are right
cat > "$WORK/map.py" << 'PYEOF'
import hashlib, mmap, os, sys
import numpy as np
path, want = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
assert hashlib.sha256(m).hexdigest() == want, "mmap bytes differ"
try:
    m[0:1] = b"x"
    sys.exit("a write through a read-only mapping succeeded")
except TypeError:
    pass
m.close()
os.close(fd)
a = np.memmap(path, dtype=np.uint8, mode="r")
assert hashlib.sha256(a.tobytes()).hexdigest() == want, "memmap bytes differ"
print("mapped", len(a))
PYEOF
want=$(sha256sum < "$WORK/model.bin" | cut -d' ' -f1)
check "MAP_SHARED and numpy.memmap(mode='r') of a sealed file" "$PY" "$WORK/map.py" "$MNT/model.bin" "$want"
check "a C reader's MAP_SHARED mapping (llama.cpp's way) has the bytes" \
	test "$("$BIN/vr-mmap-read" "$MNT/model.bin")" = "$want"
check "with list_generated=1 they are listed again" unmount_vr
check "mount listing generated entries" mount_vr "capacity=64M,list_generated=1"
check "cp -p" cp "$WORK/model.bin" "$MNT/m.bin"
check "ls shows verify, status and the seal" bash -c "ls '$MNT' | grep -qx status && ls '$MNT' | grep -qx verify && ls '$MNT' | grep -qx m.bin.seal"
check "unmount, daemon exits 0" unmount_vr
finish
