#!/bin/bash
# test_restart.sh - what is resident survives the daemon (issue 27): the daemon runs under
# vram-keeper, which holds its device memory and the tree's record; kill -9, kill -TERM (an
# upgrade), bytes changed while it is down, a changed or foreign record, a kill mid-load, many
# restarts in a row, and an unmount that lets everything go.
. "$(dirname "$0")/lib.sh"

VRAM=$WORK/vram
mkdir -p "$WORK/nomnt"
mkdir -p "$VRAM"
mkdir -m 700 "$WORK/evicted"
OPTS="backend=mock,secret=$SECRET,audit=$AUDIT,capacity=256M,mock_vram=$VRAM,allow_other,evict_dir=$WORK/evicted"

# keeper_start: vram-keeper running the daemon in the foreground
keeper_start() {
	"$BIN/vram-keeper" --max-restarts 50 -- "$BIN/vram-residency" -f -o "$OPTS" "$MNT" \
		2>> "$WORK/daemon.log" &
	KEEPER=$!
	wait_served
}
# daemon_pid: the daemon the keeper runs now
daemon_pid() { pgrep -P "$KEEPER" -x vram-residency; }
# wait_served OLD_PID: until a daemon other than OLD_PID serves the mount's status (10 s)
wait_served() {
	for _ in $(seq 1 200); do
		local p
		p=$(daemon_pid)
		if [ -n "$p" ] && [ "$p" != "${1:-}" ] && cat "$MNT/status" > /dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	echo "no daemon serves $MNT:" >&2
	tail -20 "$WORK/daemon.log" >&2
	return 1
}
# restart SIGNAL: sends SIGNAL to the daemon; returns once the next one serves
restart() {
	local p
	p=$(daemon_pid)
	kill "-$1" "$p"
	wait_served "$p"
}
# snapshot FILE: what a user sees of the tree: names, modes, owners, sizes, links, attributes,
# seals and bytes
snapshot() {
	(
		cd "$MNT" || exit 1
		ls -lnR --time-style=+%s.%N . | grep -v '^total'
		for f in big sub/small SHA256SUMS; do
			cat "$f.seal"
			sha256sum "$f"
		done
		getfattr -d -m - big sub 2> /dev/null
		readlink lnk
	) > "$1"
}
kept_fds() { find "/proc/$KEEPER/fd" -mindepth 1 | wc -l; }
# down PID: stops the daemon PID with SIGTERM (its exit counts its coverage, as kill -9 would
# not) while the keeper is stopped; returns once it has exited
down() {
	kill -TERM "$1"
	for _ in $(seq 1 200); do
		[ "$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null)" = Z ] && return 0
		kill -0 "$1" 2> /dev/null || return 0
		sleep 0.05
	done
	return 1
}

check "the keeper starts the daemon" keeper_start
sleep 0.2
base_fds=$(kept_fds) # its own, and the empty tree's record
head -c 20000000 /dev/urandom > "$WORK/big"
printf 'TAMPER-TARGET-MARKER %s\n' "$(head -c 3000000 /dev/urandom | base64 -w0)" > "$WORK/victim"
cp "$WORK/big" "$MNT/big"
mkdir "$MNT/sub"
echo small > "$MNT/sub/small"
(cd "$MNT" && sha256sum big > SHA256SUMS)
setfattr -n user.origin -v "$(head -c 200 /dev/zero | tr '\0' o)" "$MNT/big"
setfattr -n user.x -v 1 "$MNT/sub"
ln -s big "$MNT/lnk"
chmod 640 "$MNT/big"
chmod 750 "$MNT/sub"
chown nobody "$MNT/sub/small"
sleep 0.2 # the record follows a change within 20 ms
check "a file under SHA256SUMS verifies before" grep -q "^OK big sha256:" "$MNT/verify"
snapshot "$WORK/before"

# a client maps big through the socket and keeps reading it while the daemon is away
coproc HOLD { "$BIN/vr-lease-hold" "$MNT/big"; }
read -r mapped <&"${HOLD[0]}"
check "the client maps big" [ "$mapped" = "mapped 20000000" ]
echo sum >&"${HOLD[1]}"
read -r sum_before <&"${HOLD[0]}"
want=$(sha256sum < "$WORK/big" | cut -d' ' -f1)
check "the client's map reads the file" [ "$sum_before" = "$want" ]

