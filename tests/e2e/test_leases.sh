#!/bin/bash
# test_leases.sh - what a lease holds and what it may not: the owner's revoke, memory a client
# keeps mapped after its lease (counted until it lets go), a daemon that stops under a live
# mapping, and imports over another user's file in a sticky folder.
. "$(dirname "$0")/lib.sh"

chmod 755 "$WORK" # so an unprivileged user reaches the mount (the secret stays 0600)
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
HOLD=$BIN/vr-lease-hold

# hold_start NAME CMD...: runs CMD (vr-lease-hold) with its commands on fd 5 and its answers on
# fd 6, and reads its first line into FIRST; hold_end closes them and waits for it
hold_start() {
	local name=$1
	shift
	mkfifo "$WORK/$name.in" "$WORK/$name.out"
	"$@" < "$WORK/$name.in" > "$WORK/$name.out" 2>> "$WORK/hold.log" &
	HOLD_PID=$!
	exec 5> "$WORK/$name.in" 6< "$WORK/$name.out"
	read -r -t 30 FIRST <&6 || FIRST="(no answer)"
}
hold_end() {
	exec 5>&- 6<&-
	wait "$HOLD_PID"
}
# ask LINE: sends LINE to the holder, prints its answer
ask() {
	local reply
	echo "$1" >&5
	read -r -t 30 reply <&6 || reply="(no answer)"
	echo "$reply"
}
status_of() { json_field "$MNT/status" "$1"; }
# freed_to N: polls status until held_by_clients_bytes is N (a holder's exit is asynchronous)
freed_to() {
	for _ in $(seq 1 100); do
		[ "$(status_of held_by_clients_bytes)" = "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

head -c 60000 /dev/urandom > "$WORK/src" # one chunk of 64 KiB on the mock
chmod 644 "$WORK/src"
want=$(sha256sum "$WORK/src" | cut -c1-64)
CHUNK=65536

check "mount with allow_other" mount_vr "capacity=64M,allow_other"

# --- revoke: the owner (or root) ends another user's lease (issue 22, item 10) ---
cp "$WORK/src" "$MNT/pub" && chmod 644 "$MNT/pub"
hold_start a as_nobody "$HOLD" "$MNT/pub"
check "nobody maps root's 0644 file" test "$FIRST" = "mapped 60000"
check "nobody's mapping reads the file" test "$(ask sum)" = "$want"
refuse "root's rm is blocked by nobody's lease" "busy" rm "$MNT/pub"
check "nobody may not end the leases of root's file (EPERM)" \
	test "$(as_nobody "$HOLD" - <<< "revoke $MNT/pub")" = "revoke -1 0"
check "the refused revoke is audited" audit_has vram_revoke_refused pub
check "root ends nobody's lease" test "$("$HOLD" - <<< "revoke $MNT/pub")" = "revoke 0 1"
check "the revoke is audited" audit_has vram_export_revoked pub
refuse "nobody may not map it again before root's update (EAGAIN)" "temporarily unavailable" \
	as_nobody "$HOLD" "$MNT/pub" < /dev/null
used=$(status_of used_bytes)
check "root's rm then succeeds" rm "$MNT/pub"
check "nobody's mapping reads zeros after the rm" test "$(ask sum)" = zeros
check "nobody's next call says its lease was ended (ESTALE)" test "$(ask verify)" = "verify -116"

# --- memory a client still maps stays counted until it is let go (issue 22, item 12) ---
check "status counts the removed file's memory nobody still maps" \
	test "$(status_of held_by_clients_bytes)" = "$CHUNK"
check "and df still counts it used" test "$(status_of used_bytes)" = "$used"
hold_end
check "nobody's exit frees it" freed_to 0
check "and df shows it free" test "$(status_of used_bytes)" = $((used - CHUNK))
cp "$WORK/src" "$MNT/pub" && chmod 644 "$MNT/pub"
check "nobody maps the new version" test "$(as_nobody "$HOLD" "$MNT/pub" < /dev/null)" = "mapped 60000"
rm "$MNT/pub"

cp "$WORK/src" "$MNT/kept"
used=$(status_of used_bytes)
hold_start b "$HOLD" "$MNT/kept"
check "a client maps a file" test "$FIRST" = "mapped 60000"
check "it unmaps through the library, keeping a mapping of its own" test "$(ask keep)" = "unmap 0"
check "rm after the lease ended" rm "$MNT/kept"
check "the kept mapping reads zeros" test "$(ask sum)" = zeros
check "the memory it keeps is counted held by clients" \
	test "$(status_of held_by_clients_bytes)" = "$CHUNK"
check "and used, as df shows" test "$(status_of used_bytes)" = "$used"
hold_end
check "and freed when it exits" freed_to 0
check "df shows it free then" test "$(status_of used_bytes)" = $((used - CHUNK))

# --- a daemon that stops under a live mapping leaves the lessee its bytes (issue 23) ---
cp "$WORK/src" "$MNT/served" && chmod 644 "$MNT/served"
hold_start c as_nobody "$HOLD" "$MNT/served"
check "nobody maps a file" test "$FIRST" = "mapped 60000"
check "unmount under the live mapping, daemon exits 0" unmount_vr
check "the mapping still reads the bytes it mapped" test "$(ask sum)" = "$want"
check "its next call says the daemon is gone (ECONNRESET)" test "$(ask verify)" = "verify -104"
hold_end

# --- an import over another user's file in a sticky folder (issue 22, item 5) ---
check "mount again" mount_vr "capacity=64M,allow_other"
mkdir "$MNT/tmp" && chmod 1777 "$MNT/tmp"
printf root > "$MNT/tmp/roots" && chmod 666 "$MNT/tmp/roots"
refuse "nobody may not import over root's file in a sticky 1777 folder" \
	"Operation not permitted" as_nobody "$BIN/vram-load" "$WORK/src" "$MNT/tmp/roots"
check "root's bytes stay" test "$(cat "$MNT/tmp/roots")" = root
check "the refused import is audited" audit_has vram_import_refused tmp/roots
check "nobody imports a new name there" as_nobody "$BIN/vram-load" "$WORK/src" "$MNT/tmp/mine"
check "and replaces its own file" as_nobody "$BIN/vram-load" "$WORK/src" "$MNT/tmp/mine"
check "root replaces nobody's file there" "$BIN/vram-load" "$WORK/src" "$MNT/tmp/mine"
check "final unmount" unmount_vr
finish
