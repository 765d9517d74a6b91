#!/bin/bash
# test_rename_rm.sh - rename keeps a file sealed and re-signs its seal; rm scrubs and frees.
. "$(dirname "$0")/lib.sh"

head -c 2500000 /dev/urandom > "$WORK/a.bin"
head -c 100 /dev/urandom > "$WORK/b.bin"
check "mount" mount_vr "capacity=32M"
mkdir -p "$MNT/x/y" "$MNT/z"
cp "$WORK/a.bin" "$MNT/x/y/a.bin"
cp "$WORK/b.bin" "$MNT/x/b.bin"

check "mv file" mv "$MNT/x/y/a.bin" "$MNT/z/renamed.bin"
check "old seal gone" test ! -e "$MNT/x/y/a.bin.seal"
check "seal names new path" test "$(json_field "$MNT/z/renamed.bin.seal" path)" = z/renamed.bin
cp "$MNT/z/renamed.bin.seal" "$WORK/r.seal"
check "re-signed seal verifies offline" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/r.seal" "$WORK/a.bin"
check "renamed file reads" cmp -s "$WORK/a.bin" "$MNT/z/renamed.bin"
check "rename audited" audit_has seal_renamed z/renamed.bin
check "still immutable after rename" bash -c "! echo x >> '$MNT/z/renamed.bin' 2>/dev/null"

check "mv dir" mv "$MNT/x" "$MNT/w"
check "seal below moved dir re-signed" test "$(json_field "$MNT/w/b.bin.seal" path)" = w/b.bin
check "verify after moves" bash -c "cat '$MNT/verify' | grep -c '^OK ' | grep -qx 2"

# a forged seal: the old copy names the old path and must not verify as the new file's
cp "$WORK/r.seal" "$WORK/forged.seal"
sed -i 's/"size":[^,]*/"size":\t2500001/' "$WORK/forged.seal"
refuse "edited seal refused" "signature does not match" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/forged.seal"

used=$(json_field "$MNT/status" used_bytes)
size=$(stat -c %s "$MNT/z/renamed.bin")
check "rm file" rm "$MNT/z/renamed.bin"
check "seal went with it" test ! -e "$MNT/z/renamed.bin.seal"
check "memory freed" test "$(json_field "$MNT/status" used_bytes)" = $((used - $(held "$size")))
check "rm audited" audit_has vram_deallocated z/renamed.bin
check "rmdir empty" rmdir "$MNT/w/y"
# rm -r removes the whole tree: the generated entries are not listed, so rm never meets them
check "rm -r exits 0" rm -r "$MNT/w"
check "the tree is gone" test ! -e "$MNT/w"
check "all freed" test "$(json_field "$MNT/status" used_bytes)" = 0
check "status files 0" test "$(json_field "$MNT/status" files)" = 0

# rm frees at once, even while the file is open: the open descriptor then reads ESTALE
cp "$WORK/a.bin" "$MNT/open.bin"
exec 3< "$MNT/open.bin"
rm "$MNT/open.bin"
check "freed at rm, though open" test "$(json_field "$MNT/status" used_bytes)" = 0
refuse "read after rm" "Stale file handle" bash -c "cat <&3"
# but its metadata is there: fstat of the descriptor says nlink 0 and the size it had
# (pjdfstest found ESTALE here; "open, unlink, fstat" is the temp-file pattern)
check "fstat after rm: nlink 0, size kept" test "$(python3 -c 'import os; s = os.fstat(3); print(s.st_nlink, s.st_size)' <&3)" = "0 $(stat -c %s "$WORK/a.bin")"
# and its metadata can still change (fchmod, fchown, futimens on the descriptor: the kernel
# sends them without its handle, and the daemon's side of /dev/fuse lends them one)
check "fchmod, fchown, futimens after rm, and fstat sees them" test "$(python3 -c 'import os
os.fchmod(3, 0o600)
os.fchown(3, 123, 456)
os.utime(3, (1000000000, 1000000000))
s = os.fstat(3)
print(oct(s.st_mode & 0o7777), s.st_uid, s.st_gid, int(s.st_mtime), s.st_nlink)' <&3)" = "0o600 123 456 1000000000 0"
exec 3<&-
cat > "$WORK/tempfile.py" << 'PY'
import os, sys
# a second descriptor closes first: the one left still answers
p = os.path.join(sys.argv[1], "scratch")
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o600)
other = os.open(p, os.O_RDONLY)
os.unlink(p)
os.close(other)
st = os.fstat(fd)
assert (st.st_nlink, st.st_size) == (0, 0), (st.st_nlink, st.st_size)
assert not os.path.exists(p)
os.close(fd)
# many at once, from threads: each answers its own file
import threading
errors = []
def one(i):
    q = os.path.join(sys.argv[1], "t%d" % i)
    with open(q, "wb") as f:
        f.write(b"x" * (i + 1))
    fd = os.open(q, os.O_RDONLY)
    os.unlink(q)
    for _ in range(20):
        s = os.fstat(fd)
        if (s.st_nlink, s.st_size) != (0, i + 1):
            errors.append((i, s.st_nlink, s.st_size))
    os.close(fd)
ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
[t.start() for t in ts]
[t.join() for t in ts]
assert not errors, errors
print("ok")
PY
check "open, unlink, fstat: the temp-file pattern, and 16 at once" test "$(python3 "$WORK/tempfile.py" "$MNT")" = ok
# rename over an existing file frees the replaced one (rsync's pattern)
cp "$WORK/a.bin" "$MNT/target.bin"
cp "$WORK/b.bin" "$MNT/.target.bin.tmp"
check "rename over" mv "$MNT/.target.bin.tmp" "$MNT/target.bin"
check "replaced file's memory freed" test "$(json_field "$MNT/status" used_bytes)" = "$(held "$(stat -c %s "$WORK/b.bin")")"
check "replacement sealed at new path" test "$(json_field "$MNT/target.bin.seal" path)" = target.bin
check "replacement content" cmp -s "$WORK/b.bin" "$MNT/target.bin"
check "unmount, daemon exits 0" unmount_vr
finish
