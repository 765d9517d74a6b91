#!/bin/bash
# test_install.sh - cmake --install into a prefix gives working programs, the client library
# (found by the tools and the Python module without ldconfig), the manual pages and the unit;
# into /usr/local (in a mount namespace of its own, over an empty /usr/local), what a user
# then types works with no environment set: import vram_client in the system's python3,
# man vram-residency, vram-map --version.
. "$(dirname "$0")/lib.sh"

BUILD=$(cd "$BIN/.." && pwd)
P=$WORK/prefix
# where Debian's python3 looks below a prefix
PYDIR=$(/usr/bin/python3 -c 'import sys; print("lib/python%d.%d/dist-packages" % sys.version_info[:2])')
check "cmake --install" cmake --install "$BUILD" --prefix "$P" > "$WORK/install.log"
for f in bin/vram-residency bin/vram-seal bin/vram-map bin/vram-load include/vram_client.h \
	lib/libvram-client.so.1 "$PYDIR/vram_client.py" \
	lib/systemd/system/vram-residency@.service share/man/man8/vram-residency.8 \
	share/man/man1/vram-seal.1 share/man/man1/vram-map.1 share/man/man1/vram-load.1; do
	check "installed: $f" test -e "$P/$f"
done
check "the installed unit runs the installed daemon" \
	grep -q "^ExecStart=$P/bin/vram-residency " "$P/lib/systemd/system/vram-residency@.service"
check "man vram-residency renders" bash -c "man -l '$P/share/man/man8/vram-residency.8' | grep -q 'socket='"
check "the daemon runs" "$P/bin/vram-residency" --version
check "vram-map finds the library" bash -c "! ldd '$P/bin/vram-map' | grep -q 'not found'"
check "mount with the installed daemon" "$P/bin/vram-residency" -o "backend=mock,capacity=64M,secret=$SECRET,audit=$AUDIT" "$MNT"
head -c 5000 /dev/urandom > "$WORK/f.bin"
cp "$WORK/f.bin" "$MNT/f.bin"
check "installed vram-map maps it" test \
	"$("$P/bin/vram-map" "$MNT/f.bin" | cut -d' ' -f1)" = "$(fsverity digest "$WORK/f.bin" | cut -d' ' -f1)"
# (a sanitizer build's library needs its runtime loaded first into the interpreter)
preload=$(ldd "$P/lib/libvram-client.so.1" | awk '/libasan/ {print $3}')
check "the installed Python module finds the installed library" bash -c \
	"env -u VRAM_CLIENT_LIB ${preload:+LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0} PYTHONPATH='$P/$PYDIR' /usr/bin/python3 -c \"import vram_client; print(vram_client.Client('$MNT').map('f.bin').size)\" | grep -qx 5000"

# the default prefix, as a user installs: nothing in the environment but the usual PATH
cat > "$WORK/usr-local.sh" <<SH
set -e
mount -t tmpfs tmpfs /usr/local
cmake --install '$BUILD' --prefix /usr/local > '$WORK/install-usr-local.log'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH VRAM_CLIENT_LIB MANPATH
cd /
echo "python: \$(${preload:+LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0} /usr/bin/python3 -c "import vram_client; print(vram_client.Client('$MNT').map('f.bin').size)")"
echo "man: \$(man vram-residency 2> /dev/null | grep -c 'socket=')"
echo "vram-map: \$(vram-map --version)"
echo "vram-load: \$(vram-load --version)"
echo "vram-seal: \$(vram-seal --version)"
echo "daemon: \$(vram-residency --version | head -1)"
echo "unit: \$(grep -c '^ExecStart=/usr/local/bin/vram-residency ' /usr/local/lib/systemd/system/vram-residency@.service)"
SH
unshare -m --propagation private sh "$WORK/usr-local.sh" > "$WORK/usr-local.out" 2>&1
check "/usr/local: python3 -c 'import vram_client' maps with no environment" grep -qx 'python: 5000' "$WORK/usr-local.out"
check "/usr/local: man vram-residency" grep -qE '^man: [1-9]' "$WORK/usr-local.out"
for p in vram-map vram-load vram-seal; do
	check "/usr/local: $p --version" grep -qx "$p: $p [0-9][0-9.]*" "$WORK/usr-local.out"
done
check "/usr/local: vram-residency --version" grep -qx "daemon: vram-residency [0-9][0-9.]*" "$WORK/usr-local.out"
check "/usr/local: the unit names /usr/local/bin" grep -qx 'unit: 1' "$WORK/usr-local.out"
[ "$FAIL" -eq 0 ] || cat "$WORK/usr-local.out" >&2
check "unmount" fusermount3 -u "$MNT"
finish
