#!/bin/bash
# test_load_direct.sh - vram-load --direct (and the Python module's direct=True): sources read
# past the page cache where their filesystem allows, sealed exactly as cp seals them, at every
# size around the page and the staging slot; as root and as nobody; a source on tmpfs still
# loads. fincore (util-linux) is the oracle that the page cache was bypassed, and it is shown
# to see the pages a load without --direct leaves.
. "$(dirname "$0")/lib.sh"

client_python
carry_for_nobody

# a block device's filesystem for the sources: $WORK's own when it is one, else an ext4 image
# on a loop device (CI's /tmp may be tmpfs, whose pages are the page cache itself)
SRC=$WORK/src
LOOP=
direct_ok() { dd if="$1" of=/dev/null iflag=direct bs=4096 count=1 status=none 2> /dev/null; }
mkdir -p "$SRC"
head -c 8192 /dev/urandom > "$SRC/probe"
if [ "$(stat -f -c %T "$SRC")" = tmpfs ] || ! direct_ok "$SRC/probe"; then
	truncate -s 160M "$WORK/fs.img"
	if mkfs.ext4 -q -F "$WORK/fs.img" && LOOP=$(losetup -f --show "$WORK/fs.img") &&
		mount "$LOOP" "$SRC"; then
		chmod 755 "$SRC"
	else
		# the loads still run (read as usual); what cannot be seen is the bypass
		echo "NOTE: no block device's filesystem here (no loop device): the page-cache checks do not run"
		NOCACHE_CHECKS=1
	fi
fi
cleanup_loop() {
	[ -z "$LOOP" ] && return
	umount "$SRC" 2> /dev/null
	losetup -d "$LOOP" 2> /dev/null
}
trap 'cleanup_loop; cleanup' EXIT
rm -f "$SRC/probe"

# sizes around a sector, a page, the mock's 4 MiB slot and the GPU's 8 MiB one, odd ones
mkdir -p "$SRC/model/sub"
for n in 0 1 511 512 4095 4096 4097 4194303 4194304 4194305 8388608 8392705 20000003; do
	head -c "$n" /dev/urandom > "$SRC/model/f$n"
done
# sparse: holes between islands of data
truncate -s 16M "$SRC/model/sub/sparse"
for at in 0 5 13; do
	head -c 70000 /dev/urandom | dd of="$SRC/model/sub/sparse" bs=1M seek="$at" conv=notrunc \
		status=none
done
chmod -R a+rX "$SRC"

# bypassed DESCRIPTION: the page cache holds none of the sources' pages (where it can be seen)
bypassed() {
	[ -n "${NOCACHE_CHECKS:-}" ] && return
	check "$1" test "$(cached "$SRC/model")" = 0
}
# evict DIR: its files' pages out of the page cache (theirs only: the machine's stay)
evict() {
	find "$1" -type f -exec "$PY" -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)' {} +
}
# cached DIR: the pages of DIR's files in the page cache, in all
cached() { find "$1" -type f -exec fincore -n -b -o PAGES {} + | awk '{s += $1} END {print s + 0}'; }
# sums DIR: sha256sum's and fsverity's view of DIR's files, as seal_facts prints them
sums() {
	(cd "$1" && find . -type f | sort | while read -r f; do
		printf '%s %s %s %s\n' "$f" "$(stat -c %s "$f")" \
			"$(sha256sum < "$f" | cut -d' ' -f1)" "$(fsverity digest "$f" | cut -d' ' -f1)"
	done)
}

check "mount" mount_vr "capacity=256M,allow_other"
expect=$(sums "$SRC/model")
evict "$SRC/model"
bypassed "the sources are out of the page cache before the load"
check "vram-load --direct loads the tree" "$BIN/vram-load" -j 2 --direct "$SRC/model" "$MNT/direct"
bypassed "the page cache was bypassed: no page of the sources is cached"
check "its seals are sha256sum's and fsverity digest's" \
	test "$(seal_facts "$MNT/direct")" = "$expect"
check "read back, every file equals its source" diff -r "$SRC/model" "$MNT/direct" \
	-x '*.seal' -x verify -x status -x metrics
check "verify passes for each" \
	test "$(grep -c '^OK ' "$MNT/direct/verify")" = "$(find "$SRC/model" -type f | wc -l)"
# --sparse=never: cp skips a sparse file's holes by seeking and ends it with an ftruncate,
# which the mount takes as bytes reserved and never written (docs/filesystem.md)
check "cp -r of the same tree" cp -r --sparse=never "$SRC/model" "$MNT/by-cp"
check "identical seals to cp -r's" test "$(seal_facts "$MNT/direct")" = "$(seal_facts "$MNT/by-cp")"

# the oracle can fail: a load without --direct leaves the pages cached
evict "$SRC/model"
check "without --direct too" "$BIN/vram-load" "$SRC/model" "$MNT/buffered"
[ -n "${NOCACHE_CHECKS:-}" ] || check "and that load leaves the sources' pages cached ($(cached "$SRC/model"))" \
	test "$(cached "$SRC/model")" -gt 5000
rm -rf "$MNT/by-cp" "$MNT/buffered"

# nobody: its own sources, its own folder
mkdir -p "$MNT/nobody" && chown nobody "$MNT/nobody"
evict "$SRC/model"
check "nobody loads with --direct" as_nobody "$NBIN/vram-load" --direct "$SRC/model" \
	"$MNT/nobody/m"
check "nobody's seals are the same" test "$(seal_facts "$MNT/nobody/m")" = "$expect"
bypassed "bypassing the page cache for nobody as well"
check "nobody's files are nobody's" test "$(stat -c %U "$MNT/nobody/m/f4097")" = nobody
rm -rf "$MNT/nobody"

# a source where O_DIRECT means nothing (tmpfs, a filesystem without it): loaded as usual
SHM=$(mktemp -d /dev/shm/vr-direct.XXXXXX)
head -c 5000001 /dev/urandom > "$SHM/t"
check "a tmpfs source loads with --direct" "$BIN/vram-load" --direct "$SHM/t" "$MNT/t"
check "and is sealed as sha256sum says" \
	test "$(json_field "$MNT/t.seal" sha256)" = "$(sha256sum < "$SHM/t" | cut -d' ' -f1)"
rm -rf "$SHM"

# the Python module: direct=True, and a bad jobs refused before anything
evict "$SRC/model"
check "vram_client.load(..., direct=True)" "$PY" -c '
import sys, vram_client
n = vram_client.load(sys.argv[1], sys.argv[2], jobs=3, direct=True)
assert n == int(sys.argv[3]), n' "$SRC/model" "$MNT/py" "$(find "$SRC/model" -type f -printf '%s\n' |
	awk '{s += $1} END {print s}')"
check "its seals are the same" test "$(seal_facts "$MNT/py")" = "$expect"
bypassed "and it bypassed the page cache"
check "jobs=-1 is refused with ValueError" "$PY" -c '
import sys, vram_client
try:
    vram_client.load(sys.argv[1], sys.argv[2], jobs=-1)
except ValueError:
    sys.exit(0)
sys.exit(1)' "$SRC/model" "$MNT/never"
check "and made nothing" test ! -e "$MNT/never"

check "unmount" unmount_vr
finish
