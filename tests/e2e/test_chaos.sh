#!/bin/bash
# test_chaos.sh - a seeded random sequence of operations and names: the daemon must never crash,
# every check it reports must pass, and it must still unmount with exit 0.
. "$(dirname "$0")/lib.sh"

seed=${VR_SEED:-$RANDOM}
echo "seed $seed (rerun with VR_SEED=$seed)"
RANDOM=$seed
head -c 300000 /dev/urandom > "$WORK/a"
head -c 5000 /dev/urandom > "$WORK/b"
: > "$WORK/c"
check "mount" mount_vr "capacity=16M"

name() {
	case $((RANDOM % 8)) in
	0) printf 'n%d' $((RANDOM % 6)) ;;
	1) printf 'd%d/n%d' $((RANDOM % 3)) $((RANDOM % 4)) ;;
	2) printf 'd%d/e%d/n%d' $((RANDOM % 3)) $((RANDOM % 2)) $((RANDOM % 3)) ;;
	3) printf 'x\\%03o%d' $((RANDOM % 256)) $((RANDOM % 3)) ;;
	4) printf 'verify' ;;
	5) printf 'n%d.seal' $((RANDOM % 6)) ;;
	6) printf '%*s' $((RANDOM % 300 + 1)) | tr ' ' y ;;
	7) printf 'd%d' $((RANDOM % 3)) ;;
	esac
}
for _ in $(seq 1 400); do
	p=$MNT/$(printf "$(name)")
	q=$MNT/$(printf "$(name)")
	case $((RANDOM % 14)) in
	0 | 1) cp "$WORK/$(printf 'abc' | cut -c$((RANDOM % 3 + 1)))" "$p" ;;
	2) mkdir -p "$p" ;;
	3) rm -f "$p" ;;
	4) rmdir "$p" ;;
	5) mv "$p" "$q" ;;
	6) cat "$p" > /dev/null ;;
	7) cat "$MNT/verify" > /dev/null ;;
	8) echo more >> "$p" ;;
	9) truncate -s $((RANDOM % 5000)) "$p" ;;
	10) ls -laR "$MNT" > /dev/null ;;
	11) dd if="$WORK/a" of="$p" bs=4096 seek=$((RANDOM % 8)) count=2 conv=notrunc status=none ;;
	12) chmod $((RANDOM % 8))44 "$p" ;;
	13) cat "$p.seal" > /dev/null ;;
	esac 2> /dev/null
	if ! kill -0 "$DAEMON_PID" 2> /dev/null; then
		break
	fi
done
check "daemon alive after 400 random operations" kill -0 "$DAEMON_PID"
check "verify reports no failure" bash -c "! grep -q '^FAILED' <(cat '$MNT/verify' 2>/dev/null)"
# a truncate or a dd past the end of a new file reserves bytes it never writes: such a file is
# INCOMPLETE, and verify then fails; it fails for nothing else
cat "$MNT/verify" > "$WORK/v.out" 2> /dev/null
vrc=$?
if grep -q '^INCOMPLETE ' "$WORK/v.out"; then
	check "verify fails while a file is incomplete" test "$vrc" -ne 0
else
	check "verify read succeeds" test "$vrc" -eq 0
fi
# every seal describes exactly the bytes the file holds (fsverity digest of a copy read back)
bad_seals=0
while IFS= read -r -d '' f; do
	[ -e "$f.seal" ] || continue
	cp "$f" "$WORK/copy" 2> /dev/null || continue
	[ "$(json_field "$f.seal" fsverity)" = "$(fsverity digest "$WORK/copy" | cut -d' ' -f1)" ] ||
		bad_seals=$((bad_seals + 1))
done < <(find "$MNT" -type f -print0)
check "every seal matches its file's bytes" test "$bad_seals" = 0
check "status parses" grep -q '"quarantined":[[:space:]]*0' "$MNT/status"
used=$(json_field "$MNT/status" used_bytes)
held=$(find "$MNT" -type f ! -name '*.seal' ! -name verify ! -name status -printf '%b\n' | awk '{s += $1 * 512} END {print s + 0}')
check "used_bytes = device memory the files hold" test "$used" = "$held"
check "every listed entry is reachable" bash -c "find '$MNT' > /dev/null"
check "unmount, daemon exits 0" unmount_vr
finish
