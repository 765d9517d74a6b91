#!/bin/bash
# gpu_cuda.sh - the journey on the CUDA backend: load, seal, verify on the GPU, read back, check
# offline, tamper through the device, unmount. Skips (77) where no GPU passes the policy.
export VR_E2E_BACKEND=cuda
. "$(dirname "$0")/lib.sh"

SIZE_MB=${VR_GPU_E2E_MB:-1024}
if ! "$BIN/vram-residency" -f -o backend=cuda,audit=$AUDIT,secret=$SECRET "$MNT" > "$WORK/probe.log" 2>&1 &
then :; fi
probe=$!
for _ in $(seq 1 100); do
	mountpoint -q "$MNT" && break
	kill -0 "$probe" 2> /dev/null || break
	sleep 0.1
done
if ! mountpoint -q "$MNT"; then
	wait "$probe"
	echo "SKIP: no usable GPU: $(tail -1 "$WORK/probe.log")"
	exit 77
fi
fusermount3 -u "$MNT"
wait "$probe"

head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/model.bin"
head -c 4097 /dev/urandom > "$WORK/small.bin"
: > "$WORK/empty.bin"
check "mount cuda" mount_vr
check "status says cuda" grep -q '"backend":[[:space:]]*"cuda"' "$MNT/status"
mkdir -p "$MNT/llama"
check "cp model" cp "$WORK/model.bin" "$MNT/llama/model.bin"
check "cp small" cp "$WORK/small.bin" "$MNT/llama/small.bin"
check "cp empty" cp "$WORK/empty.bin" "$MNT/llama/empty.bin"
for f in model small empty; do
	check "$f fsverity = fsverity digest" \
		test "$(json_field "$MNT/llama/$f.bin.seal" fsverity)" = "$(fsverity digest "$WORK/$f.bin" | cut -d' ' -f1)"
	check "$f sha256 = sha256sum" \
		test "$(json_field "$MNT/llama/$f.bin.seal" sha256)" = "$(sha256sum < "$WORK/$f.bin" | cut -d' ' -f1)"
	check "$f device is a GPU" grep -q '"uuid":[[:space:]]*"GPU-' "$MNT/llama/$f.bin.seal"
	check "$f read back" cmp -s "$WORK/$f.bin" "$MNT/llama/$f.bin"
	cp "$MNT/llama/$f.bin.seal" "$WORK/$f.seal"
	check "$f offline check" "$BIN/vram-seal" verify --secret "$SECRET" "$WORK/$f.seal" "$WORK/$f.bin" > /dev/null
done
check "verify on the GPU" bash -c "cat '$MNT/verify' | grep -c '^OK ' | grep -qx 3"
# the plain SHA-256 is taken as cp writes (no read-back over the bus); writes out of order and
# overwrites fall back to reading back, and both give sha256sum's value
check "cp's load hashed as written" grep -q "sealed llama/model.bin ([0-9]* bytes): tree .* s, sha256 hashed as written" "$WORK/daemon.log"
t0=$(date +%s.%N)
cp "$WORK/model.bin" "$MNT/timed.bin"
t1=$(date +%s.%N)
echo "cp of $SIZE_MB MiB into the GPU mount: $(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" 'BEGIN {printf "%.3f s, %.2f GB/s", b - a, m * 1048576 / (b - a) / 1e9}')"
grep "sealed timed.bin" "$WORK/daemon.log" | tail -1
rm -f "$MNT/timed.bin"
# one open: the tail first, junk over the head, then the right head (perl is in every Debian)
perl -e 'open(my $in, "<:raw", $ARGV[0]) or die; local $/; my $d = <$in>;
	sysopen(my $o, $ARGV[1], 0101, 0644) or die "$!";   # O_WRONLY|O_CREAT
	sysseek($o, 2048, 0); syswrite($o, substr($d, 2048)) or die;
	sysseek($o, 0, 0); syswrite($o, "x" x 2048) or die;
	sysseek($o, 0, 0); syswrite($o, substr($d, 0, 2048)) or die;
	close($o) or die "$!"' "$WORK/small.bin" "$MNT/llama/ooo.bin"
check "out-of-order writes: sha256 = sha256sum" \
	test "$(json_field "$MNT/llama/ooo.bin.seal" sha256)" = "$(sha256sum < "$WORK/small.bin" | cut -d' ' -f1)"
check "and read back for it" grep -q "sealed llama/ooo.bin .*sha256 read back" "$WORK/daemon.log"
rm -f "$MNT/llama/ooo.bin"
# the socket: another process maps the sealed files read-only straight from VRAM (no copy) and
# digests what it mapped; a store through the mapping is refused; map latency and import speed
for f in model small empty; do
	check "$f mapped from VRAM: digest = fsverity digest" test \
		"$("$BIN/vram-map" --verify "$MNT/llama/$f.bin" | cut -d' ' -f1)" = "$(fsverity digest "$WORK/$f.bin" | cut -d' ' -f1)"
