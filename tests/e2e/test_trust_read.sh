#!/bin/bash
# test_trust_read.sh - reading what is not yours (issue 22, item 3), as nobody on an
# allow_other mount: a seal is as readable as its file, so the SHA-256 of a file nobody may
# not read is no oracle; verify reports and checks only what its caller could open for
# reading, says how many it skipped, and root's report keeps everything.
. "$(dirname "$0")/lib.sh"
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"

check "mount with allow_other" mount_vr "capacity=64M,allow_other"
check "a world-readable folder" bash -c "mkdir -m 755 '$MNT/pub' && echo hello > '$MNT/pub/open.txt'"
check "root's private file in it" bash -c "echo 'the PIN is 4711' > '$MNT/pub/pin.txt' && chmod 600 '$MNT/pub/pin.txt'"
check "root's 0700 folder" bash -c "mkdir -m 700 '$MNT/priv' && head -c 5000 /dev/urandom > '$MNT/priv/w.bin'"
check "its seal exists for root" grep -q '"sha256"' "$MNT/pub/pin.txt.seal"
check "the private file's seal is mode 0400 like the file's read bits" test "$(stat -c %a "$MNT/pub/pin.txt.seal")" = 400
check "the open file's seal is 0444" test "$(stat -c %a "$MNT/pub/open.txt.seal")" = 444
refuse "nobody reads the private file's seal" "Permission denied" as_nobody cat "$MNT/pub/pin.txt.seal"
check "nobody reads the open file's seal" as_nobody grep -q '"sha256"' "$MNT/pub/open.txt.seal"
check "chmod 644 opens the seal with the file" bash -c "chmod 644 '$MNT/pub/pin.txt' && sleep 1.1 && setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/pub/pin.txt.seal' > /dev/null"
check "chmod 600 again" chmod 600 "$MNT/pub/pin.txt"

# verify, as nobody: the readable files only, and how many were skipped
sleep 1.1 # the kernel's attribute cache
check "nobody's root verify runs" bash -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/verify' > '$WORK/v-nobody'"
check "it checks the open file" grep -q '^OK pub/open.txt sha256:' "$WORK/v-nobody"
check "it never names the private file" bash -c "! grep -q 'pin.txt' '$WORK/v-nobody'"
check "nor what lies in the 0700 folder" bash -c "! grep -q 'priv' '$WORK/v-nobody'"
# counted only where nobody could list it: pub/pin.txt, not what the 0700 folder holds
check "it says it skipped one it could see listed" grep -q '^SKIPPED \. 1 files this user may not read, not checked' "$WORK/v-nobody"
check "nobody's verify of pub" bash -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/pub/verify' > '$WORK/v-pub'"
check "skips one there" grep -q '^SKIPPED pub 1 files this user may not read' "$WORK/v-pub"
check "root's verify checks all three" bash -c "cat '$MNT/verify' > '$WORK/v-root' && grep -c '^OK ' '$WORK/v-root' | grep -qx 3"
check "and skips none" bash -c "! grep -q '^SKIPPED' '$WORK/v-root'"

# a SHA256SUMS nobody may not read: its names stay private too
(cd "$MNT/pub" && sha256sum open.txt pin.txt > "$WORK/SHA256SUMS")
echo "0000000000000000000000000000000000000000000000000000000000000000  secret-plan.bin" >> "$WORK/SHA256SUMS"
check "a private SHA256SUMS" bash -c "cp '$WORK/SHA256SUMS' '$MNT/pub/SHA256SUMS' && chmod 600 '$MNT/pub/SHA256SUMS'"
check "root's verify says MISSING" bash -c "cat '$MNT/pub/verify' | grep -q '^MISSING pub/secret-plan.bin'"
check "nobody's verify does not name it" bash -c "setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/pub/verify' 2> /dev/null | grep -c secret-plan | grep -qx 0"
# a SHA256SUMS of nobody's own, listing names below a folder nobody may not search, tells
# nothing of which exist there: neither MISSING nor present
check "a sticky folder with root's 0700 folder in it" bash -c "mkdir -m 1777 '$MNT/o' && mkdir -m 700 '$MNT/o/priv' && echo secret > '$MNT/o/priv/secret.bin'"
printf '%s  priv/secret.bin\n%s  priv/nothere.bin\n' "$(echo secret | sha256sum | cut -c1-64)" "$(echo x | sha256sum | cut -c1-64)" > "$WORK/probe"
chmod 644 "$WORK/probe"
check "nobody lists a name there that exists and one that does not" setpriv --reuid=nobody --regid=nogroup --clear-groups -- cp "$WORK/probe" "$MNT/o/SHA256SUMS"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat "$MNT/o/verify" > "$WORK/v-probe" 2> /dev/null
check "nobody's report names neither" bash -c "! grep -q 'priv/' '$WORK/v-probe'"
check "and counts no file it may not see" bash -c "! grep -q '^SKIPPED' '$WORK/v-probe'"
check "root's, nor (priv is root's, not the source owner's to promise)" bash -c "cat '$MNT/o/verify' 2> /dev/null | grep -c '^MISSING' | grep -qx 0"
# a listed link is followed as its reader would follow it: no digest oracle through verify
check "a shared sticky folder" mkdir -m 1777 "$MNT/shared"
check "root's 0600 PIN in a 0700 folder" bash -c "mkdir -m 700 '$MNT/vault' && echo 1234 > '$MNT/vault/pin' && chmod 600 '$MNT/vault/pin'"
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
check "nobody links to it" nob bash -c "mkdir '$MNT/shared/n' && ln -s ../../vault/pin '$MNT/shared/n/w'"
guess() {
	echo "$(echo "$1" | sha256sum | cut -c1-64)  w" > "$WORK/guess"
	chmod 644 "$WORK/guess"
	nob bash -c "rm -f '$MNT/shared/n/SHA256SUMS'; cp '$WORK/guess' '$MNT/shared/n/SHA256SUMS'"
	nob cat "$MNT/shared/n/verify" 2> /dev/null | grep -v '^OK n/SHA256SUMS\|^OK shared/n/SHA256SUMS'
}
wrong=$(guess 1233)
right=$(guess 1234)
check "nobody's verify fails for a wrong guess" test -n "$wrong"
check "and says the same for the right one" test "$wrong" = "$right"
check "that it may not follow the link" grep -q "may not follow or read" <<< "$right"
check "root's verify follows it and passes (the right guess)" bash -c "cat '$MNT/shared/n/verify' > /dev/null"
# nothing below a folder the reader may not search is named, sources and links included
check "root's linked SHA256SUMS inside the 0700 folder" ln -s w.bin "$MNT/priv/SHA256SUMS"
check "fails root's verify" bash -c "cat '$MNT/verify' 2> /dev/null | grep -q '^FAILED priv/SHA256SUMS is a symbolic link'"
check "nobody's verify does not name it" bash -c "! setpriv --reuid=nobody --regid=nogroup --clear-groups -- cat '$MNT/verify' 2> /dev/null | grep -q priv/"
check "unmount, daemon exits 0" unmount_vr
finish
