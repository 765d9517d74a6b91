#!/bin/bash
# test_name_cache.sh - what the kernel may remember: a directory's name for a second (only the
# kernel's own requests change directories), a file's name not at all (the daemon removes a
# failed load and a removed file's seal itself), attributes a tick. Every change is seen at
# once, and a path's directories are not asked for at every use of the path.
. "$(dirname "$0")/lib.sh"

VR_E2E_FLAGS=-d check "mount (libfuse's -d prints each request)" mount_vr "capacity=64M"
M=$MNT
lookups() { grep -c 'opcode: LOOKUP' "$WORK/daemon.log"; }

# the kernel's own changes to directories, each looked at at once
mkdir -p "$M/a/b/c" && echo x > "$M/a/b/c/f"
check "a deep file" test "$(cat "$M/a/b/c/f")" = x
check "mv of a directory" mv "$M/a/b" "$M/a/y"
check "its old name is gone at once" test ! -e "$M/a/b"
check "its files are under the new one" test "$(cat "$M/a/y/c/f")" = x
check "rm -r" rm -r "$M/a/y"
check "gone at once" test ! -e "$M/a/y"
check "made again, empty" bash -c "mkdir '$M/a/y' && test -z \"\$(ls -A '$M/a/y')\""
check "rmdir, then a file of that name" bash -c "rmdir '$M/a/y' && echo z > '$M/a/y' && test -f '$M/a/y' && test \"\$(cat '$M/a/y')\" = z"
check "rm, then a directory of that name" bash -c "rm '$M/a/y' && mkdir '$M/a/y' && test -d '$M/a/y'"
mkdir "$M/p" "$M/q"
check "mv -T of a directory over an empty one" mv -T "$M/p" "$M/q"
check "the source name is gone at once" test ! -e "$M/p"
check "chmod of a directory seen at once" bash -c "chmod 700 '$M/a' && test \"\$(stat -c %a '$M/a')\" = 700"

# names the daemon removes itself
echo model > "$WORK/m"
cp "$WORK/m" "$M/a/m"
check "a sealed file's seal" test -s "$M/a/m.seal"
rm "$M/a/m"
check "the seal of a removed file is gone at once" test ! -e "$M/a/m.seal"
check "unmount, daemon exits 0" unmount_vr

check "mount with a digest fault" mount_vr "capacity=64M,mock_fault=digest:1:eio"
refuse "a load whose seal fails" "Input/output error" cp "$WORK/m" "$MNT/m"
check "is gone at once" test ! -e "$MNT/m"
# an open that creates without O_EXCL (Python's "wb") would meet a remembered name as ENOENT
check "and its name can be loaded again at once" python3 -c "open('$MNT/m', 'wb').write(b'model\n')"
check "which seals" test -s "$MNT/m.seal"
check "unmount, daemon exits 0" unmount_vr

# what is asked: a file's name at each use, its directories about once a second
VR_E2E_FLAGS=-d check "mount with -d" mount_vr "capacity=64M"
mkdir -p "$MNT/s/t/u/v" && : > "$MNT/s/t/u/v/f"
before=$(lookups)
for _ in $(seq 1 20); do stat -c %s "$MNT/s/t/u/v/f" > /dev/null; done
n=$(($(lookups) - before))
check "20 stats of a file 5 levels down: its name asked each time (asked $n)" test "$n" -ge 20
check "and its directories not (5 per stat would be 100; asked $n)" test "$n" -le 40
check "unmount, daemon exits 0" unmount_vr
finish
