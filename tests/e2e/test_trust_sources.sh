#!/bin/bash
# test_trust_sources.sh - a source vouches only for what its owner could have written (issue
# 22, item 6), as nobody on an allow_other mount: a SHA256SUMS nobody drops into a shared
# sticky folder quarantines none of root's files, refuses none of root's loads, and covers
# none of them under expect=require; verify reports the dispute and passes. Root's sources,
# and the folder owner's, still vouch for everyone's files there; nobody's for nobody's own.
. "$(dirname "$0")/lib.sh"
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"
mkdir -m 700 "$WORK/n" && chown nobody "$WORK/n" # nobody's own notes
wrong=0000000000000000000000000000000000000000000000000000000000000000
sums() { # sums FILE LINE...: a SHA256SUMS readable by anyone
	local f=$1
	shift
	printf '%s\n' "$@" > "$f"
	chmod 644 "$f"
}

check "mount with allow_other" mount_vr "capacity=64M,allow_other"
check "a shared sticky folder of root's" mkdir -m 1777 "$MNT/shared"
check "root's model in it" bash -c "head -c 70000 /dev/urandom > '$MNT/shared/w.bin' && chmod 644 '$MNT/shared/w.bin'"
cp "$MNT/shared/w.bin" "$WORK/w.orig"
check "nobody's file in it" nob bash -c "echo mine > '$MNT/shared/n.txt'"
sums "$WORK/foreign" "$wrong  w.bin" "$wrong  n.txt"
check "nobody drops a SHA256SUMS naming other bytes for both" nob cp "$WORK/foreign" "$MNT/shared/SHA256SUMS"
check "root's file still reads its bytes" cmp "$MNT/shared/w.bin" "$WORK/w.orig"
check "nobody's own file is quarantined (its source may vouch for it)" bash -c "! cat '$MNT/shared/n.txt' 2> /dev/null"
check "the daemon's log counts one dispute" grep -q "shared/SHA256SUMS: 2 file(s) expected; .* 1 quarantined, 0 sealed now, 1 disputed" "$WORK/daemon.log"
check "no failure is audited for root's file" bash -c "! grep '\"event\":\"seal_verification_failed\"' '$AUDIT' | grep -q 'shared/w.bin'"
cat "$MNT/shared/verify" > "$WORK/v" 2> /dev/null
check "verify says OK for root's file" grep -q '^OK shared/w.bin sha256:' "$WORK/v"
check "and reports the dispute" grep -q '^DISPUTED shared/w.bin shared/SHA256SUMS lists other bytes; its owner may not vouch' "$WORK/v"
check "nobody's verify sees it too" bash -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/shared/verify' 2> /dev/null | grep -q '^DISPUTED shared/w.bin'"
check "root's verify is still checked in full (the folder verify sees it)" bash -c "cat '$MNT/verify' 2> /dev/null | grep -q '^OK shared/w.bin'"
check "a fresh load of root's under that name is not refused" bash -c "rm '$MNT/shared/w.bin' && cp '$WORK/w.orig' '$MNT/shared/w.bin'"
check "and reads back" cmp "$MNT/shared/w.bin" "$WORK/w.orig"
check "the seal names no source" bash -c "! grep -q '\"source\"' '$MNT/shared/w.bin.seal'"

# nor do its own failures reach into a folder of another user's below it
check "root's model folder in the shared one" bash -c "mkdir '$MNT/shared/rm' && cp '$WORK/w.orig' '$MNT/shared/rm/w.bin' && (cd '$MNT/shared/rm' && sha256sum w.bin > '$WORK/rm-sums') && cp '$WORK/rm-sums' '$MNT/shared/rm/SHA256SUMS'"
check "its verify passes" bash -c "cat '$MNT/shared/rm/verify' > /dev/null"
sums "$WORK/ghost" "$wrong  rm/ghost" "$wrong  here-ghost"
check "nobody's source lists a name in root's folder and one of its own" nob bash -c "rm -f '$MNT/shared/SHA256SUMS' && cp '$WORK/ghost' '$MNT/shared/SHA256SUMS'"
check "root's folder still passes" bash -c "cat '$MNT/shared/rm/verify' > /dev/null"
cat "$MNT/shared/verify" > "$WORK/v-ghost" 2> /dev/null
check "the shared folder's report does not name root's folder" bash -c "! grep -q 'rm/ghost' '$WORK/v-ghost'"
check "but says what its own folder misses" grep -q '^MISSING shared/here-ghost listed in shared/SHA256SUMS' "$WORK/v-ghost"
sums "$WORK/broken" "not a SHA256SUMS line"
check "nobody's malformed source" nob bash -c "rm -f '$MNT/shared/SHA256SUMS' && cp '$WORK/broken' '$MNT/shared/SHA256SUMS'"
check "fails its own folder" bash -c "! cat '$MNT/shared/verify' > /dev/null 2>&1"
check "not root's below it" bash -c "cat '$MNT/shared/rm/verify' > /dev/null"
check "nobody's source gone" nob rm "$MNT/shared/SHA256SUMS"

