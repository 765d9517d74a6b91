#!/bin/bash
# test_device_digest.sh - -o device_digest=fsverity|blake3|both: what verify recomputes where
# the bytes live, each named in the report as its independent tool prints it (fsverity digest,
# b3sum), each catching a byte changed behind the daemon; a bad value is refused.
. "$(dirname "$0")/lib.sh"

VRAM=$WORK/vram
chmod 711 "$WORK"
{ printf 'DEVICE-DIGEST-MARKER'; head -c 3000000 /dev/urandom; } > "$WORK/m.bin"
head -c 5000 /dev/urandom > "$WORK/small.bin"
b3() { b3sum --no-names "$1"; }
fsv() { fsverity digest "$1" | cut -d' ' -f1; }

# tamper: flips a byte near the marker in the mock's device memory (its chunk files)
tamper() {
	local hit
	hit=$(grep -obUa 'DEVICE-DIGEST-MARKER' "$VRAM"/chunk-* | head -1)
	[ -n "$hit" ] || return 1
	printf 'Z' | dd of="${hit%%:*}" bs=1 seek=$(($(echo "$hit" | cut -d: -f2) + 777)) \
		conv=notrunc status=none
}

refuse "a bad value is refused" "use fsverity, blake3 or both" \
	"$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,device_digest=md5" "$MNT"
check "nothing mounted by it" bash -c "! mountpoint -q '$MNT'"

for mode in ${VR_DD_MODES:-blake3 both fsverity}; do
	rm -rf "$VRAM"
	check "$mode: mount" mount_vr "capacity=32M,mock_vram=$VRAM,device_digest=$mode,allow_other"
	chmod 755 "$MNT"
	check "$mode: status says so" test "$(json_field "$MNT/status" device_digest)" = "$mode"
	mkdir -p "$MNT/d"
	check "$mode: load" cp "$WORK/m.bin" "$MNT/d/m.bin"
	check "$mode: load a small one" cp "$WORK/small.bin" "$MNT/d/small.bin"
	seal_b3=$(json_field "$MNT/d/m.bin.seal" blake3)
	want_ok="OK d/m.bin $(fsv "$WORK/m.bin")" # fsverity digest prints sha256:HEX
	if [ "$mode" = fsverity ]; then
		check "$mode: the seal records no BLAKE3" test "$seal_b3" = ""
	else
		check "$mode: the seal records b3sum's BLAKE3" test "$seal_b3" = "$(b3 "$WORK/m.bin")"
		[ "$mode" = blake3 ] && want_ok="OK d/m.bin blake3:$(b3 "$WORK/m.bin")"
		[ "$mode" = both ] && want_ok="$want_ok blake3:$(b3 "$WORK/m.bin")"
	fi
	cat "$MNT/d/verify" > "$WORK/report"
	check "$mode: verify names what it recomputed" grep -qxF "$want_ok" "$WORK/report"
	check "$mode: nobody may verify too" bash -c \
		"setpriv --reuid=nobody --regid=nogroup --clear-groups cat '$MNT/d/verify' | grep -qxF '$want_ok'"
	check "$mode: a changed byte is found" tamper
	cat "$MNT/d/verify" > "$WORK/report" 2> /dev/null
	case $mode in
	blake3) why="blake3 of device memory differs from the seal" ;;
	*) why="fs-verity digest of device memory differs from the seal" ;;
	esac
	check "$mode: verify fails, naming the digest" grep -qxF "FAILED d/m.bin $why" "$WORK/report"
	check "$mode: the other file passes" grep -q '^OK d/small.bin ' "$WORK/report"
	refuse "$mode: the file is quarantined" "Input/output error" cat "$MNT/d/m.bin"
	check "$mode: audited" audit_has seal_verification_failed d/m.bin
	check "$mode: unmount" unmount_vr
done

# a model signed by shards (OMS 1.1) under sha256=off and device_digest=blake3: no SHA-256 of a
# whole file is taken (the statement states none); each shard is checked from the bytes at the
# seal and at every verify, and a changed byte in one is named
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k.pem" 2> /dev/null
openssl pkey -in "$WORK/k.pem" -pubout -out "$WORK/pub.pem"
mkdir -p "$WORK/model"
cp "$WORK/m.bin" "$WORK/model/w.bin"
cp "$WORK/small.bin" "$WORK/model/s.bin"
check "sign by shards" /usr/bin/python3 "$(dirname "$0")/oms_sign.py" "$WORK/k.pem" "$WORK/model" \
	--shards 1000000 --out "$WORK/model/model.sig"
rm -rf "$VRAM"
check "mount: sha256=off, device_digest=blake3" \
	mount_vr "capacity=32M,mock_vram=$VRAM,sha256=off,device_digest=blake3,trust=$WORK/pub.pem"
check "cp -r of the signed model" cp -r "$WORK/model" "$MNT/m"
check "its seal has no SHA-256" grep -q '"sha256":[[:space:]]*null' "$MNT/m/w.bin.seal"
check "and names the signature" grep -q '"kind":[[:space:]]*"oms"' "$MNT/m/w.bin.seal"
check "verify passes" grep -qxF "OK m/w.bin blake3:$(b3 "$WORK/m.bin")" "$MNT/m/verify"
# a byte of shard 1 (bytes 1000000-1999999; the mock's first 1 MiB chunk) changed in device memory: the seal's BLAKE3 and
# the shard both differ; the BLAKE3 is checked first
hit=$(grep -obUa 'DEVICE-DIGEST-MARKER' "$VRAM"/chunk-* | head -1)
printf 'Q' | dd of="${hit%%:*}" bs=1 seek=$(($(echo "$hit" | cut -d: -f2) + 1020000)) \
	conv=notrunc status=none
check "verify fails, naming the BLAKE3" grep -qxF \
	"FAILED m/w.bin blake3 of device memory differs from the seal" <(cat "$MNT/m/verify" 2> /dev/null)
check "unmount" unmount_vr
finish
