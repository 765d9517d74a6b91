#!/bin/bash
# test_journey.sh - the whole journey with standard tools: load, seal, inspect, read back, check offline.
. "$(dirname "$0")/lib.sh"

SRC=$WORK/src
mkdir -p "$SRC/llama/deep/er"
head -c 3000000 /dev/urandom > "$SRC/model.gguf"
head -c 1048576 /dev/urandom > "$SRC/llama/weights.bin"
head -c 4097 /dev/urandom > "$SRC/llama/deep/er/tok.json"
: > "$SRC/llama/empty"
echo hello > "$SRC/small.txt"

check "mount" mount_vr capacity=64M
check "cp" cp "$SRC/model.gguf" "$MNT/"
check "cp -r" cp -r "$SRC/llama" "$MNT/"
check "cp -p" cp -p "$SRC/small.txt" "$MNT/small.txt"
check "rsync" rsync -a "$SRC/llama/" "$MNT/rsynced/"
(cd "$SRC" && tar cf "$WORK/t.tar" llama)
mkdir -p "$MNT/untarred"
check "tar -x" tar xf "$WORK/t.tar" -C "$MNT/untarred"
check "dd" dd if="$SRC/model.gguf" of="$MNT/dd.bin" bs=64k status=none
check "install -m" install -m 0640 "$SRC/small.txt" "$MNT/installed.txt"
check "mode from install" test "$(stat -c %a "$MNT/installed.txt")" = 640
check "mtime kept by cp -p" test "$(stat -c %Y "$MNT/small.txt")" = "$(stat -c %Y "$SRC/small.txt")"