done
"$BIN/vram-map" --time "$MNT/llama/model.bin" 2>&1 > /dev/null | sed 's/^/map of the sealed file, /'
"$BIN/vram-map" --time --verify "$MNT/llama/model.bin" 2>&1 > /dev/null | sed 's/^/map with verify, /'
if [ -n "${VRAM_CLIENT_CUDA_LIB:-}" ]; then
	# the test double's device memory is host memory: a host store must fault
	"$BIN/vr-map-write" "$MNT/llama/small.bin" > "$WORK/write.out" 2>&1
	check "a store through the read-only mapping faults" test $? = 139
else
	check "a kernel's store through the read-only mapping is refused" \
		"$BIN/vr-gpu-write-ro" "$MNT/llama/small.bin"
fi
check "and nothing changed" test "$("$BIN/vram-map" --verify "$MNT/llama/small.bin" | cut -d' ' -f1)" = "$(fsverity digest "$WORK/small.bin" | cut -d' ' -f1)"
"$BIN/vram-map" --hold 3 "$MNT/llama/small.bin" > /dev/null &
holder=$!
sleep 1
refuse "a mapped file cannot be removed" "Device or resource busy" rm "$MNT/llama/small.bin"
wait "$holder"
t0=$(date +%s.%N)
check "import (vram-load) into VRAM" "$BIN/vram-load" "$WORK/model.bin" "$MNT/imported.bin"
t1=$(date +%s.%N)
echo "import of $SIZE_MB MiB into the GPU mount: $(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" 'BEGIN {printf "%.3f s, %.2f GB/s", b - a, m * 1048576 / (b - a) / 1e9}')"
check "imported seal = cp's" test "$(json_field "$MNT/imported.bin.seal" fsverity)" = "$(json_field "$MNT/llama/model.bin.seal" fsverity)"
check "imported sha256 = cp's" test "$(json_field "$MNT/imported.bin.seal" sha256)" = "$(json_field "$MNT/llama/model.bin.seal" sha256)"
# read into pinned staging and hashed there as it came (no read-back over the bus)
check "the import hashed as read" grep -q "sealed imported.bin ([0-9]* bytes): tree .* s, sha256 hashed as written" "$WORK/daemon.log"
rm -f "$MNT/imported.bin"
# a directory over several connections at once: the same seals as cp -r's, each file's
# device memory taken before its bytes move
mkdir -p "$WORK/tree/sub"
for i in 1 2 3 4 5; do head -c $((i * 1000003)) /dev/urandom > "$WORK/tree/f$i"; done
head -c 4097 /dev/urandom > "$WORK/tree/sub/small"
check "vram-load -j 4 of a directory into VRAM" "$BIN/vram-load" -j 4 "$WORK/tree" "$MNT/tree"
check "cp -r of it" cp -r "$WORK/tree" "$MNT/tree-cp"
for f in f1 f2 f3 f4 f5 sub/small; do
	check "$f: the same seal digest as cp -r's" \
		test "$(json_field "$MNT/tree/$f.seal" fsverity)" = "$(json_field "$MNT/tree-cp/$f.seal" fsverity)"
done
check "the directory verifies on the device" test "$(grep -c '^OK ' "$MNT/tree/verify")" = 6
# --direct: read into the pinned slots past the page cache where the source's filesystem allows
check "vram-load --direct of it" "$BIN/vram-load" -j 2 --direct "$WORK/tree" "$MNT/tree-direct"
for f in f1 f2 f3 f4 f5 sub/small; do
	check "$f: --direct, the same seal as cp -r's" \
		test "$(json_field "$MNT/tree-direct/$f.seal" sha256)" = "$(json_field "$MNT/tree-cp/$f.seal" sha256)" -a \
		"$(json_field "$MNT/tree-direct/$f.seal" fsverity)" = "$(json_field "$MNT/tree-cp/$f.seal" fsverity)"
done
rm -rf "$MNT/tree" "$MNT/tree-cp" "$MNT/tree-direct"
# the files of an import removed as they load (a staged import whose file went before its
# staging opened crashed the daemon): each import fails, the daemon lives, nothing is left
used0=$(json_field "$MNT/status" used_bytes)
for round in 1 2 3 4; do
	"$BIN/vram-load" -j 4 "$WORK/tree" "$MNT/rm$round" > /dev/null 2>&1 &
	p=$!
	[ $round -gt 2 ] && { sleep 0.05; kill -9 $p 2> /dev/null; }
	for _ in $(seq 1 20); do
		rm -f "$MNT/rm$round"/f* 2> /dev/null
		sleep 0.01
	done
	wait $p 2> /dev/null
	check "round $round: the daemon lives through imports removed as they load" kill -0 "$DAEMON_PID"
	rm -rf "$MNT/rm$round"
