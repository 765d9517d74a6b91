#!/bin/bash
# test_expected.sh - publishers' expected digests: the OpenSSF model-signing reference vector and
# signatures OpenSSL makes (model.sig, -o trust=), SHA256SUMS written by sha256sum, sources that
# arrive before and after their files, rsync's renames, expect=require, and vram-seal
# verify-model agreeing with the daemon.
. "$(dirname "$0")/lib.sh"
DATA=$(cd "$(dirname "$0")/../data/oms" && pwd)
SIGN=$(dirname "$0")/oms_sign.py
PY=/usr/bin/python3

VEC=$WORK/vec
cp -r "$DATA/v1.1.0-elliptic-key" "$VEC"
chmod -R u+w "$VEC"
# other keys: one never trusted, one P-256 key OpenSSL signs with
openssl ecparam -name secp384r1 -genkey -noout -out "$WORK/stranger.pem" 2> /dev/null
openssl pkey -in "$WORK/stranger.pem" -pubout -out "$WORK/stranger.pub"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k256.pem" 2> /dev/null
openssl pkey -in "$WORK/k256.pem" -pubout -out "$WORK/k256.pub"
mkdir -p "$WORK/keys"
cp "$DATA/signing-key-pub.pem" "$WORK/keys/vector.pem"
cp "$WORK/k256.pub" "$WORK/keys/k256.pem"