# --- kill -9: it comes back with everything, checked, nothing uploaded again ---
check "kill -9: the keeper restarts the daemon" restart KILL
snapshot "$WORK/after"
check "kill -9: names, modes, owners, times, attributes, links, seals and bytes are the same" \
	diff "$WORK/before" "$WORK/after"
check "kill -9: verify passes" grep -q "^OK big sha256:" "$MNT/verify"
check "kill -9: the SHA256SUMS still vouches for big" grep -q "^OK SHA256SUMS" "$MNT/verify"
check "kill -9: status says what came back" \
	bash -c "tr -d ' \t\n' < '$MNT/status' | grep -q '\"restored\":{\"files\":3,'"
check "kill -9: no load happened (nothing uploaded again)" \
	grep -q '^vram_residency_loads_total{.*} 0$' "$MNT/metrics"
check "kill -9: the audit log says so" grep -q '"event":"vram_restored".*"outcome":"ok"' "$AUDIT"
echo sum >&"${HOLD[1]}"
read -r sum_after <&"${HOLD[0]}"
check "the client's map read the same bytes throughout" [ "$sum_after" = "$want" ]
echo verify >&"${HOLD[1]}"
read -r verify_after <&"${HOLD[0]}"
check "its lease ended with the connection: a check on it says so (ECONNRESET)" \
	[ "$verify_after" = "verify -104" ]
exec {HOLD[1]}>&-
wait "$HOLD_PID" 2> /dev/null

# --- kill -TERM (an upgrade): the same ---
check "kill -TERM: the daemon is restarted" restart TERM
snapshot "$WORK/after"
check "kill -TERM: the tree is the same" diff "$WORK/before" "$WORK/after"
check "kill -TERM: the daemon said it left its memory to the keeper" \
	grep -q "stays with the keeper" "$WORK/daemon.log"

# --- bytes changed while the daemon was down: quarantined at the restore ---
cp "$WORK/victim" "$MNT/victim"
sleep 0.2
kill -STOP "$KEEPER"
p=$(daemon_pid)
down "$p"
hit=$(grep -obUa 'TAMPER-TARGET-MARKER' "$VRAM"/chunk-* | head -1)
printf 'X' | dd of="${hit%%:*}" bs=1 seek="$(echo "$hit" | cut -d: -f2)" conv=notrunc status=none
kill -CONT "$KEEPER"
check "tampered: the daemon comes back" wait_served "$p"
check "tampered: the changed file is quarantined" grep -q "^FAILED victim" "$MNT/verify"
refuse "tampered: its bytes are not served" "Input/output error" cat "$MNT/victim"
check "tampered: the others verify" grep -q "^OK big sha256:" "$MNT/verify"
check "tampered: audited as a failed check" \
	grep -q '"event":"seal_verification_failed","path":"victim"' "$AUDIT"
rm -f "$MNT/victim"
sleep 0.3 # the keeper has the record of the tree without it

# --- an evicted file comes back evicted, its host copy kept and checked at the restore ---
cp "$WORK/victim" "$MNT/ev"
check "evicted: vram-evict" "$BIN/vram-evict" "$MNT/ev"
sleep 0.2
check "evicted: kill -9" restart KILL
check "evicted: still evicted after the restart" [ "$(stat -c %b "$MNT/ev")" = 0 ]
check "evicted: status counts it" \
	bash -c "tr -d ' \t\n' < '$MNT/status' | grep -q '\"eviction\":{[^}]*\"files\":1,'"
check "evicted: verify checks it in host memory" grep -q "^UNEXPECTED ev not listed in SHA256SUMS; evicted" "$MNT/verify"
check "evicted: an open brings back its bytes, checked on the device" cmp "$WORK/victim" "$MNT/ev"
check "evicted: the restore is logged" grep -q "notice: ev restored: restored for its use" "$WORK/daemon.log"
"$BIN/vram-evict" "$MNT/ev" > /dev/null
sleep 0.2
kill -STOP "$KEEPER"
p=$(daemon_pid)
down "$p"
hit=$(grep -obUaH 'TAMPER-TARGET-MARKER' "$WORK/evicted"/chunk-* | head -1)
printf 'X' | dd of="${hit%%:*}" bs=1 seek="$(echo "$hit" | cut -d: -f2)" conv=notrunc status=none
kill -CONT "$KEEPER"
check "evicted, tampered: the daemon comes back" wait_served "$p"
check "evicted, tampered: quarantined at the restore" grep -q "^FAILED ev" "$MNT/verify"
refuse "evicted, tampered: its bytes are not served" "Input/output error" cat "$MNT/ev"
rm -f "$MNT/ev"
sleep 0.3