done
for _ in $(seq 1 100); do
	[ "$(json_field "$MNT/status" used_bytes)" = "$used0" ] && break
	sleep 0.1
done
check "every removed import's memory given back" test "$(json_field "$MNT/status" used_bytes)" = "$used0"
# a checksums.blake3 (b3sum's) beside the files: the BLAKE3 their seals record is computed on
# the device (the backend's blake3 op) and must be b3sum's
if command -v b3sum > /dev/null; then
	mkdir -p "$WORK/b3"
	head -c $((2 * 1048576 + 1025)) /dev/urandom > "$WORK/b3/a.bin"
	head -c 1024 /dev/urandom > "$WORK/b3/b.bin"
	(cd "$WORK/b3" && b3sum a.bin b.bin > checksums.blake3)
	check "cp -r of a tree with a checksums.blake3" cp -r "$WORK/b3" "$MNT/b3"
	for f in a b; do
		check "$f.bin: its seal records b3sum's BLAKE3" grep -q \
			"\"blake3\":[[:space:]]*\"$(b3sum --no-names "$WORK/b3/$f.bin")\"" "$MNT/b3/$f.bin.seal"
	done
	check "the tree verifies (BLAKE3 on the device)" bash -c "cat '$MNT/b3/verify' > /dev/null"
	rm -rf "$MNT/b3"
fi
# a directory larger than the free device memory (sparse sources: nothing is read)
free=$(df -B1 --output=avail "$MNT" | tail -1 | tr -d ' ')
mkdir -p "$WORK/huge"
truncate -s $((free / 2 + 1048576)) "$WORK/huge/a" "$WORK/huge/b"
refuse "a directory that does not fit is refused up front" "nothing loaded" \
	"$BIN/vram-load" "$WORK/huge" "$MNT/huge"
check "and leaves nothing" test ! -e "$MNT/huge"
rm -rf "$WORK/huge"
refuse "sealed is immutable" "Operation not permitted" bash -c "echo x >> '$MNT/llama/model.bin'"
# eviction: the model to host memory over the bus, its VRAM freed, and back, checked on the GPU
used=$(json_field "$MNT/status" used_bytes)
check "evict the model from VRAM" "$BIN/vram-evict" "$MNT/llama/model.bin"
check "its VRAM is freed" test "$(json_field "$MNT/status" used_bytes)" -lt "$used"
check "verify checks it in host memory" grep -q "^EVICTED llama/model.bin $(fsverity digest "$WORK/model.bin" | cut -d' ' -f1) " "$MNT/verify"
check "a map restores it first" test "$("$BIN/vram-map" "$MNT/llama/model.bin" | cut -d' ' -f1)" = "$(fsverity digest "$WORK/model.bin" | cut -d' ' -f1)"
check "restored, checked on the GPU" grep -q "llama/model.bin restored: .*checked on the device against its seal" "$WORK/daemon.log"
"$BIN/vram-evict" "$MNT/llama/model.bin" > /dev/null
check "an open restores it whole" cmp -s "$WORK/model.bin" "$MNT/llama/model.bin"
grep -h "llama/model.bin \(evicted\|restored\):" "$WORK/daemon.log" | sed 's/^vram-residency: notice: //'
used=$(json_field "$MNT/status" used_bytes)
check "rm frees VRAM" rm "$MNT/llama/model.bin"
check "used_bytes drops" test "$(json_field "$MNT/status" used_bytes)" -lt "$used"
check "unmount, daemon exits 0" unmount_vr

# the same cp at line rate: sha256=off seals with the tree digest alone (what the in-line
# hash costs shows as the difference)
check "mount cuda with sha256=off" mount_vr "sha256=off"
t0=$(date +%s.%N)
cp "$WORK/model.bin" "$MNT/timed.bin"
t1=$(date +%s.%N)
echo "cp of $SIZE_MB MiB into the GPU mount, sha256=off: $(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" 'BEGIN {printf "%.3f s, %.2f GB/s", b - a, m * 1048576 / (b - a) / 1e9}')"
check "sealed without sha256" grep -q '"sha256":[[:space:]]*null' "$MNT/timed.bin.seal"
check "its digest is fsverity's" test "$(json_field "$MNT/timed.bin.seal" fsverity)" = "$(fsverity digest "$WORK/model.bin" | cut -d' ' -f1)"
check "unmount, daemon exits 0" unmount_vr