# root's own source, and the folder owner's, still vouch for every file in the folder
check "mkdir a folder nobody owns" bash -c "mkdir -m 1777 '$MNT/nob' && chown nobody '$MNT/nob'"
check "root's file in nobody's folder" bash -c "head -c 5000 /dev/urandom > '$MNT/nob/r.bin' && chmod 644 '$MNT/nob/r.bin'"
sums "$WORK/owner" "$wrong  r.bin"
check "the folder's owner (nobody) writes a SHA256SUMS there" nob cp "$WORK/owner" "$MNT/nob/SHA256SUMS"
check "its owner may vouch: root's file there is quarantined" bash -c "! cat '$MNT/nob/r.bin' 2> /dev/null"
check "root's good SHA256SUMS vouches for nobody's file" bash -c "mkdir -m 1777 '$MNT/good' && setpriv --reuid=nobody --regid=nogroup --clear-groups -- bash -c \"echo theirs > '$MNT/good/t.txt'\" && (cd '$MNT/good' && sha256sum t.txt > '$WORK/good') && cp '$WORK/good' '$MNT/good/SHA256SUMS'"
check "and its seal names the source" grep -q '"source":[[:space:]]*"good/SHA256SUMS"' "$MNT/good/t.txt.seal"

# expect=require: a foreign source covers none of root's loads
check "unmount" unmount_vr
check "mount with expect=require" mount_vr "capacity=64M,allow_other,expect=require"
check "a shared sticky folder" mkdir -m 1777 "$MNT/req"
echo "root's bytes" > "$WORK/r.txt"
sums "$WORK/cover" "$(sha256sum < "$WORK/r.txt" | cut -c1-64)  r.txt" "$(echo theirs | sha256sum | cut -c1-64)  t.txt"
check "nobody's SHA256SUMS names root's coming file with its right digest" nob cp "$WORK/cover" "$MNT/req/SHA256SUMS"
refuse "root's load is not covered by it" "Input/output error" cp "$WORK/r.txt" "$MNT/req/r.txt"
check "verify says why" bash -c "cat '$MNT/req/verify' 2> /dev/null | grep -q '^FAILED req/r.txt no expected digest covers it (expect=require)'"
check "nobody's own listed file is covered" nob bash -c "echo theirs > '$MNT/req/t.txt' && cat '$MNT/req/t.txt' > /dev/null"