verify_of() { cat "$MNT/$1/verify" 2> /dev/null; }
passes() { cat "$MNT/$1/verify" > /dev/null; }
# has_line DIR REGEX: the verify report of DIR has a line matching REGEX
has_line() { verify_of "$1" | grep -qE "$2"; }
fails_verify() { ! cat "$MNT/$1/verify" > /dev/null 2>&1; }
seal_field() { grep -m1 "\"$2\":" "$MNT/$1.seal" | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/,$//' -e 's/"//g'; }

check "mount with a directory of trusted keys" mount_vr "capacity=256M,trust=$WORK/keys"

# 1. the reference vector, copied in whole: checked at load, and again by verify
check "cp -r a signed model" cp -r "$VEC" "$MNT/vec"
check "verify passes" passes vec
for f in signme-1 signme-2; do
	check "$f OK" has_line vec "^OK vec/$f sha256:"
	check "$f's seal says what it was checked against" \
		test "$(seal_field vec/$f source)" = vec/model.sig
	check "$f's seal names the signer's key" \
		test "$(seal_field vec/$f key_hint)" = e8450dec4eb99dae995da9af1bc2cc9f76ed669ee2e744f57abba763df3e3f8e
	check "$f's seal has the subject digest" \
		test "$(seal_field vec/$f subject)" = sha256:92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4
done
check "the ignored file is no failure" has_line vec "^OK vec/ignore-me "
check "status counts checked files" test "$(grep -A3 '"expected"' "$MNT/status" | json_field /dev/stdin checked)" = 2
check "a seal checks offline" "$BIN/vram-seal" verify --secret "$SECRET" "$MNT/vec/signme-1.seal" "$VEC/signme-1"
check "audited" audit_has expected_digests_loaded vec/model.sig

# 2. one byte of a weight changed before copying: refused, whichever arrives first
mkdir -p "$WORK/bad"
cp -r "$VEC/." "$WORK/bad/"
printf 'X' | dd of="$WORK/bad/signme-1" bs=1 seek=3 conv=notrunc status=none
mkdir "$MNT/bad1" "$MNT/bad2"
check "signature first" cp "$WORK/bad/model.sig" "$MNT/bad1/"
refuse "the changed weight's close fails" "Input/output error" cp "$WORK/bad/signme-1" "$MNT/bad1/"
check "the other weight loads" cp "$WORK/bad/signme-2" "$WORK/bad/ignore-me" "$MNT/bad1/"
refuse "reads fail" "Input/output error" cat "$MNT/bad1/signme-1"
check "no seal for it" test ! -e "$MNT/bad1/signme-1.seal"
check "verify names the source" has_line bad1 "^FAILED bad1/signme-1 sha256 differs from bad1/model.sig$"
check "and fails" fails_verify bad1
check "the rest is unaffected" has_line bad1 "^OK bad1/signme-2 "
check "refusal audited" audit_has vram_seal_refused bad1/signme-1
check "with both digests' prefixes" bash -c "grep vram_seal_refused '$AUDIT' | grep -q 'expected bc9a717db6064a32..., got'"
check "status counts the refusal" test "$(grep -A5 '"expected"' "$MNT/status" | json_field /dev/stdin refused)" = 1
check "a good copy replaces it" cp "$VEC/signme-1" "$MNT/bad1/signme-1"
check "verify passes after the replacement" passes bad1
check "weights first" cp "$WORK/bad/signme-1" "$WORK/bad/signme-2" "$WORK/bad/ignore-me" "$MNT/bad2/"
check "then the signature" cp "$WORK/bad/model.sig" "$MNT/bad2/"
refuse "the changed weight is quarantined" "Input/output error" cat "$MNT/bad2/signme-1"
check "verify names the source" has_line bad2 "^FAILED bad2/signme-1 sha256 differs from bad2/model.sig$"
check "the good weight's seal was re-signed as checked" test "$(seal_field bad2/signme-2 kind)" = oms

# 3. files missing, unsigned files present: a signed model fails verify
mkdir -p "$WORK/part"
cp "$VEC/model.sig" "$VEC/signme-1" "$WORK/part/"
echo "not signed" > "$WORK/part/extra.txt"
check "cp -r a partial model" cp -r "$WORK/part" "$MNT/part"
check "the absent file is MISSING" has_line part "^MISSING part/signme-2 listed in part/model.sig$"
check "the unsigned file is UNEXPECTED" has_line part "^UNEXPECTED part/extra.txt not listed in part/model.sig$"
check "verify fails" fails_verify part
# vram-seal verify-model on the source directory agrees with the daemon, line for line
# verdicts PREFIX: "VERDICT path" per line, PREFIX/ dropped from the path, sorted
verdicts() { awk '{print $1, $2}' | sed "s|^\([A-Z]*\) $1/|\1 |" | sort; }
verify_of part | verdicts part > "$WORK/daemon.part"
"$BIN/vram-seal" verify-model --trust "$WORK/keys" "$WORK/part" | verdicts part > "$WORK/tool.part"
check "verify-model agrees with the daemon (partial model)" diff "$WORK/daemon.part" "$WORK/tool.part"
verify_of bad2 | verdicts bad2 > "$WORK/daemon.bad"
"$BIN/vram-seal" verify-model --trust "$WORK/keys" "$WORK/bad" | verdicts bad2 > "$WORK/tool.bad"
check "verify-model agrees with the daemon (changed weight)" diff "$WORK/daemon.bad" "$WORK/tool.bad"
check "with four verdicts" test "$(wc -l < "$WORK/tool.bad")" = 4
refuse "verify-model fails a changed weight" "sha256 differs" "$BIN/vram-seal" verify-model --trust "$WORK/keys" "$WORK/bad"
check "verify-model passes the vector" bash -c "'$BIN/vram-seal' verify-model --trust '$WORK/keys' '$VEC' > /dev/null"

# 4. a signature by a key nobody trusts, and one that does not parse
mkdir -p "$WORK/strange"
head -c 300000 /dev/urandom > "$WORK/strange/w.bin"
check "sign with an untrusted key" $PY "$SIGN" "$WORK/stranger.pem" "$WORK/strange"
check "cp -r it" cp -r "$WORK/strange" "$MNT/strange"
check "verify says why in one line" has_line strange "^FAILED strange/model.sig signature not trusted"
check "and fails" fails_verify strange
check "audited" audit_has expected_digests_refused strange/model.sig
refuse "verify-model refuses it too" "not trusted" "$BIN/vram-seal" verify-model --trust "$WORK/keys" "$WORK/strange"
mkdir "$MNT/junk"
echo '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"' > "$WORK/model.sig"
check "a broken model.sig loads as bytes" cp "$WORK/model.sig" "$MNT/junk/"
check "verify says it does not parse" has_line junk "^FAILED junk/model.sig not valid JSON"

# 5. OpenSSL's P-256 signature, a subdirectory, the key itself in the bundle (model_signing
#    1.0.x), ignore_paths; then one resource edited after signing (the subject no longer holds)
mkdir -p "$WORK/m256/sub" "$WORK/m256/logs"
head -c 2000000 /dev/urandom > "$WORK/m256/w.bin"
echo '{"a": 1}' > "$WORK/m256/sub/config.json"
echo "run 1" > "$WORK/m256/logs/run.txt"
check "sign with P-256" $PY "$SIGN" --raw-key --ignore logs "$WORK/k256.pem" "$WORK/m256"
check "cp -r" cp -r "$WORK/m256" "$MNT/m256"
check "verify passes" passes m256
check "a file in a subdirectory is checked" test "$(seal_field m256/sub/config.json source)" = m256/model.sig
check "an ignored path is no failure" has_line m256 "^OK m256/logs/run.txt "
check "verify of the subdirectory alone" passes m256/sub

# 6. SHA256SUMS written by sha256sum; a truncated download; before and after; rsync's renames
mkdir -p "$WORK/sums/d"
head -c 1500000 /dev/urandom > "$WORK/sums/a.bin"
head -c 700000 /dev/urandom > "$WORK/sums/d/b.bin"
(cd "$WORK/sums" && sha256sum a.bin d/b.bin > SHA256SUMS)
# vram-seal manifest writes what sha256sum writes (names sorted, relative to the directory)
mkdir -p "$WORK/man/sub dir"
head -c 300000 /dev/urandom > "$WORK/man/x.bin"
echo "y" > "$WORK/man/sub dir/y.txt"
printf 'odd' > "$WORK/man/back\\slash"
"$BIN/vram-seal" manifest "$WORK/man" > "$WORK/man.sums"
check "manifest = sha256sum" diff "$WORK/man.sums" <(cd "$WORK/man" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done)
check "sha256sum -c accepts it" bash -c "cd '$WORK/man' && sha256sum --quiet -c '$WORK/man.sums'"
cp "$WORK/man.sums" "$WORK/man/SHA256SUMS"
check "cp -r with the manifest" cp -r "$WORK/man" "$MNT/man"
check "verify passes" passes man
check "every file checked" test "$(grep -c '^OK' <(verify_of man))" = 4
check "cp -r a directory with SHA256SUMS" cp -r "$WORK/sums" "$MNT/sums"
check "verify passes" passes sums
check "checked against it" test "$(seal_field sums/d/b.bin kind)" = sha256sums
mkdir "$MNT/trunc"
cp "$WORK/sums/SHA256SUMS" "$MNT/trunc/"
mkdir "$MNT/trunc/d"
head -c 1000000 "$WORK/sums/a.bin" > "$WORK/a.part"
refuse "a download cut short is refused" "Input/output error" cp "$WORK/a.part" "$MNT/trunc/a.bin"
check "verify names it" has_line trunc "^FAILED trunc/a.bin sha256 differs from trunc/SHA256SUMS$"
check "and the file not yet there" has_line trunc "^MISSING trunc/d/b.bin listed in trunc/SHA256SUMS$"
echo extra > "$MNT/trunc/notes.txt"
check "an unlisted file is informational under SHA256SUMS" has_line trunc "^UNEXPECTED trunc/notes.txt not listed in trunc/SHA256SUMS$"
check "the complete file replaces the cut one" cp "$WORK/sums/a.bin" "$MNT/trunc/a.bin"
check "and the other arrives" cp "$WORK/sums/d/b.bin" "$MNT/trunc/d/"
check "verify passes (UNEXPECTED is no failure here)" passes trunc
# files first, their SHA256SUMS after (cp -r order is the source's readdir order)
mkdir "$MNT/late"
cp "$WORK/sums/a.bin" "$MNT/late/a.bin"
cp "$WORK/a.part" "$MNT/late/c.bin"
check "unchecked before the source" test "$(seal_field late/a.bin expected)" = null
# c.bin holds the cut download, but its line states the whole file's digest
(cd "$WORK/sums" && sha256sum a.bin && sha256sum a.bin | sed 's/a.bin/c.bin/') > "$WORK/late.sums"
check "SHA256SUMS arrives last" cp "$WORK/late.sums" "$MNT/late/SHA256SUMS"
check "a matching file is re-signed as checked" test "$(seal_field late/a.bin source)" = late/SHA256SUMS
refuse "a differing one is quarantined" "Input/output error" cat "$MNT/late/c.bin"
check "verify names it" has_line late "^FAILED late/c.bin sha256 differs from late/SHA256SUMS$"
# rsync writes .name.XXXXXX and renames it into place: checked at the rename
mkdir -p "$WORK/rs"
cp "$WORK/sums/a.bin" "$WORK/rs/a.bin"
(cd "$WORK/rs" && sha256sum a.bin > SHA256SUMS)
cp "$WORK/a.part" "$WORK/rs/a.bin"
check "rsync a directory whose file no longer matches" rsync -r "$WORK/rs/" "$MNT/rs/"
check "the renamed file fails verify" has_line rs "^FAILED rs/a.bin sha256 differs from rs/SHA256SUMS$"
# a malformed SHA256SUMS is reported with its line number
mkdir "$MNT/mal"
printf '%s  a.bin\nnot a line\n' "$(sha256sum < "$WORK/sums/a.bin" | cut -d' ' -f1)" > "$WORK/mal.sums"
check "load a malformed SHA256SUMS" cp "$WORK/mal.sums" "$MNT/mal/SHA256SUMS"
check "verify gives its line number" has_line mal "^FAILED mal/SHA256SUMS line 2: "
check "unmount" unmount_vr

# 7. expect=require: only covered files seal; a source arriving after its files seals them
check "mount with expect=require" mount_vr "capacity=256M,trust=$WORK/keys,expect=require"
mkdir "$MNT/r"
refuse "an uncovered file is refused" "Input/output error" cp "$WORK/sums/a.bin" "$MNT/r/"
check "verify says why" has_line r "^FAILED r/a.bin no expected digest covers it \(expect=require\)$"
check "its SHA256SUMS arrives" cp "$WORK/sums/SHA256SUMS" "$MNT/r/"
check "now it is sealed" cmp "$MNT/r/a.bin" "$WORK/sums/a.bin"
check "as checked" test "$(seal_field r/a.bin kind)" = sha256sums
mkdir -p "$WORK/signed"
cp "$VEC/model.sig" "$VEC/signme-1" "$VEC/signme-2" "$WORK/signed/"
check "cp -r of a signed model works in any order" cp -r "$WORK/signed" "$MNT/vec"
check "verify passes" passes vec
echo "not signed" > "$WORK/ignore-me"
refuse "a file the signature ignores is not signed: refused" "Input/output error" cp "$WORK/ignore-me" "$MNT/vec/"
check "status says require" grep -q '"mode":	"require"' "$MNT/status"
check "unmount" unmount_vr

# 8. sha256=off: the tree digest alone, until a source names the file
check "mount with sha256=off" mount_vr "capacity=256M,sha256=off"
mkdir "$MNT/off"
check "load" cp "$WORK/sums/a.bin" "$MNT/off/a.bin"
check "the seal has no sha256" grep -q '"sha256":	null' "$MNT/off/a.bin.seal"
check "its fs-verity digest is fsverity's" test "$(json_field "$MNT/off/a.bin.seal" fsverity)" = "$(fsverity digest "$WORK/sums/a.bin" | cut -d' ' -f1)"
check "it checks offline" bash -c "'$BIN/vram-seal' verify --secret '$SECRET' '$MNT/off/a.bin.seal' '$WORK/sums/a.bin' | grep -q 'no sha256'"
check "status says so" grep -q '"sha256":	"off"' "$MNT/status"
check "a SHA256SUMS arriving later" bash -c "cd '$WORK/sums' && sha256sum a.bin > '$MNT/off/SHA256SUMS'"
check "hashes what it names, then checks it" test "$(json_field "$MNT/off/a.bin.seal" sha256)" = "$(sha256sum < "$WORK/sums/a.bin" | cut -d' ' -f1)"
check "as checked" test "$(seal_field off/a.bin kind)" = sha256sums
check "unmount" unmount_vr

# SIGHUP re-reads trust=: a key taken away no longer vouches for signatures that arrive after;
# keys that cannot be read leave those in force
mkdir -p "$WORK/hupkeys"
cp "$DATA/signing-key-pub.pem" "$WORK/hupkeys/vector.pem"
trusted() { grep -A8 '"expected"' "$MNT/status" | json_field /dev/stdin trusted_keys; }
check "mount with one trusted key" mount_vr "capacity=64M,trust=$WORK/hupkeys"
check "a signed model is accepted" bash -c "cp -r '$VEC' '$MNT/before' && cat '$MNT/before/verify' > /dev/null"
rm "$WORK/hupkeys/vector.pem"
cp "$WORK/k256.pub" "$WORK/hupkeys/k256.pem"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do grep -q '"event":"trust_reloaded"' "$AUDIT" && break; sleep 0.1; done
check "the re-read is audited" grep -q '"event":"trust_reloaded".*"outcome":"ok"' "$AUDIT"
check "still mounted" mountpoint -q "$MNT"
check "the new keys are in force" test "$(trusted)" = 1
check "the model copied again is refused: its key is no longer trusted" \
	bash -c "cp -r '$VEC' '$MNT/after'; ! cat '$MNT/after/verify' > /dev/null 2>&1"
check "what was accepted before stays" passes before
echo "no key" > "$WORK/hupkeys/broken.pem"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 50); do grep -q '"event":"trust_reloaded".*"outcome":"failed"' "$AUDIT" && break; sleep 0.1; done
check "unreadable keys: audited, and the keys in force stay" \
	bash -c "grep -q '\"event\":\"trust_reloaded\".*\"outcome\":\"failed\"' '$AUDIT' && test \"\$(grep -A8 '\"expected\"' '$MNT/status' | grep -m1 trusted_keys | tr -dc 0-9)\" = 1"
check "unmount, daemon exits 0" unmount_vr
# a trust= that cannot be used stops the mount with a reason
echo "no key" > "$WORK/nokey.pem"
check "a bad trust= refuses to mount" bash -c "! '$BIN/vram-residency' -f -o backend=mock,secret=$SECRET,audit=$AUDIT,trust=$WORK/nokey.pem '$MNT' 2> '$WORK/bad-trust.log'"
check "saying why" grep -q "no \"-----BEGIN PUBLIC KEY-----\" or \"-----BEGIN CERTIFICATE-----\" block" "$WORK/bad-trust.log"
finish
