#!/bin/bash
# test_blake3_sources.sh - a checksums.blake3 (NGC's, b3sum's format) is a source like SHA256SUMS:
# a tree with one made by b3sum verifies, its seals record the BLAKE3 (version 3); a flipped byte
# is refused before the source's arrival and quarantined after it; a malformed line is refused by
# its number; vram-seal manifest --blake3 writes what b3sum --check accepts; a source nobody
# drops in a shared folder vouches for nobody's files only; expect=require and sha256=off hold.
. "$(dirname "$0")/lib.sh"

if ! command -v b3sum > /dev/null; then
	echo "b3sum is missing: run scripts/deps.sh"
	exit 1
fi
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"
# tree DIR: three files, one in a folder, and their checksums.blake3 as b3sum writes it
tree() {
	mkdir -p "$1/sub"
	head -c $((3 * 1048576 + 7)) /dev/urandom > "$1/a.bin"
	head -c 5000 /dev/urandom > "$1/sub/b.bin"
	echo "config" > "$1/c.txt"
	(cd "$1" && b3sum a.bin sub/b.bin c.txt > checksums.blake3)
}
# flip FILE OFFSET: the byte there, changed
flip() {
	local byte
	byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf %o $((255 - byte)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

check "mount with allow_other" mount_vr "capacity=256M,allow_other"

# a tree with b3sum's checksums.blake3, copied whole (cp -r's order): every file checked
tree "$WORK/m"
check "b3sum --check accepts the tree" bash -c "cd '$WORK/m' && b3sum --check checksums.blake3 > /dev/null"
check "cp -r of the tree" cp -r "$WORK/m" "$MNT/m"
cat "$MNT/m/verify" > "$WORK/v" 2> /dev/null
check "its verify passes" test $? = 0
check "OK for a listed file" grep -q '^OK m/a.bin sha256:' "$WORK/v"
check "and for one in a folder" grep -q '^OK m/sub/b.bin sha256:' "$WORK/v"
check "nothing fails" bash -c "! grep -qE '^(FAILED|MISSING|UNEXPECTED)' '$WORK/v'"
want=$(b3sum --no-names "$WORK/m/a.bin")
check "the seal is version 3" grep -q '"version":[[:space:]]*3' "$MNT/m/a.bin.seal"
check "it records b3sum's BLAKE3" grep -q "\"blake3\":[[:space:]]*\"$want\"" "$MNT/m/a.bin.seal"
check "and the source, kind blake3sums" grep -q '"kind":[[:space:]]*"blake3sums"' "$MNT/m/a.bin.seal"
check "the source's path" grep -q '"source":[[:space:]]*"m/checksums.blake3"' "$MNT/m/sub/b.bin.seal"
cp "$MNT/m/a.bin.seal" "$WORK/a.seal"
check "vram-seal verify checks the BLAKE3 offline" bash -c "'$BIN/vram-seal' verify --secret '$SECRET' '$WORK/a.seal' '$WORK/m/a.bin' | grep -q 'and blake3'"
check "and fails another file" bash -c "! '$BIN/vram-seal' verify --secret '$SECRET' '$WORK/a.seal' '$WORK/m/sub/b.bin' > /dev/null 2>&1"
check "a file no checksums.blake3 names keeps version 2" bash -c "echo x > '$MNT/other.txt' && grep -q '\"version\":[[:space:]]*2' '$MNT/other.txt.seal'"
check "the source is a source in status" bash -c "grep -q '\"sources\":[[:space:]]*1' '$MNT/status'"

# the source first, then the files: each checked when it is sealed
tree "$WORK/f"
check "the source alone first" bash -c "mkdir '$MNT/f' && cp '$WORK/f/checksums.blake3' '$MNT/f/'"
check "then the files" bash -c "cp -r '$WORK/f/a.bin' '$WORK/f/c.txt' '$MNT/f/' && mkdir '$MNT/f/sub' && cp '$WORK/f/sub/b.bin' '$MNT/f/sub/'"
check "verify passes" bash -c "cat '$MNT/f/verify' > /dev/null"
check "its seals record the BLAKE3" grep -q "\"blake3\":[[:space:]]*\"$(b3sum --no-names "$WORK/f/c.txt")\"" "$MNT/f/c.txt.seal"

# one flipped byte (before the copy): refused at sealing when the source is there first
tree "$WORK/bad"
flip "$WORK/bad/a.bin" 1048576
check "the source first" bash -c "mkdir '$MNT/bad' && cp '$WORK/bad/checksums.blake3' '$MNT/bad/'"
refuse "the flipped file's copy fails at close" "Input/output error" cp "$WORK/bad/a.bin" "$MNT/bad/a.bin"
check "its reads fail" bash -c "! cat '$MNT/bad/a.bin' > /dev/null 2>&1"
cat "$MNT/bad/verify" > "$WORK/v-bad" 2> /dev/null
check "verify fails" test $? != 0
check "saying which digest and source" grep -q '^FAILED bad/a.bin blake3 differs from bad/checksums.blake3' "$WORK/v-bad"
listed=$(grep ' a.bin$' "$WORK/bad/checksums.blake3" | cut -c1-16)
got=$(b3sum --no-names "$WORK/bad/a.bin" | cut -c1-16)
check "the refusal is audited with both digests' prefixes" bash -c "grep '\"event\":\"vram_seal_refused\"' '$AUDIT' | grep 'bad/a.bin' | grep -q 'blake3 differs from bad/checksums.blake3: expected $listed..., got $got...'"
flip "$WORK/bad/a.bin" 1048576 # back as it was
check "the right bytes copied over it are a new load, sealed" cp "$WORK/bad/a.bin" "$MNT/bad/a.bin"
check "and read back" cmp "$MNT/bad/a.bin" "$WORK/bad/a.bin"

# ... and quarantined when the source arrives after the file
tree "$WORK/late"
flip "$WORK/late/sub/b.bin" 4999
check "the files first" bash -c "mkdir -p '$MNT/late/sub' && cp '$WORK/late/a.bin' '$WORK/late/c.txt' '$MNT/late/' && cp '$WORK/late/sub/b.bin' '$MNT/late/sub/'"
check "the flipped one reads before the source" cmp "$MNT/late/sub/b.bin" "$WORK/late/sub/b.bin"
check "then the source" cp "$WORK/late/checksums.blake3" "$MNT/late/"
check "the flipped file is quarantined" bash -c "! cat '$MNT/late/sub/b.bin' > /dev/null 2>&1"
check "audited" bash -c "grep '\"event\":\"seal_verification_failed\"' '$AUDIT' | grep -q 'late/sub/b.bin'"
check "the daemon's log counts it" grep -q "late/checksums.blake3: 3 file(s) expected; files already here: 2 re-signed as checked, 1 quarantined" "$WORK/daemon.log"
cat "$MNT/late/verify" > "$WORK/v-late" 2> /dev/null
check "verify names it" grep -q '^FAILED late/sub/b.bin blake3 differs from late/checksums.blake3' "$WORK/v-late"
check "the others pass, their seals re-signed with the BLAKE3" bash -c "grep -q '^OK late/a.bin' '$WORK/v-late' && grep -q '\"kind\":[[:space:]]*\"blake3sums\"' '$MNT/late/a.bin.seal'"

# a malformed line refuses the source, naming the line
tree "$WORK/mal"
printf '%s\n' "$(b3sum --no-names "$WORK/mal/c.txt") *c.txt" >> "$WORK/mal/checksums.blake3"
check "b3sum --check refuses it too" bash -c "cd '$WORK/mal' && ! b3sum --check checksums.blake3 > /dev/null 2>&1"
check "cp -r of a tree with a malformed line" cp -r "$WORK/mal" "$MNT/mal"
cat "$MNT/mal/verify" > "$WORK/v-mal" 2> /dev/null
check "verify fails" test $? != 0
check "naming the line" grep -q '^FAILED mal/checksums.blake3 line 4: not "<64 lowercase hex digits>  <name>" as b3sum writes' "$WORK/v-mal"
check "the daemon's log says so" grep -q "mal/checksums.blake3 refused: line 4: not" "$WORK/daemon.log"
check "audited" bash -c "grep '\"event\":\"expected_digests_refused\"' '$AUDIT' | grep -q 'mal/checksums.blake3'"
printf '%s  a.bin\r\n' "$(b3sum --no-names "$WORK/mal/a.bin")" > "$WORK/crlf"
check "a Windows line end" bash -c "mkdir '$MNT/crlf' && cp '$WORK/crlf' '$MNT/crlf/checksums.blake3'"
check "is refused with its reason" bash -c "cat '$MNT/crlf/verify' 2> /dev/null | grep -q '^FAILED crlf/checksums.blake3 line 1: ends in a carriage return'"

# vram-seal manifest --blake3: what b3sum --check accepts, and what the daemon checks
tree "$WORK/mk"
rm "$WORK/mk/checksums.blake3"
check "vram-seal manifest --blake3" bash -c "'$BIN/vram-seal' manifest --blake3 '$WORK/mk' > '$WORK/mk.b3' && mv '$WORK/mk.b3' '$WORK/mk/checksums.blake3'"
check "b3sum --check accepts it" bash -c "cd '$WORK/mk' && b3sum --check checksums.blake3 > /dev/null"
check "it lists every file but itself, as b3sum prints them" bash -c "cd '$WORK/mk' && diff <(b3sum a.bin c.txt sub/b.bin) checksums.blake3"
check "the daemon accepts it" bash -c "cp -r '$WORK/mk' '$MNT/mk' && cat '$MNT/mk/verify' > /dev/null"

# unprivileged users: a source vouches only for what its owner could have written
check "a shared sticky folder of root's" mkdir -m 1777 "$MNT/shared"
check "root's file in it" bash -c "head -c 70000 /dev/urandom > '$MNT/shared/w.bin' && chmod 644 '$MNT/shared/w.bin'"
cp "$MNT/shared/w.bin" "$WORK/w.orig"
check "nobody's file in it" nob bash -c "echo mine > '$MNT/shared/n.txt'"
wrong=$(printf 'other bytes' | b3sum --no-names)
printf '%s  w.bin\n%s  n.txt\n' "$wrong" "$wrong" > "$WORK/foreign"
chmod 644 "$WORK/foreign"
check "nobody drops a checksums.blake3 naming other bytes for both" nob cp "$WORK/foreign" "$MNT/shared/checksums.blake3"
check "root's file still reads its bytes" cmp "$MNT/shared/w.bin" "$WORK/w.orig"
check "nobody's own file is quarantined" bash -c "! cat '$MNT/shared/n.txt' 2> /dev/null"
cat "$MNT/shared/verify" > "$WORK/v-shared" 2> /dev/null
check "verify says OK for root's file" grep -q '^OK shared/w.bin sha256:' "$WORK/v-shared"
# root's file has no BLAKE3 to compare: none is taken for a source that may not vouch for it
check "and no dispute (no BLAKE3 is taken for it)" bash -c "! grep -q '^DISPUTED' '$WORK/v-shared'"
check "the daemon's log: one quarantined, none disputed" grep -q "shared/checksums.blake3: 2 file(s) expected; .* 1 quarantined, 0 sealed now, 0 disputed" "$WORK/daemon.log"
check "nobody's file FAILED, by its BLAKE3" grep -q '^FAILED shared/n.txt blake3 differs from shared/checksums.blake3' "$WORK/v-shared"
check "root's seal names no source" bash -c "! grep -q '\"source\"' '$MNT/shared/w.bin.seal'"
check "nobody's source gone" nob rm "$MNT/shared/checksums.blake3"
(cd "$WORK" && cp w.orig w.bin && b3sum w.bin > "$WORK/root-b3" && rm w.bin)
check "root's own checksums.blake3 vouches for root's file" bash -c "cp '$WORK/root-b3' '$MNT/shared/checksums.blake3' && grep -q '\"kind\":[[:space:]]*\"blake3sums\"' '$MNT/shared/w.bin.seal'"

# sha256=off: the BLAKE3 is taken all the same; a SHA-256 only where a source states one
check "unmount" unmount_vr
check "mount with sha256=off" mount_vr "capacity=256M,sha256=off"
tree "$WORK/off"
check "cp -r of a tree" cp -r "$WORK/off" "$MNT/off"
check "verify passes" bash -c "cat '$MNT/off/verify' > /dev/null"
check "the seal has the BLAKE3" grep -q "\"blake3\":[[:space:]]*\"$(b3sum --no-names "$WORK/off/c.txt")\"" "$MNT/off/c.txt.seal"
check "and names its source" grep -q '"kind":[[:space:]]*"blake3sums"' "$MNT/off/c.txt.seal"
check "and no SHA-256: no source states one" grep -q '"sha256":[[:space:]]*null' "$MNT/off/c.txt.seal"
check "a file no source names has neither" bash -c "echo x > '$MNT/x' && grep -q '\"sha256\":[[:space:]]*null' '$MNT/x.seal' && ! grep -q blake3 '$MNT/x.seal'"
check "unmount" unmount_vr

# expect=require: a checksums.blake3 covers what it names, arriving before or after it
check "mount with expect=require" mount_vr "capacity=256M,expect=require"
tree "$WORK/req"
mkdir "$MNT/req"
refuse "a file before its source is refused" "Input/output error" cp "$WORK/req/a.bin" "$MNT/req/"
check "its checksums.blake3 arrives" cp "$WORK/req/checksums.blake3" "$MNT/req/"
check "now it is sealed" cmp "$MNT/req/a.bin" "$WORK/req/a.bin"
check "the seal has the BLAKE3" grep -q "\"blake3\":[[:space:]]*\"$(b3sum --no-names "$WORK/req/a.bin")\"" "$MNT/req/a.bin.seal"
check "and names its source" grep -q '"kind":[[:space:]]*"blake3sums"' "$MNT/req/a.bin.seal"
check "files after it are sealed at once" bash -c "cp '$WORK/req/c.txt' '$MNT/req/' && mkdir '$MNT/req/sub' && cp '$WORK/req/sub/b.bin' '$MNT/req/sub/'"
check "verify passes" bash -c "cat '$MNT/req/verify' > /dev/null"
echo extra > "$WORK/extra"
refuse "a file it does not name is refused" "Input/output error" cp "$WORK/extra" "$MNT/req/extra"
check "unmount" unmount_vr
finish
