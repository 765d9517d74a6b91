#!/bin/bash
# test_oms11.sh - OpenSSF model signing 1.1 beyond ECDSA keys and whole-file SHA-256:
# certificate chains the openssl command makes (a root, an intermediate, a leaf; an expired
# leaf, a wrong root, a leaf without signing usage), BLAKE3 statements (b3sum's digests),
# and shards / BLAKE2b (hashlib's), checked by the daemon and by vram-seal verify-model.
# The signer is tests/e2e/oms_sign.py over `openssl dgst`: not this project's code.
. "$(dirname "$0")/lib.sh"
SIGN=$(dirname "$0")/oms_sign.py
PY=/usr/bin/python3
command -v b3sum > /dev/null || { echo "SKIP: no b3sum"; exit 77; }

# ---- certificates, made here by the openssl command ----
PKI=$WORK/pki
mkdir -p "$PKI/db"
: > "$PKI/db/index.txt"
echo 1000 > "$PKI/db/serial"
cat > "$PKI/ca.cnf" << EOF
[ca]
default_ca = ca_any
[ca_any]
database = $PKI/db/index.txt
serial = $PKI/db/serial
new_certs_dir = $PKI/db
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
[v3_eku_only]
basicConstraints = critical, CA:false
extendedKeyUsage = codeSigning
[v3_nosign]
basicConstraints = critical, CA:false
keyUsage = critical, keyEncipherment
extendedKeyUsage = serverAuth
EOF
key() { openssl ecparam -name "$2" -genkey -noout -out "$PKI/$1.key" 2> /dev/null; }
csr() { openssl req -new -key "$PKI/$1.key" -subj "/CN=$1" -out "$PKI/$1.csr"; }
# issue NAME ISSUER EXTENSIONS [openssl ca's date options]: NAME.pem signed by ISSUER
issue() {
	local n=$1 i=$2 ext=$3
	shift 3
	csr "$n"
	openssl ca -batch -config "$PKI/ca.cnf" -cert "$PKI/$i.pem" -keyfile "$PKI/$i.key" \
		-extensions "$ext" -in "$PKI/$n.csr" -out "$PKI/$n.pem" -notext "$@" 2> /dev/null
}
for r in root other-root; do
	key $r prime256v1
	openssl req -x509 -new -key "$PKI/$r.key" -subj "/CN=$r" -days 30 -config "$PKI/ca.cnf" \
		-extensions v3_ca -out "$PKI/$r.pem" 2> /dev/null
done
key inter prime256v1
issue inter root v3_ca -days 30
for l in leaf expired nosign; do key $l secp384r1; done
key eku-only prime256v1
key leaf521 secp521r1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/rsa.key" 2> /dev/null
issue leaf inter v3_leaf -days 30
issue expired inter v3_leaf -startdate 20200101000000Z -enddate 20210101000000Z
issue eku-only inter v3_eku_only -days 30
issue nosign inter v3_nosign -days 30
issue leaf521 inter v3_leaf -days 30
issue rsa inter v3_leaf -days 30
# validity at the signing time the bundle states, its leaf's notBefore (model_signing's rule):
# roots and intermediates dated by `openssl ca` (-selfsign for a root), in the past
# selfsigned NAME START END: a root valid from START to END
selfsigned() {
	key "$1" prime256v1
	csr "$1"
	openssl ca -batch -config "$PKI/ca.cnf" -selfsign -keyfile "$PKI/$1.key" -extensions v3_ca \
		-in "$PKI/$1.csr" -out "$PKI/$1.pem" -notext -startdate "$2" -enddate "$3" 2> /dev/null
}
selfsigned oldroot 20170101000000Z 21000101000000Z  # valid then and now
selfsigned pastroot 20190101000000Z 20220101000000Z # valid at 2020, expired now
selfsigned deadroot 20190101000000Z 20191231000000Z # expired before 2020
for c in oldinter pastinter deadinter lapsed backwards future early pastleaf deadleaf; do
	key $c prime256v1
