#!/bin/bash
# test_deep.sh - a directory chain as long as seal paths allow: deeper is refused with
# ENAMETOOLONG, the bottom file seals and verifies, and a rename that would leave a seal's path
# too long is refused before anything moves.
. "$(dirname "$0")/lib.sh"

check "mount" mount_vr "capacity=16M"
echo bottom > "$WORK/f"
long=$(head -c 200 /dev/zero | tr '\0' d)
(
	set -P
	cd "$MNT" || exit 1
	while mkdir "$long" 2> "$WORK/mkdir.err" && cd "$long"; do :; done
	cp "$WORK/f" f 2> "$WORK/cp.err"
	pwd -P > "$WORK/bottom"
)
check "stopped by ENAMETOOLONG" grep -q "File name too long" "$WORK/mkdir.err"
rel=$(sed "s|^$MNT/||" "$WORK/bottom")
check "chain reaches the seal path limit" test "${#rel}" -gt 3800
check "daemon alive" kill -0 "$DAEMON_PID"
check "bottom file sealed" test "$(cat "$MNT/$rel/f.seal" | grep -c '"path"')" = 1
check "verify at the root walks it all" bash -c "cat '$MNT/verify' | grep -q '^OK $long/'"
x=$(head -c 150 /dev/zero | tr '\0' x)
mkdir "$MNT/$x"
refuse "rename that would overflow a seal path" "File name too long" mv "$MNT/$long" "$MNT/$x/$long"
check "nothing moved" test -d "$MNT/$long"
check "rm -r of the chain" bash -c "rm -rf '$MNT/$long' 2>/dev/null; find '$MNT/$long' -depth -type d -exec rmdir {} + 2>/dev/null; ! test -e '$MNT/$long'"
check "all freed" test "$(json_field "$MNT/status" used_bytes)" = 0
check "unmount, daemon exits 0" unmount_vr
finish
