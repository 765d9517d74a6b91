#!/bin/bash
# test_trust_links.sh - a verified name gives verified bytes, and a link stays in the mount
# (issue 22, items 1, 2 and 14): a symbolic link a SHA256SUMS or a signature lists is checked
# through what it leads to (the Hugging Face layout keeps passing, a link to other bytes
# fails, as under a signature that does not allow links); a rename never carries a link out
# of the mount; "mv f f.seal" is refused rather than a silent success.
. "$(dirname "$0")/lib.sh"
SIGN=$(dirname "$0")/oms_sign.py
PY=/usr/bin/python3
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k.pem" 2> /dev/null
openssl pkey -in "$WORK/k.pem" -pubout -out "$WORK/k.pub"

verify_of() { cat "$MNT/$1/verify" 2> /dev/null; }
passes() { cat "$MNT/$1/verify" > /dev/null; }
fails_verify() { ! cat "$MNT/$1/verify" > /dev/null 2>&1; }
has_line() { verify_of "$1" | grep -qE "$2"; }

check "mount" mount_vr "capacity=64M,trust=$WORK/k.pub"
head -c 100000 /dev/urandom > "$WORK/good"
head -c 100000 /dev/urandom > "$WORK/evil"
good=$(sha256sum < "$WORK/good" | cut -d' ' -f1)

# 1. SHA256SUMS lists w.bin; w.bin is a link to other bytes
mkdir -p "$MNT/m/blobs"
check "the attacker's bytes load" cp "$WORK/evil" "$MNT/m/blobs/evil"
check "the good bytes load" cp "$WORK/good" "$MNT/m/blobs/good"
check "w.bin links to the attacker's bytes" ln -s blobs/evil "$MNT/m/w.bin"
echo "$good  w.bin" > "$WORK/SHA256SUMS"
check "SHA256SUMS naming the good bytes loads" cp "$WORK/SHA256SUMS" "$MNT/m/SHA256SUMS"
check "cat follows the link to the attacker's bytes" cmp "$MNT/m/w.bin" "$WORK/evil"
check "so the folder's verify fails" fails_verify m
check "the root's verify fails too" fails_verify .
check "saying why" has_line m "^FAILED m/w.bin is a symbolic link to m/blobs/evil, whose bytes differ from the listed digest"
check "the link repointed at the good bytes" ln -sfn blobs/good "$MNT/m/w.bin"
check "verify passes" passes m
check "a link to a link to the good bytes" bash -c "ln -s blobs/good '$MNT/m/hop' && ln -sfn hop '$MNT/m/w.bin'"
check "passes" passes m
check "a dangling link" ln -sfn blobs/none "$MNT/m/w.bin"
check "fails: it leads to nothing" has_line m "^FAILED m/w.bin is a symbolic link that leads to nothing"
check "a link to a folder" ln -sfn blobs "$MNT/m/w.bin"
check "fails" has_line m "^FAILED m/w.bin is a symbolic link to a directory"
check "a loop" bash -c "ln -sfn w.bin '$MNT/m/w.bin'"
check "fails, and the daemon stands" has_line m "^FAILED m/w.bin is a symbolic link that leads to nothing in the mount \(Too many levels"
check "the same file in place of the link" bash -c "rm '$MNT/m/w.bin' && cp '$WORK/good' '$MNT/m/w.bin'"
check "passes" passes m

# the Hugging Face layout, a SHA256SUMS in the snapshot: checked through its targets
hf=$MNT/hub/models--o--m
mkdir -p "$hf/blobs" "$hf/snapshots/r1"
check "HF blob" cp "$WORK/good" "$hf/blobs/$good"
check "HF link" ln -s "../../blobs/$good" "$hf/snapshots/r1/w.bin"
check "HF SHA256SUMS" cp "$WORK/SHA256SUMS" "$hf/snapshots/r1/SHA256SUMS"
check "the HF snapshot verifies" passes hub/models--o--m/snapshots/r1
check "a blob swapped for other bytes under the link" bash -c "cp '$WORK/evil' '$hf/blobs/evil' && ln -sfn ../../blobs/evil '$hf/snapshots/r1/w.bin'"
check "fails" fails_verify hub/models--o--m/snapshots/r1

# a signature: a link fails unless the statement allows links
src=$WORK/signed
mkdir -p "$src/blobs"
cp "$WORK/good" "$src/blobs/good"
ln -s blobs/good "$src/w.bin"
check "sign a model holding a link (allow_symlinks false)" "$PY" "$SIGN" "$WORK/k.pem" "$src"
check "load it" cp -a "$src" "$MNT/s1"
check "its verify fails on the link" has_line s1 "^FAILED s1/w.bin is a symbolic link \(the signature does not allow links"
check "sign it again, allowing links" "$PY" "$SIGN" "$WORK/k.pem" "$src" --allow-symlinks
check "load that" cp -a "$src" "$MNT/s2"
check "its verify passes" passes s2
check "its link repointed at other bytes" bash -c "cp '$WORK/evil' '$MNT/s2/blobs/evil' && ln -sfn blobs/evil '$MNT/s2/w.bin'"
check "fails" has_line s2 "^FAILED s2/w.bin is a symbolic link to s2/blobs/evil, whose bytes differ"

# 2. a link's ".." are counted from where it sits, after every rename
mkdir -p "$MNT/a/b/c"
check "a link climbing to the root from depth 3" ln -s ../../../m/blobs/good "$MNT/a/b/c/l"
check "it resolves inside the mount" cmp "$MNT/a/b/c/l" "$WORK/good"
refuse "moving it to depth 1" "Operation not permitted" mv "$MNT/a/b/c/l" "$MNT/a/l"
refuse "moving its folder to the root" "Operation not permitted" mv "$MNT/a/b/c" "$MNT/c"
refuse "moving a folder above it up" "Operation not permitted" mv "$MNT/a/b" "$MNT/b"
check "the refusal is logged with why" grep -q "rename /a/b -> /b refused: a symbolic link in what moves would lead outside the mount" "$WORK/daemon.log"
check "moving it deeper is fine" bash -c "mkdir -p '$MNT/x/y' && mv '$MNT/a' '$MNT/x/y/a'"
check "the link stays inside (it now names x/m/blobs/good: nothing)" bash -c "! cat '$MNT/x/y/a/b/c/l' > /dev/null 2>&1"

# 14. "mv f f.seal" names f's own seal
refuse "mv f f.seal" "Operation not permitted" mv "$MNT/m/blobs/good" "$MNT/m/blobs/good.seal"
check "f is still there and sealed" bash -c "cmp '$MNT/m/blobs/good' '$WORK/good' && grep -q '\"fsverity\"' '$MNT/m/blobs/good.seal'"
refuse "mv f g.seal" "Operation not permitted" mv "$MNT/m/blobs/good" "$MNT/m/blobs/g.seal"
refuse "mv another's seal over f" "Operation not permitted" mv "$MNT/m/blobs/evil.seal" "$MNT/m/blobs/good"

check "unmount, daemon exits 0" unmount_vr
finish