done
issue oldinter oldroot v3_ca -startdate 20190101000000Z -enddate 21000101000000Z
issue pastinter pastroot v3_ca -startdate 20190101000000Z -enddate 21000101000000Z
issue deadinter deadroot v3_ca -startdate 20190101000000Z -enddate 21000101000000Z
# expired now, valid when it signed: accepted, as model_signing accepts it
issue lapsed oldinter v3_leaf -startdate 20200101000000Z -enddate 20210101000000Z
# its notAfter before its notBefore: expired at the signing time
issue backwards oldinter v3_leaf -startdate 20210101000000Z -enddate 20200101000000Z
# a signing time after now: no signature that exists was made then
issue future oldinter v3_leaf -startdate 20900101000000Z -enddate 20990101000000Z
# signed before its intermediate was valid
issue early oldinter v3_leaf -startdate 20180601000000Z -enddate 20300101000000Z
# its root expired since (accepted), or before it signed (refused)
issue pastleaf pastinter v3_leaf -startdate 20200101000000Z -enddate 20300101000000Z
issue deadleaf deadinter v3_leaf -startdate 20200101000000Z -enddate 20300101000000Z
for c in root inter leaf expired eku-only nosign leaf521 rsa oldroot oldinter lapsed backwards \
	future early pastleaf deadleaf; do
	check "openssl made $c" test -s "$PKI/$c.pem"
done
check "openssl refuses the lapsed leaf now" \
	bash -c "! openssl verify -CAfile '$PKI/oldroot.pem' -untrusted '$PKI/oldinter.pem' '$PKI/lapsed.pem' > /dev/null 2>&1"
check "... and accepts it at its notBefore" \
	bash -c "openssl verify -attime 1577836800 -CAfile '$PKI/oldroot.pem' -untrusted '$PKI/oldinter.pem' '$PKI/lapsed.pem' > /dev/null"
check "openssl itself validates the leaf's chain" \
	bash -c "openssl verify -CAfile '$PKI/root.pem' -untrusted '$PKI/inter.pem' '$PKI/leaf.pem' > /dev/null"
mkdir -p "$WORK/trust"
cp "$PKI/root.pem" "$WORK/trust/root.pem"
for r in oldroot pastroot deadroot; do cp "$PKI/$r.pem" "$WORK/trust/"; done
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k256.pem" 2> /dev/null
openssl pkey -in "$WORK/k256.pem" -pubout -out "$WORK/trust/k256.pem"

# a model of several files, SIZE-boundaries around the 8-byte shards below
model() {
	mkdir -p "$1/sub"
	head -c 1000 /dev/urandom > "$1/weights.bin"
	head -c 7 /dev/urandom > "$1/sub/seven"
	head -c 8 /dev/urandom > "$1/sub/eight"
	head -c 9 /dev/urandom > "$1/sub/nine"
	head -c 1 /dev/urandom > "$1/one"
	: > "$1/empty"
	echo '{"a": 1}' > "$1/config.json"
}
# signed NAME [oms_sign.py options]: $WORK/NAME, a model signed so
signed() {
	local n=$1
	shift
	model "$WORK/$n"
	$PY "$SIGN" "$@" "$WORK/$n"
}
signed chain "$PKI/leaf.key" --cert "$PKI/leaf.pem" --chain "$PKI/inter.pem"
signed chainroot "$PKI/leaf.key" --cert "$PKI/leaf.pem" --chain "$PKI/inter.pem" --chain "$PKI/root.pem"
signed ekuonly "$PKI/eku-only.key" --cert "$PKI/eku-only.pem" --chain "$PKI/inter.pem"
signed p521 "$PKI/leaf521.key" --cert "$PKI/leaf521.pem" --chain "$PKI/inter.pem"
signed rsaleaf "$PKI/rsa.key" --cert "$PKI/rsa.pem" --chain "$PKI/inter.pem"
signed expired "$PKI/expired.key" --cert "$PKI/expired.pem" --chain "$PKI/inter.pem"
for c in lapsed backwards future early; do
	signed $c "$PKI/$c.key" --cert "$PKI/$c.pem" --chain "$PKI/oldinter.pem"
done
signed pastleaf "$PKI/pastleaf.key" --cert "$PKI/pastleaf.pem" --chain "$PKI/pastinter.pem"
signed deadleaf "$PKI/deadleaf.key" --cert "$PKI/deadleaf.pem" --chain "$PKI/deadinter.pem"
signed nosign "$PKI/nosign.key" --cert "$PKI/nosign.pem" --chain "$PKI/inter.pem"
signed nointer "$PKI/leaf.key" --cert "$PKI/leaf.pem"
signed wrongkey "$WORK/k256.pem" --cert "$PKI/leaf.pem" --chain "$PKI/inter.pem"
signed b3 "$WORK/k256.pem" --hash blake3
signed b3bad "$WORK/k256.pem" --hash blake3
printf 'X' | dd of="$WORK/b3bad/sub/nine" bs=1 seek=4 conv=notrunc status=none
signed shards "$WORK/k256.pem" --shards 8
signed shardsbad "$WORK/k256.pem" --shards 8
printf 'X' | dd of="$WORK/shardsbad/weights.bin" bs=1 seek=999 conv=notrunc status=none
signed blake2 "$WORK/k256.pem" --hash blake2b
signed b2shards "$WORK/k256.pem" --hash blake2b --shards 8
signed b2bad "$WORK/k256.pem" --hash blake2b --shards 8
head -c 1 /dev/urandom >> "$WORK/b2bad/sub/eight"

