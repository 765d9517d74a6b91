#!/bin/sh
# mount.sh - the README's first command: installs, builds, and mounts vram-residency at /run/vram.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
mnt=${VR_MOUNT:-/run/vram}
secret=${VR_SECRET:-/etc/vram-residency/secret}
audit=${VR_AUDIT:-/var/log/vram-residency/audit.log}
# the detached daemon's messages (no syslog listens on many machines)
log=${VR_LOG:-/var/log/vram-residency/daemon.log}
if [ ! -e "$secret" ]; then
	# a fresh master secret, readable by its owner only, as the daemon demands
	mkdir -p "$(dirname "$secret")"
	(umask 077 && head -c 32 /dev/urandom > "$secret")
	echo "mount.sh: created a new master secret at $secret (keep it; seals verify only with it)"
fi
# a stale mount (the daemon died: "Transport endpoint is not connected") is cleared first
if grep -q " $mnt fuse.vram-residency " /proc/mounts 2> /dev/null && ! stat "$mnt" > /dev/null 2>&1; then
	echo "mount.sh: $mnt is a stale mount (its daemon is gone); unmounting it"
	fusermount3 -u "$mnt" 2> /dev/null || umount -l "$mnt"
fi
mkdir -p "$mnt" "$(dirname "$audit")" "$(dirname "$log")"
if mountpoint -q "$mnt"; then
	echo "mount.sh: $mnt is already mounted; unmount it first with: fusermount3 -u $mnt" >&2
	exit 1
fi
build/bin/vram-residency -o "secret=$secret,audit=$audit,log=$log${VR_OPTIONS:+,$VR_OPTIONS}" "$mnt"
echo "mount.sh: mounted at $mnt (messages: $log); try: cp FILE $mnt/ && cat $mnt/verify $mnt/status"
