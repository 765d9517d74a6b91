#!/bin/bash
# test_download.sh - a download tool killed mid-transfer (aria2c, which preallocates) leaves an
# INCOMPLETE file, never a seal; resuming it (aria2c -c) completes and seals the right bytes.
# The server is tests/e2e/range_server.py on 127.0.0.1 only.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

mkdir -p "$WORK/srv"
head -c $((6 << 20)) /dev/urandom > "$WORK/srv/model.bin"
want=$(fsverity digest "$WORK/srv/model.bin" | cut -d' ' -f1)
"$PY" "$(dirname "$0")/range_server.py" "$WORK/srv" "$WORK/port" &
srv=$!
trap 'kill $srv 2> /dev/null; cleanup' EXIT
for _ in $(seq 100); do
	[ -s "$WORK/port" ] && break
	sleep 0.05
done
url=http://127.0.0.1:$(cat "$WORK/port")/model.bin
check "mount" mount_vr "capacity=64M"

# download_killed NAME SIGNAL: starts a throttled aria2c into NAME, kills it with SIGNAL once
# part of the file has arrived
download_killed() {
	env --default-signal=INT aria2c -q --max-download-limit=2M -d "$MNT" -o "$1" "$url" &
	local pid=$!
	sleep 1.2
	kill -s "$2" "$pid"
	timeout 10 tail --pid="$pid" -f /dev/null
	wait "$pid" 2> /dev/null
}

for sig in KILL INT; do
	f=aria-$sig.bin
	download_killed "$f" "$sig"
	check "$f: no seal after SIG$sig" test ! -e "$MNT/$f.seal"
	check "$f: verify says INCOMPLETE" bash -c "cat '$MNT/verify' 2>/dev/null | grep -q '^INCOMPLETE $f '"
	check "$f: aria2c -c resumes it" aria2c -q -c -d "$MNT" -o "$f" "$url"
	check "$f: sealed as the published file" test "$(json_field "$MNT/$f.seal" fsverity)" = "$want"
	check "$f: bytes right" cmp -s "$MNT/$f" "$WORK/srv/model.bin"
done
check "verify passes once both are complete" cat "$MNT/verify"
check "unmount, daemon exits 0" unmount_vr
finish