verify_of() { cat "$MNT/$1/verify" 2> /dev/null; }
passes() { cat "$MNT/$1/verify" > /dev/null; }
has_line() { verify_of "$1" | grep -qE "$2"; }
fails_verify() { ! cat "$MNT/$1/verify" > /dev/null 2>&1; }
seal_field() { grep -m1 "\"$2\":" "$MNT/$1.seal" | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/,$//' -e 's/"//g'; }
# tool NAME: vram-seal verify-model's report on $WORK/NAME, with the roots and the key
tool() { "$BIN/vram-seal" verify-model --trust "$TRUST" "$WORK/$1"; }
TRUST=$WORK/trust

check "mount with a root certificate and a key in trust=" mount_vr "capacity=256M,trust=$WORK/trust"

# 1. certificate mode: a leaf through its intermediate to the trusted root
# (P-384, P-384 with the root in the chain, P-256 with codeSigning alone, P-521); a leaf expired
# now but valid when it signed, a root expired since the leaf signed (checked at the leaf's
# notBefore, as model_signing checks them)
for m in chain chainroot ekuonly p521 lapsed pastleaf; do
	check "cp -r a model signed with a certificate ($m)" cp -r "$WORK/$m" "$MNT/$m"
	check "verify passes ($m)" passes $m
	check "its weights are OK ($m)" has_line $m "^OK $m/weights.bin sha256:"
	check "verify-model agrees ($m)" bash -c "'$BIN/vram-seal' verify-model --trust '$WORK/trust' '$WORK/$m' > /dev/null"
done
leaf_hint=$(openssl x509 -in "$PKI/leaf.pem" -noout -pubkey | openssl pkey -pubin | sha256sum | cut -c1-64)
check "the seal names the leaf's key" test "$(seal_field chain/weights.bin key_hint)" = "$leaf_hint"
check "audited as loaded" audit_has expected_digests_loaded chain/model.sig

# 2. refused certificates: each with its reason, at load and in verify; verify-model agrees
refused() {
	local m=$1 why=$2 daemon_only=${3:-}
	mkdir "$MNT/$m"
	check "$m: the signature is copied" cp "$WORK/$m/model.sig" "$MNT/$m/"
	check "$m: verify fails" fails_verify $m
	check "$m: saying why" has_line $m "^FAILED $m/model.sig .*$why"
	check "$m: audited" audit_has expected_digests_refused $m/model.sig
	check "$m: logged" grep -q "$m/model.sig refused: .*$why" "$WORK/daemon.log"
	[ -n "$daemon_only" ] ||
		check "$m: verify-model refuses it too" bash -c "tool $m | grep -q '^FAILED model.sig .*$why'"
}
export -f tool
export BIN WORK TRUST
# a leaf of 2020 through a root and an intermediate made today: not valid when the leaf signed
refused expired "certificate is not yet valid at the signing time the bundle states"
refused backwards "certificate has expired at the signing time the bundle states .*depth 0 of"
refused future "the leaf is not valid yet .its notBefore, the signing time the bundle states, is after now."
refused early "certificate is not yet valid at the signing time the bundle states .*depth 1 of"
refused deadleaf "certificate has expired at the signing time the bundle states .*depth 2 of"
refused nosign "not for signing"
refused nointer "unable to get local issuer certificate"
refused wrongkey "does not verify with the signing certificate"
refused rsaleaf "not ECDSA on P-256, P-384 or P-521"
# the right chain, but trust= holds another root
check "unmount" unmount_vr
mkdir -p "$WORK/trust2"
cp "$PKI/other-root.pem" "$WORK/trust2/"
export TRUST=$WORK/trust2
check "mount trusting another root" mount_vr "capacity=256M,trust=$TRUST"
refused chain "unable to get local issuer certificate"
check "unmount" unmount_vr
# keys only in trust=: a certificate-mode bundle has no root to chain to
export TRUST=$WORK/trust/k256.pem
check "mount trusting a key only" mount_vr "capacity=256M,trust=$TRUST"
refused chain "no root certificates are configured"
check "unmount" unmount_vr
export TRUST=$WORK/trust
check "mount again with the root" mount_vr "capacity=256M,trust=$TRUST"

# 3. BLAKE3 statements: the daemon takes each listed file's BLAKE3 from its device bytes
check "cp -r a BLAKE3-signed model" cp -r "$WORK/b3" "$MNT/b3"
check "verify passes (blake3)" passes b3
check "the seal records the BLAKE3 b3sum gives" \
	test "$(seal_field b3/sub/nine blake3)" = "$(b3sum --no-names "$WORK/b3/sub/nine")"
check "verify-model agrees (blake3)" bash -c "tool b3 > /dev/null"
mkdir -p "$MNT/b3bad/sub"
check "signature first (blake3)" cp "$WORK/b3bad/model.sig" "$MNT/b3bad/"
refuse "a changed byte under a BLAKE3 statement is refused" "Input/output error" \
	cp "$WORK/b3bad/sub/nine" "$MNT/b3bad/sub/nine"
check "verify names the blake3 difference" has_line b3bad "^FAILED b3bad/sub/nine blake3 differs from b3bad/model.sig"
check "verify-model too" bash -c "tool b3bad | grep -q '^FAILED sub/nine .*blake3'"

# 4. shards and BLAKE2b: each shard's digest taken from the device bytes on the host, at the
# seal and at every verify; an empty file has no shard and passes
for m in shards blake2 b2shards; do
	check "cp -r ($m)" cp -r "$WORK/$m" "$MNT/$m"
	check "verify passes ($m)" passes $m
	check "the weights are OK ($m)" has_line $m "^OK $m/weights.bin sha256:"
	check "the empty file is OK ($m)" has_line $m "^OK $m/empty sha256:"
	check "the seal records the signature ($m)" test "$(seal_field $m/sub/nine source)" = $m/model.sig
	check "verify-model agrees ($m)" bash -c "tool $m > /dev/null"
	check "verify passes again ($m)" passes $m
done
check "verify-model: the empty file has no shard and passes" bash -c "tool shards | grep -q '^OK empty '"
# a changed byte: refused at its close when the signature is there first
mkdir -p "$MNT/shardsbad/sub"
check "signature first (shards)" cp "$WORK/shardsbad/model.sig" "$MNT/shardsbad/"
refuse "a changed byte in the last shard is refused" "Input/output error" \
	cp "$WORK/shardsbad/weights.bin" "$MNT/shardsbad/"
check "verify names the shard" has_line shardsbad "^FAILED shardsbad/weights.bin sha256 of shard 992:1000 differs from shardsbad/model.sig"
check "audited as refused" audit_has vram_seal_refused shardsbad/weights.bin
check "verify-model names it too" bash -c "tool shardsbad | grep -q '^FAILED weights.bin sha256 of shard 992:1000 differs'"
# ... and quarantined when the signature arrives after it
mkdir -p "$MNT/late/sub"
check "the changed weight first" cp "$WORK/shardsbad/weights.bin" "$MNT/late/"
check "the rest" cp -r "$WORK/shardsbad/sub" "$WORK/shardsbad/one" "$WORK/shardsbad/empty" "$WORK/shardsbad/config.json" "$MNT/late/"
check "then the signature" cp "$WORK/shardsbad/model.sig" "$MNT/late/"
refuse "the weight is quarantined" "Input/output error" cat "$MNT/late/weights.bin"
check "verify fails it" has_line late "^FAILED late/weights.bin .*shard 992:1000 differs"
check "the others pass" has_line late "^OK late/sub/nine "
# a file longer than its shards
mkdir -p "$MNT/b2bad"
check "signature first (blake2b shards)" cp "$WORK/b2bad/model.sig" "$MNT/b2bad/"
mkdir -p "$MNT/b2bad/sub"
refuse "a file longer than its shards is refused" "Input/output error" \
	cp "$WORK/b2bad/sub/eight" "$MNT/b2bad/sub/"
check "verify says so" has_line b2bad "^FAILED b2bad/sub/eight 9 bytes where the shards list 8 from b2bad/model.sig"
check "verify-model says so too" bash -c "tool b2bad | grep -q '^FAILED sub/eight 9 bytes where the shards list 8'"
finish
