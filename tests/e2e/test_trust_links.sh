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
check "a link through a linked folder" bash -c "ln -s blobs '$MNT/m/bl' && ln -sfn bl/good '$MNT/m/w.bin'"
check "passes" passes m
check "a link through a file, as if a folder" ln -sfn blobs/good/x "$MNT/m/w.bin"
check "fails: Not a directory" has_line m "^FAILED m/w.bin is a symbolic link that leads to nothing in the mount \(Not a directory"
check "a link through a dangling linked folder" bash -c "ln -s nowhere '$MNT/m/nl' && ln -sfn nl/good '$MNT/m/w.bin'"
check "fails: nothing there" has_line m "^FAILED m/w.bin is a symbolic link that leads to nothing in the mount \(No such file"
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

echo "$good  w" > "$WORK/SUMS-w"
# a source that is itself a link vouches for nothing: it fails, not silently ignored
mkdir -p "$MNT/l/src" "$MNT/l/d"
check "a SHA256SUMS elsewhere" cp "$WORK/SUMS-w" "$MNT/l/src/SHA256SUMS"
check "the attacker's w" cp "$WORK/evil" "$MNT/l/d/w"
check "d/SHA256SUMS links to it" ln -s ../src/SHA256SUMS "$MNT/l/d/SHA256SUMS"
check "d's verify fails" fails_verify l/d
check "saying why" has_line l/d "^FAILED l/d/SHA256SUMS is a symbolic link: a source must be the file itself"
check "the root's verify fails too" fails_verify .
check "the link removed" rm "$MNT/l/d/SHA256SUMS"

# a file a source names, or a source, still being written fails the report: not verified yet
mkdir "$MNT/ph"
check "a listed file" cp "$WORK/good" "$MNT/ph/w"
check "its SHA256SUMS" cp "$WORK/SUMS-w" "$MNT/ph/SHA256SUMS"
check "verify passes" passes ph
sh -c 'cat "$0" >&3; exec sleep 1000' "$WORK/evil" 3> "$MNT/ph/w" &
holder=$!
sleep 0.3
check "the listed file rewritten and held open: verify fails" fails_verify ph
check "PENDING, saying why" has_line ph "^PENDING ph/w not sealed yet: a source names it"
kill "$holder"
wait "$holder" 2> /dev/null
mkdir "$MNT/pv"
check "a file" cp "$WORK/evil" "$MNT/pv/w"
sh -c 'cat "$0" >&3; exec sleep 1000' "$WORK/SUMS-w" 3> "$MNT/pv/SHA256SUMS" &
holder=$!
sleep 0.3
check "its SHA256SUMS held open while loading: verify fails" fails_verify pv
check "PENDING pv/SHA256SUMS" has_line pv "^PENDING pv/SHA256SUMS not sealed yet"
kill "$holder"
wait "$holder" 2> /dev/null
mkdir "$MNT/free"
sh -c 'cat "$0" >&3; exec sleep 1000' "$WORK/evil" 3> "$MNT/free/x" &
holder=$!
sleep 0.3
check "a load no source covers is only PENDING: verify passes" passes free
kill "$holder"
wait "$holder" 2> /dev/null

# a link target ending in "/" names a folder, as the kernel reads it
mkdir "$MNT/ts"
check "a good blob" cp "$WORK/good" "$MNT/ts/g"
check "w -> g/" ln -s g/ "$MNT/ts/w"
check "cat fails as the kernel says" bash -c "! cat '$MNT/ts/w' > /dev/null 2>&1"
check "its SHA256SUMS" cp "$WORK/SUMS-w" "$MNT/ts/SHA256SUMS"
check "verify fails it: Not a directory" has_line ts "^FAILED ts/w is a symbolic link that leads to nothing in the mount \(Not a directory"
# a listed name ending in "/" is a folder, not a file: the source is refused
mkdir "$MNT/tn"
check "a file" cp "$WORK/good" "$MNT/tn/w"
echo "$good  w/" > "$WORK/SUMS-slash"
check "a SHA256SUMS listing w/" cp "$WORK/SUMS-slash" "$MNT/tn/SHA256SUMS"
check "is refused, and fails verify" has_line tn "^FAILED tn/SHA256SUMS .*a name ending in '/'"
# a source that lists itself: no file can hold its own digest
mkdir "$MNT/self"
check "a file" cp "$WORK/good" "$MNT/self/w"
printf '%s  w\n%s  SHA256SUMS\n' "$good" "$good" > "$WORK/SUMS-self"
check "a SHA256SUMS listing itself" cp "$WORK/SUMS-self" "$MNT/self/SHA256SUMS"
check "fails verify" has_line self "^FAILED self/SHA256SUMS lists itself"

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
