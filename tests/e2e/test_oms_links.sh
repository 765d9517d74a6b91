#!/bin/bash
# test_oms_links.sh - OMS 1.1 statements only a file's bytes can answer (shards, BLAKE2b), issue
# 26 item 1: a listed name that is a symbolic link is checked through its target's bytes, as
# under SHA256SUMS (allow_symlinks honoured; a target swapped after sealing fails at verify),
# and a file renamed into a signed folder is checked at the rename, not at the next verify;
# as root, and as nobody on an allow_other mount. Signer: tests/e2e/oms_sign.py (OpenSSL, hashlib).
. "$(dirname "$0")/lib.sh"
SIGN=$(dirname "$0")/oms_sign.py
PY=/usr/bin/python3
chmod 711 "$WORK"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k.pem" 2> /dev/null
openssl pkey -in "$WORK/k.pem" -pubout -out "$WORK/k.pub"
chmod 644 "$WORK/k.pub"

verify_of() { cat "$MNT/$1/verify" 2> /dev/null; }
passes() { cat "$MNT/$1/verify" > /dev/null; }
fails_verify() { ! cat "$MNT/$1/verify" > /dev/null 2>&1; }
has_line() { verify_of "$1" | grep -qE "$2"; }
nb() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
nb_passes() { nb cat "$MNT/$1/verify" > /dev/null; }
nb_has_line() { nb cat "$MNT/$1/verify" 2> /dev/null | grep -qE "$2"; }
# eventually CMD...: CMD succeeds within 10 s (a rename's check runs on a thread of its own)
eventually() {
	for _ in $(seq 1 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
unreadable() { ! cat "$1" > /dev/null 2>&1; }
seal_source() { grep -m1 '"source":' "$MNT/$1.seal" | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/[",]//g'; }
source_is() { [ "$(seal_source "$1")" = "$2" ]; }

head -c 1000 /dev/urandom > "$WORK/good"
head -c 1000 /dev/urandom > "$WORK/evil"
chmod 644 "$WORK/good" "$WORK/evil"
# linked NAME [oms_sign.py options]: $WORK/NAME, a model whose w.bin is a link to a blob
# outside it (../store-NAME/blob, as the Hugging Face cache keeps them), signed so
linked() {
	local n=$1
	shift
	mkdir -p "$WORK/$n/sub" "$WORK/store-$n"
	cp "$WORK/good" "$WORK/store-$n/blob"
	ln -s "../store-$n/blob" "$WORK/$n/w.bin"
	head -c 9 /dev/urandom > "$WORK/$n/sub/nine"
	$PY "$SIGN" "$WORK/k.pem" "$WORK/$n" "$@"
	chmod -R a+rX "$WORK/$n" "$WORK/store-$n"
}
linked sh --shards 8 --allow-symlinks
linked b2 --hash blake2b --allow-symlinks
linked b2sh --hash blake2b --shards 8 --allow-symlinks
linked nolinks --shards 8
linked nbsh --shards 8 --allow-symlinks

check "mount with allow_other" mount_vr "capacity=64M,trust=$WORK/k.pub,allow_other"

# 1. links under shards and BLAKE2b statements that allow them: checked through their targets
for m in sh b2 b2sh; do
	check "the blob ($m)" bash -c "mkdir -p '$MNT/store-$m' && cp '$WORK/store-$m/blob' '$MNT/store-$m/'"
	check "the model with its link ($m)" cp -a "$WORK/$m" "$MNT/$m"
	check "verify passes through the link ($m)" passes $m
	check "no line for the link itself ($m)" bash -c "! cat '$MNT/$m/verify' | grep -q ' $m/w.bin '"
	check "the blob swapped for other bytes after sealing ($m)" cp "$WORK/evil" "$MNT/store-$m/blob"
	check "verify fails ($m)" fails_verify $m
	check "naming the target and what differs ($m)" \
		has_line $m "^FAILED $m/w.bin is a symbolic link to store-$m/blob, whose bytes differ from the listed digest \(.+\)"
	[ $m != sh ] || check "the shard that differs is named" \
		has_line sh "^FAILED sh/w.bin .*whose bytes differ from the listed digest \(sha256 of shard 0:8 differs"
	check "the good bytes back: passes again ($m)" bash -c "cp '$WORK/good' '$MNT/store-$m/blob' && cat '$MNT/$m/verify' > /dev/null"
	check "the link repointed at other bytes ($m)" bash -c "cp '$WORK/evil' '$MNT/store-$m/evil' && ln -sfn ../store-$m/evil '$MNT/$m/w.bin'"
	check "fails ($m)" has_line $m "^FAILED $m/w.bin is a symbolic link to store-$m/evil, whose bytes differ"
	check "a dangling link fails ($m)" bash -c "ln -sfn ../store-$m/none '$MNT/$m/w.bin' && ! cat '$MNT/$m/verify' > /dev/null 2>&1"
done
# a statement without allow_symlinks: the link fails, whatever it leads to
check "the blob (no links allowed)" bash -c "mkdir -p '$MNT/store-nolinks' && cp '$WORK/good' '$MNT/store-nolinks/blob'"
check "a shards model whose statement forbids links" cp -a "$WORK/nolinks" "$MNT/nolinks"
check "its link fails" has_line nolinks "^FAILED nolinks/w.bin is a symbolic link \(the signature does not allow links"

# 2. as nobody, on an allow_other mount: nobody's own model and blob
check "a folder of nobody's" bash -c "mkdir '$MNT/nb' && chown nobody:nogroup '$MNT/nb'"
check "nobody loads the blob" nb bash -c "mkdir '$MNT/nb/store-nbsh' && cp '$WORK/store-nbsh/blob' '$MNT/nb/store-nbsh/'"
check "nobody loads the model" nb cp -r --no-preserve=all -P "$WORK/nbsh" "$MNT/nb/nbsh"
check "nobody's verify passes through the link" nb_passes nb/nbsh
check "nobody swaps the blob" nb cp "$WORK/evil" "$MNT/nb/store-nbsh/blob"
check "nobody's verify fails" nb_has_line nb/nbsh "^FAILED nb/nbsh/w.bin is a symbolic link to nb/store-nbsh/blob, whose bytes differ"
check "root's too" has_line nb/nbsh "^FAILED nb/nbsh/w.bin is a symbolic link to nb/store-nbsh/blob, whose bytes differ"
# a link to root's file nobody may not read: never hashed for them, no digest oracle
check "root's private blob" bash -c "mkdir -m 700 '$MNT/secret' && cp '$WORK/good' '$MNT/secret/blob'"
check "nobody links to it" nb ln -sfn ../../secret/blob "$MNT/nb/nbsh/w.bin"
check "nobody's verify says it may not follow it" \
	nb_has_line nb/nbsh "^FAILED nb/nbsh/w.bin is a symbolic link this user may not follow or read"

# 3. a file renamed into a signed folder is checked at the rename (shards, BLAKE2b)
model() {
	mkdir -p "$WORK/$1"
	cp "$WORK/good" "$WORK/$1/weights.bin"
	head -c 9 /dev/urandom > "$WORK/$1/nine"
	$PY "$SIGN" "$WORK/k.pem" "$WORK/$1" "${@:2}"
	chmod -R a+rX "$WORK/$1"
}
model rsh --shards 8
model rb2 --hash blake2b
model nbr --shards 8
for m in rsh rb2; do
	check "a signed folder ($m)" bash -c "mkdir '$MNT/$m' && cp '$WORK/$m/model.sig' '$WORK/$m/nine' '$MNT/$m/'"
	check "other bytes sealed elsewhere ($m)" bash -c "mkdir -p '$MNT/tmp-$m' && cp '$WORK/evil' '$MNT/tmp-$m/w' && cp '$WORK/good' '$MNT/tmp-$m/g'"
	check "renamed in over the listed name ($m)" mv "$MNT/tmp-$m/w" "$MNT/$m/weights.bin"
	# nothing opens it first: an open checks it too (verify_on_open), and so would hide it
	check "quarantined and audited at the rename ($m)" eventually audit_has seal_verification_failed $m/weights.bin
	check "logged with the shard or digest ($m)" grep -q "$m/weights.bin quarantined: .* from $m/model.sig" "$WORK/daemon.log"
	check "unreadable ($m)" unreadable "$MNT/$m/weights.bin"
	check "the right bytes renamed in ($m)" mv "$MNT/tmp-$m/g" "$MNT/$m/weights.bin"
	check "re-signed as checked by the signature, without a verify ($m)" \
		eventually source_is $m/weights.bin $m/model.sig
	check "readable ($m)" cmp "$MNT/$m/weights.bin" "$WORK/good"
	check "verify passes ($m)" passes $m
done
# as nobody, in nobody's folder
check "nobody's signed folder" nb bash -c "mkdir '$MNT/nb/nbr' '$MNT/nb/tmp' && cp '$WORK/nbr/model.sig' '$WORK/nbr/nine' '$MNT/nb/nbr/' && cp '$WORK/evil' '$MNT/nb/tmp/w'"
check "nobody renames other bytes in" nb mv "$MNT/nb/tmp/w" "$MNT/nb/nbr/weights.bin"
check "quarantined and audited at the rename" eventually audit_has seal_verification_failed nb/nbr/weights.bin
check "nobody reads it no more" nb bash -c "! cat '$MNT/nb/nbr/weights.bin' > /dev/null 2>&1"
# a folder renamed in: each file below it checked
mkdir -p "$WORK/rdir/sub"
cp "$WORK/good" "$WORK/rdir/sub/weights.bin"
$PY "$SIGN" "$WORK/k.pem" "$WORK/rdir" --hash blake2b --shards 8
check "a signed folder listing sub/weights.bin" bash -c "mkdir '$MNT/rdir' && cp '$WORK/rdir/model.sig' '$MNT/rdir/'"
check "a folder holding other bytes" bash -c "mkdir -p '$MNT/stage/sub' && cp '$WORK/evil' '$MNT/stage/sub/weights.bin'"
check "the folder renamed in" mv "$MNT/stage/sub" "$MNT/rdir/sub"
check "its file quarantined at the rename" eventually audit_has seal_verification_failed rdir/sub/weights.bin
check "unreadable" unreadable "$MNT/rdir/sub/weights.bin"
check "unmount, daemon exits 0" unmount_vr

# 3b. with verify_on_open=0 too, a file renamed under a signature that names other bytes is
# not served while its check runs: the open checks it first (it read 600 MB before)
check "mount with verify_on_open=0" mount_vr "capacity=512M,trust=$WORK/k.pub,verify_on_open=0"
mkdir -p "$WORK/vo"
head -c 150000000 /dev/urandom > "$WORK/vo/w.bin"
$PY "$SIGN" "$WORK/k.pem" "$WORK/vo" --shards 1000000
check "a signed folder, its file not there yet" bash -c "mkdir '$MNT/vo' && cp '$WORK/vo/model.sig' '$MNT/vo/'"
# the same bytes but the last: every shard but the last agrees, so the check takes its time
cp "$WORK/vo/w.bin" "$WORK/vo-bad"
printf 'X' | dd of="$WORK/vo-bad" bs=1 seek=149999999 conv=notrunc status=none
check "other bytes loaded elsewhere" bash -c "mkdir '$MNT/st' && cp '$WORK/vo-bad' '$MNT/st/w.bin'"
mv "$MNT/st/w.bin" "$MNT/vo/w.bin"
got=$(cat "$MNT/vo/w.bin" 2> /dev/null | wc -c)
check "renamed in, not one byte of it is served" test "$got" = 0
check "it is quarantined" eventually audit_has seal_verification_failed vo/w.bin
check "the right bytes renamed in are served" bash -c "cp '$WORK/vo/w.bin' '$MNT/st/w2' && mv '$MNT/st/w2' '$MNT/vo/w.bin' && cmp '$WORK/vo/w.bin' '$MNT/vo/w.bin'"
rm -rf "$WORK/vo" "$WORK/vo-bad"
check "unmount, daemon exits 0" unmount_vr

# 4. vram-seal verify-model agrees on the same trees, outside the mount: a listed link is read
# through (where the statement allows links), a swapped or dangling target fails it
vm() { "$BIN/vram-seal" verify-model --trust "$WORK/k.pub" "$WORK/$1" > "$WORK/vm.out" 2>&1; }
for m in sh b2 b2sh; do
	check "verify-model follows the listed link ($m)" vm $m
	check "and says OK for it ($m)" grep -q "^OK w.bin " "$WORK/vm.out"
done
check "verify-model: a link the statement forbids fails" bash -c "! '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/nolinks' > '$WORK/vm.out'"
check "in the daemon's words" grep -q "^FAILED w.bin is a symbolic link (the signature does not allow links" "$WORK/vm.out"
cp "$WORK/evil" "$WORK/store-sh/blob"
check "verify-model: the blob swapped fails" bash -c "! '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/sh' > '$WORK/vm.out'"
check "naming the shard" grep -q "^FAILED w.bin sha256 of shard 0:8 differs" "$WORK/vm.out"
rm "$WORK/store-b2/blob"
check "verify-model: a dangling link fails" bash -c "! '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/b2' > '$WORK/vm.out'"
check "saying it leads to nothing" grep -q "^FAILED w.bin is a symbolic link that leads to nothing (No such file or directory)" "$WORK/vm.out"
mkdir "$WORK/store-b2/blob"
check "verify-model: a link to a folder fails" bash -c "! '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/b2' > '$WORK/vm.out'"
check "saying so" grep -q "^FAILED w.bin is a symbolic link to a directory, not a file" "$WORK/vm.out"
finish
