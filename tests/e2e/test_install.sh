#!/bin/bash
# test_install.sh - cmake --install into a prefix gives working programs, the client library
# (found by the tools and the Python module without ldconfig), the manual pages and the unit.
. "$(dirname "$0")/lib.sh"

BUILD=$(cd "$BIN/.." && pwd)
P=$WORK/prefix
check "cmake --install" cmake --install "$BUILD" --prefix "$P" > "$WORK/install.log"
for f in bin/vram-residency bin/vram-seal bin/vram-map bin/vram-load include/vram_client.h \
	lib/libvram-client.so.1 lib/python3/dist-packages/vram_client.py \
	lib/systemd/system/vram-residency@.service share/man/man8/vram-residency.8 \
	share/man/man1/vram-seal.1 share/man/man1/vram-map.1 share/man/man1/vram-load.1; do
	check "installed: $f" test -e "$P/$f"
done
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
	"env -u VRAM_CLIENT_LIB ${preload:+LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0} PYTHONPATH='$P/lib/python3/dist-packages' /usr/bin/python3 -c \"import vram_client; print(vram_client.Client('$MNT').map('f.bin').size)\" | grep -qx 5000"
check "unmount" fusermount3 -u "$MNT"
finish