# under a signature only the signature vouches: nobody's own SHA256SUMS beside root's signed
# model does not make nobody's unsigned file part of it (nor is the SHA256SUMS itself)
check "unmount" unmount_vr
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/k.pem" 2> /dev/null
openssl pkey -in "$WORK/k.pem" -pubout -out "$WORK/k.pub" 2> /dev/null
mkdir "$WORK/model" && head -c 50000 /dev/urandom > "$WORK/model/w.bin"
check "a signed model" /usr/bin/python3 "$(dirname "$0")/oms_sign.py" "$WORK/k.pem" "$WORK/model"
chmod -R a+rX "$WORK/model"
check "mount with trust=" mount_vr "capacity=64M,allow_other,trust=$WORK/k.pub"
check "root loads it into a sticky folder" bash -c "mkdir -m 1777 '$MNT/pub' && cp '$WORK/model/w.bin' '$WORK/model/model.sig' '$MNT/pub/'"
check "its verify passes" bash -c "cat '$MNT/pub/verify' > /dev/null"
check "nobody adds an unsigned file" nob bash -c "echo evil > '$MNT/pub/evil.bin'"
check "which fails the signed model's verify" bash -c "cat '$MNT/pub/verify' 2> /dev/null | grep -q '^UNEXPECTED pub/evil.bin not listed in pub/model.sig'"
echo "$(echo evil | sha256sum | cut -c1-64)  evil.bin" > "$WORK/n/evil-sums"
chmod 644 "$WORK/n/evil-sums"
check "nobody's own SHA256SUMS lists it" nob cp "$WORK/n/evil-sums" "$MNT/pub/SHA256SUMS"
cat "$MNT/pub/verify" > "$WORK/v-pub" 2> /dev/null
check "the file stays unexpected" grep -q '^UNEXPECTED pub/evil.bin not listed in pub/model.sig' "$WORK/v-pub"
check "and so is the SHA256SUMS" grep -q '^UNEXPECTED pub/SHA256SUMS not listed in pub/model.sig' "$WORK/v-pub"
refuse "the report fails" "Input/output error" cat "$MNT/pub/verify"
check "from a subfolder too" nob bash -c "mkdir '$MNT/pub/sub' && echo evil > '$MNT/pub/sub/evil.bin' && cp '$WORK/n/evil-sums' '$MNT/pub/sub/SHA256SUMS'"
check "unexpected there as well" bash -c "cat '$MNT/pub/verify' 2> /dev/null | grep -q '^UNEXPECTED pub/sub/evil.bin not listed in pub/model.sig'"
check "vram-seal verify-model agrees on a copy" bash -c "cp -r '$WORK/model' '$WORK/copy' && cp '$WORK/n/evil-sums' '$WORK/copy/SHA256SUMS' && ! '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/copy' | grep -q '^OK SHA256SUMS' && '$BIN/vram-seal' verify-model --trust '$WORK/k.pub' '$WORK/copy' | grep -q '^UNEXPECTED SHA256SUMS'"

# sha256=off: a file sealed without a SHA-256, moved under a source that names it, is checked
# by taking its SHA-256 then (never compared as all zeros), and a right one is not disputed
check "unmount" unmount_vr
check "mount with sha256=off" mount_vr "capacity=64M,allow_other,sha256=off"
check "folders a and b" mkdir -m 1777 "$MNT/a" "$MNT/b"
head -c 100000 /dev/urandom > "$WORK/good.bin"
head -c 100000 /dev/urandom > "$WORK/bad.bin"
chmod 644 "$WORK/good.bin" "$WORK/bad.bin"
sums "$WORK/b-sums" "$(sha256sum < "$WORK/good.bin" | cut -c1-64)  good.bin" "$wrong  bad.bin"
check "b's SHA256SUMS" cp "$WORK/b-sums" "$MNT/b/SHA256SUMS"
check "both loaded in a" bash -c "cp '$WORK/good.bin' '$WORK/bad.bin' '$MNT/a/'"
check "sealed without a SHA-256" grep -q '"sha256":[[:space:]]*null' "$MNT/a/good.bin.seal"
check "both moved into b" bash -c "mv '$MNT/a/good.bin' '$MNT/a/bad.bin' '$MNT/b/'"
cat "$MNT/b/verify" > "$WORK/v-off" 2> /dev/null
check "the right one passes" grep -q '^OK b/good.bin sha256:' "$WORK/v-off"
check "the wrong one fails" grep -q '^FAILED b/bad.bin sha256 differs' "$WORK/v-off"
check "the right one's seal now holds its SHA-256" grep -q "\"sha256\":[[:space:]]*\"$(sha256sum < "$WORK/good.bin" | cut -c1-64)\"" "$MNT/b/good.bin.seal"
check "and names its source" grep -q '"source":[[:space:]]*"b/SHA256SUMS"' "$MNT/b/good.bin.seal"
check "it still reads" cmp "$MNT/b/good.bin" "$WORK/good.bin"
check "the wrong one is quarantined" bash -c "! cat '$MNT/b/bad.bin' > /dev/null 2>&1"
check "a second verify agrees" bash -c "cat '$MNT/b/verify' 2> /dev/null | grep -q '^OK b/good.bin'"
check "root's file in a shared folder" bash -c "mkdir -m 1777 '$MNT/c' && cp '$WORK/good.bin' '$MNT/c/'"
sums "$WORK/c-sums" "$(sha256sum < "$WORK/good.bin" | cut -c1-64)  good.bin"
check "nobody lists it with its right digest" nob cp "$WORK/c-sums" "$MNT/c/SHA256SUMS"
cat "$MNT/c/verify" > "$WORK/v-c" 2> /dev/null
check "which is no dispute" bash -c "grep -q '^OK c/good.bin' '$WORK/v-c' && ! grep -q DISPUTED '$WORK/v-c'"
finish
