#!/bin/bash
# test_fstab.sh - mount(8)'s way in: "mount -t fuse3 vram-residency#gpu0 DIR -o ..." and an
# fstab line, through mount.fuse3; umount stops the daemon cleanly.
. "$(dirname "$0")/lib.sh"

# mount(8) runs mount.fuse3, and that the program, with a fixed safe PATH: a link where that
# PATH looks, named for this run only, removed at the end
PROG=vram-residency-e2e-$$
LINK=/usr/local/bin/$PROG
mkdir -p /usr/local/bin
ln -s "$BIN/vram-residency" "$LINK"
fstab_cleanup() {
	rm -f "$LINK"
	cleanup
}
trap fstab_cleanup EXIT
OPTS="backend=mock,capacity=64M,secret=$SECRET,audit=$AUDIT"
# stopped: umount, then the daemon's last record (it was detached by mount.fuse3)
stopped() {
	for _ in $(seq 1 50); do
		[ "$(grep -c '"event":"daemon_stopped"' "$AUDIT")" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

check "mount -t fuse3 PROG#gpu0" mount -t fuse3 "$PROG#gpu0" "$MNT" -o "$OPTS" 2> "$WORK/mount.log"
check "mounted" mountpoint -q "$MNT"
check "the source was taken" grep -q "source gpu0" "$WORK/mount.log"
head -c 100000 /dev/urandom > "$WORK/f.bin"
check "loads" cp "$WORK/f.bin" "$MNT/f.bin"
check "seals" test "$(json_field "$MNT/f.bin.seal" fsverity)" = "$(fsverity digest "$WORK/f.bin" | cut -d' ' -f1)"
check "umount" umount "$MNT"
check "the daemon stopped cleanly" stopped 1

refuse "a source that names another device than device=" "disagree" \
	mount -t fuse3 "$PROG#gpu2" "$MNT" -o "$OPTS,device=1"
check "nothing mounted" bash -c "! mountpoint -q '$MNT'"

printf '%s#gpu0 %s fuse3 %s,noauto 0 0\n' "$PROG" "$MNT" "$OPTS" > "$WORK/fstab"
check "an fstab line mounts (mount DIR)" mount --fstab "$WORK/fstab" "$MNT" 2>> "$WORK/mount.log"
check "mounted from fstab" cp "$WORK/f.bin" "$MNT/g.bin"
check "umount DIR" umount "$MNT"
check "stopped again" stopped 2
finish