# every loaded file is sealed; seal = sha256sum and fsverity digest of the source
for f in model.gguf llama/weights.bin llama/deep/er/tok.json llama/empty small.txt \
	rsynced/weights.bin untarred/llama/deep/er/tok.json dd.bin installed.txt; do
	src=$SRC/${f#rsynced/}
	case $f in
	rsynced/*) src=$SRC/llama/${f#rsynced/} ;;
	untarred/*) src=$SRC/${f#untarred/} ;;
	dd.bin) src=$SRC/model.gguf ;;
	installed.txt) src=$SRC/small.txt ;;
	esac
	check "$f sealed" test -f "$MNT/$f.seal"
	check "$f read back (cmp)" cmp -s "$src" "$MNT/$f"
	check "$f seal path" test "$(json_field "$MNT/$f.seal" path)" = "$f"
	check "$f seal size" test "$(json_field "$MNT/$f.seal" size)" = "$(stat -c %s "$src")"
	check "$f seal sha256 = sha256sum" \
		test "$(json_field "$MNT/$f.seal" sha256)" = "$(sha256sum < "$src" | cut -d' ' -f1)"
	check "$f seal fsverity = fsverity digest" \
		test "$(json_field "$MNT/$f.seal" fsverity)" = "$(fsverity digest "$src" | cut -d' ' -f1)"
	cp "$MNT/$f.seal" "$WORK/copy.seal"
	check "$f vram-seal verify offline" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/copy.seal" "$src" > /dev/null
done
# the offline check refuses what does not match
cp "$MNT/model.gguf.seal" "$WORK/m.seal"
(umask 077 && head -c 32 /dev/urandom > "$WORK/other-secret")
refuse "offline: another secret" "signature does not match" "$BIN/vram-seal" verify --secret "$WORK/other-secret" "$WORK/m.seal"
cp "$SRC/model.gguf" "$WORK/changed"
printf 'Z' | dd of="$WORK/changed" bs=1 seek=1000 conv=notrunc status=none
refuse "offline: a changed byte" "sha256 differs" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/m.seal" "$WORK/changed"
refuse "offline: another size" "size differs" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/m.seal" "$SRC/small.txt"
sed 's/"path":[^,]*/"path":\t"other.gguf"/' "$WORK/m.seal" > "$WORK/moved.seal"
refuse "offline: an edited path" "signature does not match" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/moved.seal"
printf '{"version": 1}' > "$WORK/bad.seal"
refuse "offline: a malformed seal" "malformed seal" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/bad.seal"
chmod 644 "$WORK/other-secret"
refuse "offline: a loose secret" "chmod 600" "$BIN/vram-seal" verify --secret "$WORK/other-secret" "$WORK/m.seal"
check "sha256sum of mounted file" test "$(sha256sum < "$MNT/model.gguf")" = "$(sha256sum < "$SRC/model.gguf")"

# ls, stat, du, df, find, status
check "ls hides verify, status, seals" bash -c "! ls -a '$MNT' | grep -qE '^(status|verify|.*\\.seal)\$'"
check "ls shows the files" bash -c "ls '$MNT' | grep -qx model.gguf"
check "status, verify and the seal reachable by name" \
	test -e "$MNT/status" -a -e "$MNT/verify" -a -e "$MNT/model.gguf.seal"
check "ls dir verify" test -e "$MNT/llama/verify"
check "no status below root" test ! -e "$MNT/llama/status"
check "stat size" test "$(stat -c %s "$MNT/model.gguf")" = 3000000
check "st_blksize 1 MiB" test "$(stat -c %o "$MNT/model.gguf")" = 1048576
check "du counts device memory (whole 64 KiB grains)" test "$(du -k "$MNT/model.gguf" | cut -f1)" = $(($(held 3000000) / 1024))
check "df total = capacity" test "$(df -B1 --output=size "$MNT" | tail -1 | tr -d ' ')" = 67108864
used_status=$(json_field "$MNT/status" used_bytes)
free_df=$(df -B1 --output=avail "$MNT" | tail -1 | tr -d ' ')
check "df free + used = total" test $((free_df + used_status)) = 67108864
check "find lists no generated entry" test "$(find "$MNT" -name '*.seal' -o -name verify -o -name status | wc -l)" = 0
check "every file found has its seal" \
	test "$(find "$MNT" -type f | while read -r f; do test -e "$f.seal" && echo y; done | wc -l)" = 13
check "status backend mock" grep -q '"backend":[[:space:]]*"mock"' "$MNT/status"
check "status counts files" test "$(json_field "$MNT/status" files)" = 13
check "status counts sealed" test "$(json_field "$MNT/status" sealed)" = 13
check "status device total" grep -q '"total_bytes":[[:space:]]*67108864' "$MNT/status"

# verify: one OK line per file below, paths from the mount root
check "cat verify" cat "$MNT/verify" > "$WORK/verify.out"
check "verify lists 13 OK" test "$(grep -c '^OK ' "$WORK/verify.out")" = 13
check "verify line format" grep -qx "OK model.gguf $(fsverity digest "$SRC/model.gguf" | cut -d' ' -f1)" "$WORK/verify.out"
check "dir verify scoped" test "$(grep -c '^OK llama/' "$MNT/llama/verify")" = 3
check "verify_on_open read audited" audit_has seal_verified model.gguf

# metadata the seal does not cover may change
check "chmod sealed" chmod 600 "$MNT/model.gguf"
check "touch sealed" touch -d 2020-01-01 "$MNT/model.gguf"
check "chown sealed" chown 1:1 "$MNT/model.gguf"
check "bytes untouched after metadata" cmp -s "$SRC/model.gguf" "$MNT/model.gguf"

check "audit sealed" audit_has vram_sealed llama/deep/er/tok.json
check "audit started" grep -q '"event":"daemon_started"' "$AUDIT"
check "unmount, daemon exits 0" unmount_vr
check "audit stopped" grep -q '"event":"daemon_stopped"' "$AUDIT"
check "audit deallocated" audit_has vram_deallocated model.gguf
secret_hex=$(od -An -tx1 "$SECRET" | tr -d ' \n')
check "no secret bytes in the logs" bash -c "! grep -qi '$secret_hex' '$AUDIT' '$WORK/daemon.log'"
check "no secret prefix in the logs" bash -c "! grep -qi '${secret_hex:0:16}' '$AUDIT' '$WORK/daemon.log'"
finish