# device_digest=blake3 with sha256=off: nothing hashed on the host; the seal's BLAKE3 and every
# verify come from the device's BLAKE3 (the kernel on a card), and must be b3sum's
check "mount cuda with device_digest=blake3" mount_vr "sha256=off,device_digest=blake3"
t0=$(date +%s.%N)
cp "$WORK/model.bin" "$MNT/b3.bin"
t1=$(date +%s.%N)
echo "cp of $SIZE_MB MiB into the GPU mount, sha256=off, device_digest=blake3: $(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" 'BEGIN {printf "%.3f s, %.2f GB/s", b - a, m * 1048576 / (b - a) / 1e9}')"
want_b3=$(b3sum --no-names "$WORK/model.bin")
check "its seal's BLAKE3 is b3sum's" test "$(json_field "$MNT/b3.bin.seal" blake3)" = "$want_b3"
t0=$(date +%s.%N)
check "verify recomputes the BLAKE3 on the device" grep -qxF "OK b3.bin blake3:$want_b3" "$MNT/verify"
t1=$(date +%s.%N)
echo "verify of $SIZE_MB MiB by BLAKE3 on the device: $(awk -v a="$t0" -v b="$t1" -v m="$SIZE_MB" 'BEGIN {printf "%.3f s, %.2f GB/s", b - a, m * 1048576 / (b - a) / 1e9}')"
check "unmount, daemon exits 0" unmount_vr

# a signed model (the OpenSSF reference vector): its model.sig is read back from device memory
# and checked at load; a changed weight is refused; verify checks both on the device
DATA=$(cd "$(dirname "$0")/../data/oms" && pwd)
cp -r "$DATA/v1.1.0-elliptic-key" "$WORK/signed"
chmod -R u+w "$WORK/signed"
check "mount cuda with trust=" mount_vr "trust=$DATA/signing-key-pub.pem"
check "cp -r a signed model" cp -r "$WORK/signed" "$MNT/signed"
check "verify of a signed model on the GPU" bash -c "cat '$MNT/signed/verify' | grep -c '^OK ' | grep -qx 4"
check "checked against the signature" grep -q '"source":[[:space:]]*"signed/model.sig"' "$MNT/signed/signme-1.seal"
printf 'X' | dd of="$WORK/signed/signme-2" bs=1 seek=2 conv=notrunc status=none
refuse "a changed weight is refused" "Input/output error" cp "$WORK/signed/signme-2" "$MNT/signed/signme-2"
check "verify names it" bash -c "cat '$MNT/signed/verify' | grep -q '^FAILED signed/signme-2 sha256 differs from signed/model.sig'"
check "unmount, daemon exits 0" unmount_vr

# --- a restart under vram-keeper keeps what is resident: CUDA descriptors held across it ---
if [ -x "$BIN/vram-keeper" ]; then
	"$BIN/vram-keeper" -- "$BIN/vram-residency" -f -o "backend=cuda,secret=$SECRET,audit=$AUDIT" \
		"$MNT" 2>> "$WORK/keeper.log" &
	keeper=$!
	served() {
		for _ in $(seq 1 200); do
			p=$(pgrep -P "$keeper" -x vram-residency)
			[ -n "$p" ] && [ "$p" != "${1:-}" ] && cat "$MNT/status" > /dev/null 2>&1 &&
				return 0
			sleep 0.05
		done
		tail -20 "$WORK/keeper.log" >&2
		return 1
	}
	check "keeper: the daemon serves" served
	mkdir -p "$MNT/llama"
	cp "$WORK/model.bin" "$MNT/llama/model.bin"
	cp "$WORK/small.bin" "$MNT/small.bin"
	sleep 0.3
	seal_before=$(cat "$MNT/llama/model.bin.seal")
	old=$(pgrep -P "$keeper" -x vram-residency)
	kill -KILL "$old"
	check "keeper: restarted after kill -9" served "$old"
	check "keeper: the model came back with its seal" [ "$(cat "$MNT/llama/model.bin.seal")" = "$seal_before" ]
	check "keeper: its bytes" cmp "$WORK/model.bin" "$MNT/llama/model.bin"
	check "keeper: checked on the device" grep -q "restored from the keeper: 2 files" "$WORK/keeper.log"
	grep -h "restored from the keeper" "$WORK/keeper.log"
	check "keeper: verify passes" grep -q "^OK llama/model.bin" "$MNT/verify"
	check "keeper: nothing was loaded again" grep -q '^vram_residency_loads_total{.*} 0$' "$MNT/metrics"
	check "keeper: unmount" fusermount3 -u "$MNT"
	wait "$keeper"
	check "keeper: exits 0 after the unmount" [ $? -eq 0 ]
fi
finish
