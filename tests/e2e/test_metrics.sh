#!/bin/bash
# test_metrics.sh - MOUNT/metrics and -o metrics_file= in Prometheus' text format, checked by
# promtool, with counts that follow what happened, labelled to join dcgm-exporter on UUID.
. "$(dirname "$0")/lib.sh"

PROM=$WORK/textfile/vram.prom
mkdir -p "$WORK/textfile"
check "mount with metrics_file" mount_vr "capacity=64M,metrics_file=$PROM,metrics_interval=1"
# value METRIC [LABEL-MATCH]: the sample's value in MOUNT/metrics
value() { grep "^vram_residency_$1{" "$MNT/metrics" | grep -- "${2:-}" | awk '{print $2}'; }
check "promtool: MOUNT/metrics is valid" bash -c "promtool check metrics < '$MNT/metrics'"
check "nothing loaded yet" test "$(value seals_total)" = 0
head -c 300000 /dev/urandom > "$WORK/a.bin"
cp "$WORK/a.bin" "$MNT/a.bin"
cp "$WORK/a.bin" "$MNT/b.bin"
check "two loads counted" test "$(value loads_total)" = 2
check "two seals" test "$(value seals_total)" = 2
check "files by state" test "$(value files 'state="sealed"')" = 2
cat "$MNT/verify" > /dev/null
check "checks counted (verify: 2)" test "$(value verifications_total 'result="passed"')" -ge 2
check "histogram count = checks" test "$(value verification_duration_seconds_count)" = \
	"$(($(value verifications_total 'result="passed"') + $(value verifications_total 'result="failed"') + $(value verifications_total 'result="error"')))"
check "used bytes = status" test "$(value device_used_bytes)" = "$(json_field "$MNT/status" used_bytes)"
check "labelled with the device's UUID, as dcgm-exporter" \
	grep -q "UUID=\"$(json_field "$MNT/status" uuid)\"" "$MNT/metrics"
check "no timestamps (two fields a sample)" \
	bash -c "grep -v '^#' '$MNT/metrics' | awk 'NF != 2 {exit 1}'"
refuse "metrics is a reserved name at the root" "File exists" mkdir "$MNT/metrics"
for _ in $(seq 1 40); do
	grep -q 'seals_total{.*} 2$' "$PROM" 2> /dev/null && break
	sleep 0.1
done
check "metrics_file written, and up to date" grep -q 'seals_total{.*} 2$' "$PROM"
check "promtool: the file is valid" bash -c "promtool check metrics < '$PROM'"
check "no temporary file left" test "$(ls "$WORK/textfile")" = vram.prom
check "unmount, daemon exits 0" unmount_vr
refuse "a bad metrics_interval is refused" "metrics_interval" "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,metrics_interval=0" "$MNT"

# a metrics_file that cannot be written (its folder is not there yet): the mount serves, the
# failure is said once, not every interval, and the file is written once the folder appears
: > "$WORK/daemon.log"
check "mount with a metrics_file in a folder not made yet" mount_vr "capacity=64M,metrics_file=$WORK/later/vram.prom,metrics_interval=1"
sleep 2.5
check "the failure is said once" test "$(grep -c 'metrics_file=.*cannot write it: No such file' "$WORK/daemon.log")" = 1
mkdir "$WORK/later"
for _ in $(seq 1 40); do
	[ -s "$WORK/later/vram.prom" ] && break
	sleep 0.1
done
check "written once the folder is there" grep -q 'vram_residency_' "$WORK/later/vram.prom"
check "and said so" grep -q "metrics_file=.*written again" "$WORK/daemon.log"
check "unmount, daemon exits 0" unmount_vr
finish
