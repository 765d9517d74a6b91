#!/bin/bash
# test_user_mount.sh - an unprivileged user mounts through fusermount3 and loads into a tree
# that is theirs (the root directory belongs to whoever mounted).
. "$(dirname "$0")/lib.sh"

# /dev/fuse is 0600 on these machines (Debian's default is 0666, which unprivileged mounts
# need): opened for this test, and its mode put back at the end
fuse_mode=$(stat -c %a /dev/fuse)
user_cleanup() {
	[ -n "${upid:-}" ] && kill "$upid" 2> /dev/null
	[ -n "${U:-}" ] && grep -q " $U/mnt " /proc/mounts && umount -l "$U/mnt"
	chmod "$fuse_mode" /dev/fuse
	cleanup
}
trap user_cleanup EXIT
chmod 0666 /dev/fuse
chmod 755 "$WORK"
U=$WORK/user
mkdir -p "$U/mnt"
(umask 077 && head -c 32 /dev/urandom > "$U/secret")
chown -R nobody:nogroup "$U"
chmod 700 "$U"
carry_for_nobody # the daemon nobody runs, where nobody reaches it (lib.sh)

as_nobody "$NBIN/vram-residency" -f -o "backend=mock,capacity=64M,secret=$U/secret,audit=$U/audit.log" \
	"$U/mnt" 2> "$WORK/user-daemon.log" &
upid=$!
for _ in $(seq 1 100); do
	as_nobody mountpoint -q "$U/mnt" && break
	kill -0 "$upid" 2> /dev/null || break
	sleep 0.05
done
# without allow_other only its owner gets in: the checks look as nobody
check "nobody mounted it" as_nobody mountpoint -q "$U/mnt"
check "the root directory is nobody's" test "$(as_nobody stat -c %U:%G "$U/mnt")" = nobody:nogroup
# no core dump of keys or resident bytes: RLIMIT_CORE 0, and (outside sanitizer builds, whose
# leak check attaches at exit) non-dumpable, so even its own user cannot ptrace it or read its
# memory: the kernel then gives its /proc entries to root
dpid=$(pgrep -u nobody -n -f "$NBIN/vram-residency -f" || echo none)
check "the daemon's core limit is 0" grep -Eq '^Max core file size +0 +0 ' "/proc/$dpid/limits"
if nm "$BIN/vram-residency" 2> /dev/null | grep -q '__asan_init\|__tsan_init'; then
	echo "(a sanitizer build: the daemon stays dumpable, not checked)"
else
	check "the daemon is not dumpable: its /proc entries are root's" \
		test "$(stat -c %u "/proc/$dpid/mem")" = 0
	refuse "nobody cannot read its memory" "Permission denied" as_nobody \
		dd if="/proc/$dpid/mem" bs=1 count=1 skip=4096 of=/dev/null
fi
head -c 300000 /dev/urandom > "$WORK/f.bin"
chmod 644 "$WORK/f.bin"
check "nobody loads a file into it" as_nobody cp "$WORK/f.bin" "$U/mnt/f.bin"
check "and a directory" as_nobody mkdir "$U/mnt/llama"
# the resident bytes are left out of any dump: the daemon maps a chunk only to export it (it
# reads and writes the others through their descriptors), and that mapping is MADV_DONTDUMP
check "nobody maps the file through the socket" as_nobody "$NBIN/vram-map" "$U/mnt/f.bin"
dd_flags=$(awk '/vram-mock-chunk/ { m = 1; next } m && /^VmFlags:/ { print ($0 ~ / dd/) ? "dd" : "dumped"; m = 0 }' "/proc/$dpid/smaps" | sort | uniq -c)
check "its exported chunk is mapped in the daemon ($dd_flags)" grep -q dd <<< "$dd_flags"
check "and none is dumpable" bash -c "! grep -q dumped <<< '$dd_flags'"
check "sealed" test "$(as_nobody cat "$U/mnt/f.bin.seal" | grep '"fsverity"' | cut -d'"' -f4)" = \
	"$(fsverity digest "$WORK/f.bin" | cut -d' ' -f1)"
check "verify passes" bash -c "as() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- \"\$@\"; }; as cat '$U/mnt/verify' | grep -q '^OK f.bin '"
check "the file is nobody's" test "$(as_nobody stat -c %U "$U/mnt/f.bin")" = nobody
refuse "root, without allow_other, is kept out (as FUSE does)" "Permission denied" ls "$U/mnt"
check "nobody unmounts it" as_nobody fusermount3 -u "$U/mnt"
wait "$upid"
rc=$?
upid=
check "the daemon exits 0" test "$rc" = 0
check "its audit log is nobody's" test "$(stat -c %U "$U/audit.log")" = nobody
finish
