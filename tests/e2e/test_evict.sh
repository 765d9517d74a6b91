#!/bin/bash
# test_evict.sh - sharing the GPU: sealed files evicted to host memory and back, checked on the
# device; by hand (vram-evict, as root and as nobody) and by the NVML policy under a simulated
# foreign process (the NVML test double), one that comes and goes, and a mapped file it keeps.
. "$(dirname "$0")/lib.sh"

NVML=$(cd "$BIN/.." && pwd)/fakenvml/libnvidia-ml.so.1
if [ ! -f "$NVML" ]; then
	bad "the NVML test double is not built at $NVML"
	finish
	exit 1
fi
export VRAM_NVML_LIB=$NVML VR_FAKE_NVML=$WORK/nvml.state
MB=$((1 << 20))
# gpu TOTAL [PID BYTES]: the double's state, replaced whole (it reads it at every call)
gpu() {
	echo "total $1" > "$WORK/nvml.new"
	if [ $# -ge 3 ]; then
		echo "proc $2 $3" >> "$WORK/nvml.new"
	fi
	mv "$WORK/nvml.new" "$VR_FAKE_NVML"
}
ev_field() { sed -n '/"eviction"/,/}/p' "$MNT/status" | grep -m1 "\"$1\":" | tr -dc '0-9'; }
# wait_ev KEY VALUE: polls status until eviction's KEY is VALUE (5 s)
wait_ev() {
	for _ in $(seq 1 100); do
		[ "$(ev_field "$1")" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
blocks() { stat -c %b "$1"; }

gpu $((64 * MB))
mkdir -m 700 "$WORK/evicted"
chmod 711 "$WORK"
mount_vr "capacity=64M,allow_other,evict=nvml,evict_free=16M,evict_margin=4M,evict_interval=0.1,evict_min_resident=0,evict_restore_delay=1,evict_dir=$WORK/evicted" || exit 1
carry_for_nobody && cp "$BIN/vram-evict" "$NBIN/"

mkdir "$MNT/m"
for f in a b c; do
	head -c $((8 * MB + 4321)) /dev/urandom > "$WORK/$f"
	cp "$WORK/$f" "$MNT/m/$f"
done
chmod 755 "$MNT/m"
want_a=$(fsverity digest "$WORK/a" | cut -d' ' -f1)

# by hand: the seal stays, the size stays, the device memory goes
seal_before=$(cat "$MNT/m/a.seal")
used_before=$(json_field "$MNT/status" used_bytes)
check "vram-evict says what it moved" sh -c "'$BIN/vram-evict' '$MNT/m/a' | grep -q '1 file evicted'"
check "an evicted file holds no device memory" [ "$(blocks "$MNT/m/a")" = 0 ]
check "and keeps its size" [ "$(stat -c %s "$MNT/m/a")" = $((8 * MB + 4321)) ]
check "and its seal" [ "$(cat "$MNT/m/a.seal")" = "$seal_before" ]
check "status counts it" [ "$(ev_field files)" = 1 ]
check "and its bytes" [ "$(ev_field bytes)" = $((8 * MB + 4321)) ]
check "df gives its memory back" [ "$(df -B1 --output=used "$MNT" | tail -1 | tr -d ' ')" -lt "$used_before" ]
check "metrics agree with status" grep -q "^vram_residency_evicted_bytes{.*} $((8 * MB + 4321))$" "$MNT/metrics"
check "host memory is counted" [ "$(ev_field host_bytes)" -ge $((8 * MB)) ]
check "verify reports it evicted, and passes" sh -c "cat '$MNT/m/verify' | grep -q '^EVICTED m/a $want_a '"
check "the audit says why" audit_has vram_evicted m/a
# an open brings it back, checked on the device: the same bytes by independent tools
check "sha256sum reads the loaded bytes" [ "$(sha256sum < "$MNT/m/a")" = "$(sha256sum < "$WORK/a")" ]
check "restored, it holds device memory again" [ "$(blocks "$MNT/m/a")" -gt 0 ]
check "fsverity digest agrees with the seal" [ "$(fsverity digest "$MNT/m/a" | cut -d' ' -f1)" = "$want_a" ]
check "the restore is audited" audit_has vram_restored m/a
check "numpy reads an evicted file whole" sh -c "'$BIN/vram-evict' '$MNT/m/c' > /dev/null && /usr/bin/python3 -c 'import numpy, sys; a = numpy.fromfile(sys.argv[1], dtype=numpy.uint8); b = numpy.fromfile(sys.argv[2], dtype=numpy.uint8); sys.exit(0 if (a == b).all() and a.size == b.size else 1)' '$MNT/m/c' '$WORK/c'"

# another user: may not evict root's files, may bring back what they may read
"$BIN/vram-evict" "$MNT/m/b" > /dev/null
if as_nobody "$NBIN/vram-evict" "$MNT/m/c" > "$WORK/nobody.out" 2>&1; then
	bad "nobody evicted root's file"
else
	check "nobody is told why" grep -q "owner or root" "$WORK/nobody.out"
fi
check "nobody may restore a file they may read" as_nobody "$NBIN/vram-evict" --restore "$MNT/m/b"
check "and it is back" [ "$(blocks "$MNT/m/b")" -gt 0 ]
check "nobody's restore is audited as theirs" sh -c "grep '\"event\":\"vram_restored\"' '$AUDIT' | grep '\"path\":\"m/b\"' | grep -q '\"uid\":65534'"

# bytes changed in host memory while evicted: the restore's device check quarantines the file
"$BIN/vram-evict" "$MNT/m/b" > /dev/null
chunk=$(find "$WORK/evicted" -type f | head -1)
printf '\x5a' | dd of="$chunk" bs=1 seek=4096 conv=notrunc status=none
check "a changed evicted file reads EIO" sh -c "! cat '$MNT/m/b' > /dev/null 2> '$WORK/cat.err' && grep -q 'Input/output error' '$WORK/cat.err'"
check "and is quarantined" [ "$(json_field "$MNT/status" quarantined)" = 1 ]
check "the failed check is audited" audit_has seal_verification_failed m/b
rm "$MNT/m/b"
check "its removal frees the store" [ "$(ev_field files)" = 0 ]

# the policy: another process takes the device; the least recently used file goes first
cat "$MNT/m/c" > /dev/null # c used last: a goes first
gpu $((64 * MB)) 4242 $((36 * MB))
check "the policy evicts under a foreign process" wait_ev files 1
check "the least recently used one" [ "$(blocks "$MNT/m/a")" = 0 ]
check "and only it" [ "$(blocks "$MNT/m/c")" -gt 0 ]
check "its decision is logged with the numbers" grep -q "policy: .* under the 16.0 MiB kept free, with 1 other process(es) using 36.0 MiB" "$WORK/daemon.log"
# a process that comes and goes every poll: no restore, no further eviction (no thrash)
ev0=$(ev_field evictions)
for _ in $(seq 1 15); do
	gpu $((64 * MB))
	sleep 0.1
	gpu $((64 * MB)) 4242 $((36 * MB))
	sleep 0.1
done
check "no thrash while it comes and goes" [ "$(ev_field evictions)" = "$ev0" ]
check "no restore meanwhile" [ "$(ev_field files)" = 1 ]
# it leaves: back after the delay, checked on the device
gpu $((64 * MB))
check "restored once it leaves" wait_ev files 0
check "restored by the policy, audited" sh -c "grep '\"event\":\"vram_restored\"' '$AUDIT' | grep -q 'policy:'"
check "the bytes are the loaded ones" [ "$(sha256sum < "$MNT/m/a")" = "$(sha256sum < "$WORK/a")" ]

# a mapped file is kept: the policy takes another, never it
"$BIN/vram-map" --hold 4 "$MNT/m/a" > /dev/null 2>&1 &
hold=$!
sleep 0.5
gpu $((64 * MB)) 4242 $((52 * MB))
check "a pressure evicts the unmapped file" wait_ev files 1
check "the mapped file stays" [ "$(blocks "$MNT/m/a")" -gt 0 ]
check "the other one went" [ "$(blocks "$MNT/m/c")" = 0 ]
refuse "an operator's eviction of a mapped file is refused" "Device or resource busy" "$BIN/vram-evict" "$MNT/m/a"
wait "$hold"
gpu $((64 * MB))
check "all back when the device is free" wait_ev files 0

# NVML failing: said once, no decision meanwhile, and its recovery
state_has() {
	for _ in $(seq 1 100); do
		grep -q "\"policy_state\":[[:space:]]*\"$1" "$MNT/status" && return 0
		sleep 0.05
	done
	return 1
}
check "status says the policy polls NVML" state_has "polling NVML every 0.10 s"
printf 'total %d\nfail memory\n' $((64 * MB)) > "$WORK/nvml.new" && mv "$WORK/nvml.new" "$VR_FAKE_NVML"
check "NVML failing shows in status" state_has "NVML failing, no decision"
check "and in the log, once" [ "$(grep -c 'NVML failing' "$WORK/daemon.log")" = 1 ]
gpu $((64 * MB))
check "its recovery too" state_has "NVML answers again"
check "df, status and metrics agree on device use" sh -c "[ \"\$(df -B1 --output=used '$MNT' | tail -1 | tr -d ' ')\" = \"\$(grep -m1 '\"used_bytes\"' '$MNT/status' | tr -dc 0-9)\" ]"
check "unmount, daemon exits 0" unmount_vr
check "the store's files went with the daemon" [ -z "$(find "$WORK/evicted" -type f)" ]
# options: each bad value stops the start with exit 2 and a line saying what to give
for bad in evict=bogus restore=later evict_free=110% evict_free=x evict_margin=5q \
	evict_interval=0.01 evict_interval=x evict_min_resident=-1 evict_restore_delay=soon \
	evict_host_max=100 evict_host_max=lots; do
	timeout 10 "$BIN/vram-residency" -f -o "backend=mock,$bad" "$MNT" > /dev/null 2> "$WORK/opt.err"
	rc=$?
	check "-o $bad is refused (exit 2) with a reason" sh -c "[ $rc = 2 ] && grep -q '${bad%%=*}=' '$WORK/opt.err'"
done
mkdir -m 777 "$WORK/open-dir"
timeout 10 "$BIN/vram-residency" -f -o "backend=mock,evict_dir=$WORK/open-dir" "$MNT" > /dev/null 2> "$WORK/opt.err"
check "an evict_dir= others may write is refused, nothing mounted" grep -q "cannot open the host store for evicted files in evict_dir=" "$WORK/opt.err"
check "and the mount point is untouched" sh -c "! mountpoint -q '$MNT'"
# evict_host_max=0: no eviction, said by the tool; shares as sizes and percentages
mount_vr "evict_host_max=0,evict=nvml" || exit 1
cp "$WORK/c" "$MNT/c"
refuse "evict_host_max=0: vram-evict says eviction is off here" "not available on this mount" "$BIN/vram-evict" "$MNT/c"
check "status says it is not available" sh -c "sed -n '/\"eviction\"/,/}/p' '$MNT/status' | grep -q '\"available\":[[:space:]]*false'"
check "the start said the policy has nothing to evict with" grep -q "evict=nvml with evict_host_max=0" "$WORK/daemon.log"
check "unmount, daemon exits 0" unmount_vr
mount_vr "evict_free=8M,evict_margin=1%,evict_host_max=12M,evict_min_resident=5,evict_restore_delay=0" || exit 1
cp "$WORK/a" "$MNT/a"
check "an absolute evict_free= and a percent margin mount" "$BIN/vram-evict" "$MNT/a"
cp "$WORK/c" "$MNT/c"
refuse "evict_host_max=12M: the second 8 MiB file does not fit" "No space left on device" "$BIN/vram-evict" "$MNT/c"
check "the refusal is logged" grep -q "eviction of c (asked by uid 0) refused: host memory for evicted files is full" "$WORK/daemon.log"
check "unmount, daemon exits 0" unmount_vr
# no NVML: the start says so, status too, and eviction by hand still works
VRAM_NVML_LIB=$WORK/no-such-libnvidia-ml.so mount_vr "evict=nvml" || exit 1
check "without NVML, status says the policy is off and why" state_has "off: no eviction policy"
cp "$WORK/a" "$MNT/a"
check "vram-evict still works" "$BIN/vram-evict" "$MNT/a"
check "and the file comes back whole" cmp "$WORK/a" "$MNT/a"
check "unmount, daemon exits 0" unmount_vr
finish
