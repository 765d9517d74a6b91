#!/bin/bash
# test_load_review.sh - regressions found by a review of vram-load: a load onto itself keeps the
# file, a source cut short while loading is never reported sealed, several SRCs are all or
# nothing together, and the rollback removes only what the load made, even when another user
# swaps a symbolic link on the way.
. "$(dirname "$0")/lib.sh"

chmod 755 "$WORK"
carry_for_nobody

check "mount" mount_vr "capacity=512M,allow_other"

# 1. a file loaded onto itself (cp says "are the same file"): it must still be there, whole
head -c 3000001 /dev/urandom > "$WORK/a"
mkdir "$MNT/self"
cp "$WORK/a" "$MNT/self/a"
sum=$(sha256sum < "$WORK/a")
"$BIN/vram-load" "$MNT/self/a" "$MNT/self/a" > "$WORK/self.out" 2>&1
check "vram-load F F keeps F ($(cat "$WORK/self.out"))" test "$(cat "$MNT/self/a" 2> /dev/null | sha256sum)" = "$sum"
# and a tree loaded onto itself
mkdir -p "$MNT/selft/d"
for i in 1 2 3; do cp "$WORK/a" "$MNT/selft/d/f$i"; done
"$BIN/vram-load" "$MNT/selft/d" "$MNT/selft/" > "$WORK/self.out" 2>&1
for i in 1 2 3; do
	check "vram-load of a tree onto itself keeps d/f$i" test "$(cat "$MNT/selft/d/f$i" 2> /dev/null | sha256sum)" = "$sum"
done
rm -rf "$MNT/self" "$MNT/selft"

# 2. a source truncated while the daemon reads it: never exit 0 with the file left INCOMPLETE
mkdir -p "$WORK/cut"
head -c 200000000 /dev/urandom > "$WORK/cut/big"
echo small > "$WORK/cut/small"
"$BIN/vram-load" -j 1 "$WORK/cut" "$MNT/" > "$WORK/cut.out" 2>&1 &
p=$!
for _ in $(seq 1 400); do
	[ -e "$MNT/cut/big" ] && break
	sleep 0.005
done
truncate -s 1000 "$WORK/cut/big"
wait $p
rc=$?
if [ $rc -eq 0 ]; then
	check "an exit 0 means every file is sealed ($(tr '\n' ' ' < "$WORK/cut.out"))" \
		bash -c "! grep -q INCOMPLETE '$MNT/cut/verify'"
else
	check "a failed load leaves nothing of the tree" test ! -e "$MNT/cut"
fi
rm -rf "$MNT/cut"

# 3. several SRCs: a failure in the last removes what the first ones made
mkdir -p "$WORK/ok" "$WORK/bad"
head -c 100000 /dev/urandom > "$WORK/ok/x"
echo bad > "$WORK/bad/z$(printf '\001')"
mkdir "$MNT/multi"
"$BIN/vram-load" "$WORK/ok" "$WORK/bad" "$MNT/multi/" > /dev/null 2>&1
check "vram-load SRC1 SRC2 DEST where SRC2 fails leaves nothing of SRC1" test ! -e "$MNT/multi/ok"
rm -rf "$MNT/multi"

# 4. the rollback follows a link another user swapped meanwhile: it must not remove root's file
# elsewhere on the mount (a file the load did not make). Timing: the small file fails at once
# (a folder of nobody's holds its name), the big one keeps the load going while nobody swaps
# the link; a swap too early or too late only makes this pass without proving anything.
mkdir -p "$MNT/vault" "$WORK/atk/m"
echo "root's model" > "$MNT/vault/F"
chmod 0777 "$MNT"
mkdir -m 0777 "$MNT/team"
chmod 0777 "$MNT/team"
head -c 200000000 /dev/urandom > "$WORK/atk/m/F"
echo z > "$WORK/atk/m/zz"
as_nobody mkdir -p "$MNT/team/nbd/zz"
as_nobody ln -s nbd "$MNT/team/m"
"$BIN/vram-load" -j 2 "$WORK/atk/m" "$MNT/team/" > /dev/null 2>&1 &
p=$!
sleep 0.08
as_nobody ln -s ../vault "$MNT/team/m.new"
as_nobody mv -T "$MNT/team/m.new" "$MNT/team/m"
wait $p
check "a failed load's rollback never removes a file it did not make (vault/F)" test -e "$MNT/vault/F"

# eventually_used N: status's used_bytes is N within 10 s (a killed loader's imports end as
# the daemon sees the hang-up)
eventually_used() {
	for _ in $(seq 1 100); do
		[ "$(json_field "$MNT/status" used_bytes)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# the import's files removed by their owner while they load (and the loader killed too): each
# import fails, the daemon lives, and nothing of them is left (a file removed before its
# staging was opened crashed the daemon: any user could take everyone's models down)
mkdir -p "$WORK/rm4"
for i in 1 2 3 4; do head -c 40000000 /dev/urandom > "$WORK/rm4/p$i"; done
chmod -R a+rX "$WORK/rm4"
mkdir -m 1777 "$MNT/pub"
used0=$(json_field "$MNT/status" used_bytes)
for round in 1 2 3 4 5 6; do
	as_nobody "$NBIN/vram-load" -j 4 "$WORK/rm4" "$MNT/pub/k$round" > /dev/null 2>&1 &
	p=$!
	[ $((round % 2)) = 0 ] && { sleep 0.05; kill -9 $p 2> /dev/null; }
	for _ in $(seq 1 30); do
		as_nobody rm -f "$MNT/pub/k$round/p1" "$MNT/pub/k$round/p2" "$MNT/pub/k$round/p3" \
			"$MNT/pub/k$round/p4" 2> /dev/null
		sleep 0.01
	done
	wait $p 2> /dev/null
	check "round $round: the daemon lives through imports removed as they load" \
		kill -0 "$DAEMON_PID"
done
as_nobody rm -rf "$MNT/pub/k1" "$MNT/pub/k2" "$MNT/pub/k3" "$MNT/pub/k4" "$MNT/pub/k5" \
	"$MNT/pub/k6"
check "every removed import's memory given back" eventually_used "$used0"
chmod 0755 "$MNT"

finish
