#!/bin/bash
# test_tool_table.sh - the refusals docs/filesystem.md's tool table explains, with clients nobody
# on the project wrote (rsync, Debian's torch and numpy, git): each is met as the table says,
# and the alternative it gives works.
. "$(dirname "$0")/lib.sh"

PY="/usr/bin/python3 -W ignore"
check "mount" mount_vr capacity=256M
head -c 100000 /dev/urandom > "$WORK/good"
head -c 100000 /dev/urandom > "$WORK/bad"
sum=$(sha256sum < "$WORK/good" | cut -d' ' -f1)
printf '%s  good\n%s  bad\n' "$sum" "$sum" > "$WORK/SHA256SUMS"

# rsync -a of a file its SHA256SUMS contradicts: exits 0, the file quarantined; verify says so
mkdir "$MNT/r" && cp "$WORK/SHA256SUMS" "$MNT/r/"
check "rsync -a of a contradicted file exits 0 (the table says so)" rsync -a "$WORK/good" "$WORK/bad" "$MNT/r/"
refuse "and the file is quarantined: reads fail" "Input/output error" cat "$MNT/r/bad"
check "cat DIR/verify after rsync exits 1" bash -c "! cat '$MNT/r/verify' > '$WORK/r.verify' 2> /dev/null"
check "naming the file FAILED" grep -q '^FAILED r/bad ' "$WORK/r.verify"
mkdir "$MNT/i" && cp "$WORK/SHA256SUMS" "$MNT/i/"
rsync -a --inplace "$WORK/bad" "$MNT/i/" 2> /dev/null
check "rsync --inplace fails as cp does (exit 11)" test $? = 11

# torch.from_file(shared=True): EPERM; shared=False works
cp "$WORK/good" "$MNT/t.bin"
cat > "$WORK/from_file.py" <<'PY'
import sys, torch
path = sys.argv[1]
try:
    torch.from_file(path, shared=True, size=100000, dtype=torch.uint8)
    print("shared opened")
except RuntimeError as e:
    print("shared refused" if "Operation not permitted" in str(e) else "shared: %s" % e)
t = torch.from_file(path, shared=False, size=100000, dtype=torch.uint8)
print("private", bytes(t.numpy()) == open(path, "rb").read())
PY
$PY "$WORK/from_file.py" "$MNT/t.bin" > "$WORK/torch.out" 2>&1
check "torch.from_file(shared=True): Operation not permitted" grep -qx 'shared refused' "$WORK/torch.out"
check "torch.from_file(shared=False) reads it" grep -qx 'private True' "$WORK/torch.out"

# np.memmap: r+ EPERM, w+ ENODEV leaving an INCOMPLETE file that rm clears; r and c work
cat > "$WORK/memmap.py" <<'PY'
import errno, sys, numpy
mnt = sys.argv[1]
for mode in ("r+", "w+"):
    try:
        numpy.memmap(mnt + "/t.bin" if mode == "r+" else mnt + "/new.bin", mode=mode,
                     shape=(1000,), dtype=numpy.uint8)
        print(mode, "opened")
    except OSError as e:
        print(mode, errno.errorcode[e.errno])
for mode in ("r", "c"):
    print(mode, int(numpy.memmap(mnt + "/t.bin", mode=mode).sum()) ==
          sum(open(mnt + "/t.bin", "rb").read()))
a = numpy.arange(1000, dtype=numpy.uint8)
a.tofile(mnt + "/made.bin")
print("tofile", bool((numpy.memmap(mnt + "/made.bin", mode="r") == a).all()))
PY
$PY "$WORK/memmap.py" "$MNT" > "$WORK/memmap.out" 2>&1
check "np.memmap r+: EPERM" grep -qx 'r+ EPERM' "$WORK/memmap.out"
check "np.memmap w+: ENODEV" grep -qx 'w+ ENODEV' "$WORK/memmap.out"
check "np.memmap r and c read it" bash -c "grep -qx 'r True' '$WORK/memmap.out' && grep -qx 'c True' '$WORK/memmap.out'"
check "tofile, then memmap r: the alternative works" grep -qx 'tofile True' "$WORK/memmap.out"
check "w+ left an INCOMPLETE file verify reports" grep -q '^INCOMPLETE new.bin ' "$MNT/verify"
check "rm clears it" rm "$MNT/new.bin"

# git commit in a clone: the reflog append is EPERM; a clone without reflogs commits
git init -q "$WORK/repo" && echo a > "$WORK/repo/a"
git -C "$WORK/repo" add a && git -C "$WORK/repo" -c user.email=t@t -c user.name=t commit -qm one
gc() { git -C "$1" -c user.email=t@t -c user.name=t commit -qm "$2"; }
check "git clone into the tree" git clone -q "$WORK/repo" "$MNT/g1"
echo b > "$MNT/g1/b" && git -C "$MNT/g1" add b
refuse "git commit there: the reflog append is refused" "unable to append to '.git/logs/HEAD'" gc "$MNT/g1" two
check "git clone --config core.logAllRefUpdates=false" \
	git clone -q --config core.logAllRefUpdates=false "$WORK/repo" "$MNT/g2"
echo b > "$MNT/g2/b" && git -C "$MNT/g2" add b
check "commits" gc "$MNT/g2" two
check "rm -r .git/logs && git config core.logAllRefUpdates false: the first clone commits" \
	bash -c "rm -r '$MNT/g1/.git/logs' && git -C '$MNT/g1' config core.logAllRefUpdates false"
check "commits" gc "$MNT/g1" two
check "both histories have two commits" \
	test "$(git -C "$MNT/g1" rev-list --count HEAD)$(git -C "$MNT/g2" rev-list --count HEAD)" = 22
check "unmount" unmount_vr
finish