# --- a record changed at the keeper: refused, nothing restored, its memory let go ---
kill -STOP "$KEEPER"
p=$(daemon_pid)
down "$p"
for f in /proc/"$KEEPER"/fd/*; do
	case $(readlink "$f") in *vram-residency-record*)
		printf '{' | dd of="$f" bs=1 seek=1 conv=notrunc status=none ;;
	esac
done
kill -CONT "$KEEPER"
check "changed record: the daemon comes back" wait_served "$p"
check "changed record: refused with a reason" grep -q "record (generation [0-9]*) is refused: its MAC" "$WORK/daemon.log"
check "changed record: nothing was restored" [ -z "$(ls "$MNT")" ]
check "changed record: audited" grep -q '"event":"vram_restore_refused"' "$AUDIT"
sleep 0.3
check "changed record: the keeper let go of the memory" [ "$(kept_fds)" -le "$base_fds" ]
check "changed record: the chunk files went with it" [ -z "$(ls "$VRAM")" ]

# --- a permission taken away just before a crash stays taken away ---
echo private > "$MNT/private"
for i in 1 2 3; do
	chmod 644 "$MNT/private"
	sleep 0.1
	chmod 600 "$MNT/private"
	kill -KILL "$(daemon_pid)" # at once: the chmod was kept before it returned
	p=
	wait_served || break
	check "chmod then kill -9 ($i): the mode stays 600" [ "$(stat -c %a "$MNT/private")" = 600 ]
done

# --- an older record put in the newest one's place: refused by its generation ---
for f in /proc/"$KEEPER"/fd/*; do
	case $(readlink "$f") in *vram-residency-record*) cat "$f" > "$WORK/old-record" ;; esac
done
echo newer > "$MNT/newer"
sleep 0.3
kill -STOP "$KEEPER"
p=$(daemon_pid)
down "$p"
for f in /proc/"$KEEPER"/fd/*; do
	case $(readlink "$f") in *vram-residency-record*)
		# the old text in the current descriptor: truncated and rewritten through it
		/usr/bin/python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC); os.write(fd, open(sys.argv[2],"rb").read())' "$f" "$WORK/old-record" ;;
	esac
done
kill -CONT "$KEEPER"
check "older record: the daemon comes back" wait_served "$p"
check "older record: refused by its generation" grep -q "is refused: its generation ([0-9]*) is not the one the keeper names" "$WORK/daemon.log"
check "older record: nothing was restored" [ -z "$(ls "$MNT")" ]

# --- a record from another secret (a foreign daemon's): refused ---
cp "$WORK/big" "$MNT/again"
sleep 0.2
(umask 077 && head -c 32 /dev/urandom > "$SECRET.new" && mv "$SECRET.new" "$SECRET")
check "foreign record: the daemon comes back" restart TERM
check "foreign record: nothing was restored" [ ! -e "$MNT/again" ]
check "foreign record: refused as another secret's" grep -q "its MAC does not verify" "$WORK/daemon.log"

# --- keep= asked of a daemon that cannot keep: refused, or said ---
refuse "keep=on without a keeper is refused" "keep=on: no keeper" \
	env -u NOTIFY_SOCKET "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,keep=on" "$WORK/nomnt"
refuse "keep= takes auto, on or off" "use auto, on or off" \
	"$BIN/vram-residency" -f -o "backend=mock,keep=maybe" "$WORK/nomnt"
refuse "keep=on under a keeper needs secret=" "needs secret=" \
	env NOTIFY_SOCKET=/nonexistent "$BIN/vram-residency" -f -o "backend=mock,audit=$AUDIT,keep=on" "$WORK/nomnt"
refuse "keep=on with a notify socket nobody reads" "cannot reach the keeper" \
	env NOTIFY_SOCKET=/nonexistent "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,keep=on" "$WORK/nomnt"

# --- the keeper failing the daemon: descriptors it does not take, a record it cannot make ---
# (the C library failing on cue, in the daemon alone: the sends of a load's seal, then the
# memfd of a record; the files stay resident, and the log says they would not outlive it)
shim_run() {
	local spec=$1
	VR_FAIL=$spec LD_PRELOAD="$BIN/libvr-failshim.so" \
		ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 "$BIN/vram-keeper" -- \
		"$BIN/vram-residency" -f -o "$OPTS" "$WORK/m2" 2> "$WORK/shim.log" &
	local k=$! i
	for i in $(seq 1 100); do cat "$WORK/m2/status" > /dev/null 2>&1 && break; sleep 0.05; done
	head -c 300000 /dev/urandom > "$WORK/m2/f" 2> /dev/null
	sleep 0.3
	fusermount3 -u "$WORK/m2"
	wait "$k"
}
mkdir -p "$WORK/m2"
shim_run sendmsg:1
check "a keeper that takes no descriptor: said once" \
	grep -q "the keeper does not take descriptors" "$WORK/shim.log"
check "... and the file was resident, not kept" grep -q "sealed f" "$WORK/shim.log"
shim_run memfd_create:1
check "a record that cannot be made is said" \
	grep -q "record for the keeper could not be written" "$WORK/shim.log"
shim_run connect:1
check "a keeper that cannot be reached stops the start" \
	grep -q "cannot reach the keeper" "$WORK/shim.log"

# --- many restarts: no descriptor or memory is lost or leaked ---
cp "$WORK/big" "$MNT/big"
echo one > "$MNT/one"
sleep 0.2
fds=$(kept_fds)
used=$(df --output=used "$MNT" | tail -1)
for _ in $(seq 1 15); do
	restart KILL || break
done
check "15 restarts: the files are still there" cmp "$WORK/big" "$MNT/big"
check "15 restarts: the keeper holds as many descriptors" [ "$(kept_fds)" -eq "$fds" ]
check "15 restarts: device memory in use is the same" \
	[ "$(df --output=used "$MNT" | tail -1)" -eq "$used" ]
check "15 restarts: chunk files are not left behind" [ "$(find "$VRAM" -name 'chunk-*' | wc -l)" -le 40 ]

# --- an unmount ends it all: the keeper exits 0 and lets go ---
check "unmount" fusermount3 -u "$MNT"
wait "$KEEPER"
check "unmount: the keeper exits 0" [ $? -eq 0 ]
check "unmount: nothing is left in the chunk folder" [ -z "$(ls "$VRAM")" ]
# --- last, as in the tests' vram= folder the chunk files of what was not kept outlive the
# daemon (memfds do not): another user's share of the keeper, and a kill mid-load ---
check "mid-load: the keeper starts the daemon again" keeper_start
# --- another user's share of the keeper: nobody fills theirs, root's files are still kept ---
chmod 711 "$WORK" # nobody reaches the mount (the secret stays 0600)
mkdir -m 1777 "$MNT/shared"
setpriv --reuid=nobody --regid=nogroup --clear-groups -- /usr/bin/python3 -c '
import sys
for i in range(520):
    open("%s/shared/n%04d" % (sys.argv[1], i), "w").write("x")' "$MNT"
echo root-after > "$MNT/root-after"
sleep 0.3
check "share: nobody's files past a share are resident but said not kept" \
	grep -q "is resident but not kept across a restart: its owner's share" "$WORK/daemon.log"
check "share: a restart" restart TERM
check "share: root's file after nobody's came back" grep -qx root-after "$MNT/root-after"
n=$(find "$MNT/shared" -type f | wc -l)
check "share: nobody's kept files (an eighth of 4000) came back, no more ($n)" [ "$n" -eq 500 ]
rm -rf "$MNT/shared" "$MNT/root-after"

cp "$WORK/big" "$MNT/big"
( dd if=/dev/urandom bs=1M count=60 status=none | dd of="$MNT/partial" bs=128k status=none ) &
loader=$!
for _ in $(seq 1 100); do
	[ "$(stat -c %s "$MNT/partial" 2> /dev/null || echo 0)" -gt 4000000 ] && break
	sleep 0.02
done
check "mid-load: the daemon is restarted" restart KILL
wait "$loader" 2> /dev/null
check "mid-load: the partial file is not sealed" \
	bash -c "! cat '$MNT/partial.seal' > /dev/null 2>&1"
check "mid-load: the others verify" grep -q "^OK big sha256:" "$MNT/verify"
check "mid-load: unmount" fusermount3 -u "$MNT"
wait "$KEEPER"
check "mid-load: the keeper exits 0" [ $? -eq 0 ]

DAEMON_PID=
finish
