#!/bin/bash
# test_meta_limit.sh - host memory outside the device's capacity (issue 22, item 11), as nobody
# on an allow_other mount: folders, empty files and user.* attributes count against the user's
# meta_limit (EDQUOT beyond, "Disk quota exceeded"), are given back when removed, and neither
# root nor another user is held to nobody's count.
. "$(dirname "$0")/lib.sh"
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"
mkdir -m 700 "$WORK/n" && chown nobody "$WORK/n" # nobody's own notes

check "mount with allow_other,meta_limit=1M" mount_vr "capacity=64M,allow_other,meta_limit=1M"
check "a shared folder" mkdir -m 1777 "$MNT/shared"
# the reviewer's shape: folders, each with 32 attributes of 4 KiB
value=$(head -c 3000 /dev/zero | tr '\0' v)
nob bash -c "
	for d in \$(seq 1 300); do
		mkdir '$MNT/shared/d'\$d 2> '$WORK/n/err' || exit 0
		for a in \$(seq 1 32); do
			setfattr -n user.a\$a -v '$value' '$MNT/shared/d'\$d 2> '$WORK/n/err' || exit 0
		done
	done" > /dev/null
check "nobody is stopped by the limit" grep -q "Disk quota exceeded" "$WORK/n/err"
made=$(find "$MNT/shared" -mindepth 1 -maxdepth 1 -type d | wc -l)
check "after about 1 MiB of folders and attributes ($made folders)" test "$made" -ge 5 -a "$made" -le 12
check "status says the limit" grep -q '"limit_per_user":[[:space:]]*1048576' "$MNT/status"
used=$(grep -A2 '"metadata"' "$MNT/status" | sed -n 's/.*"bytes":[[:space:]]*\([0-9]*\).*/\1/p')
check "and counts about 1 MiB ($used bytes)" test "${used:-0}" -ge 900000 -a "${used:-0}" -le 1200000
refuse "empty files are refused too" "Disk quota exceeded" nob bash -c "for i in 1 2 3 4; do touch '$MNT/shared/e'\$i || exit 1; done"
check "the refusal is logged" grep -q "refused: Disk quota exceeded" "$WORK/daemon.log"
check "root is not held to it" bash -c "mkdir '$MNT/shared/root1' && touch '$MNT/shared/root1/f' && setfattr -n user.x -v '$value' '$MNT/shared/root1'"
check "nor is another user" setpriv --reuid=12345 --regid=12345 --clear-groups -- mkdir "$MNT/shared/other"
check "nobody removes some" nob rm -rf "$MNT/shared/d1" "$MNT/shared/d2"
check "and may make entries again" nob bash -c "mkdir '$MNT/shared/again' && touch '$MNT/shared/again/f'"
# the count is what the memory is: sealed empty files (each holds a seal) until EDQUOT
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
check "a second folder" mkdir -m 1777 "$MNT/files"
before=$(rss)
setpriv --reuid=23456 --regid=23456 --clear-groups -- bash -c "for i in \$(seq 1 1000); do : > '$MNT/files/e'\$i 2> /dev/null || exit 0; done"
made=$(find "$MNT/files" -type f | wc -l)
grew=$((($(rss) - before) / 1024))
check "empty files stop at the limit ($made made)" test "$made" -ge 60 -a "$made" -le 120
check "and the daemon grew by about the limit ($grew KiB, limit 1024)" test "$grew" -le 4096
refuse "meta_limit=0 is refused" "meta_limit=0: use a size" "$BIN/vram-residency" -f -o backend=mock,secret="$SECRET",meta_limit=0 "$WORK/nomnt"
refuse "a bad meta_limit is refused" "meta_limit=lots: use a size" "$BIN/vram-residency" -f -o backend=mock,secret="$SECRET",meta_limit=lots "$WORK/nomnt"
finish
