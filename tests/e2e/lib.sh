# lib.sh - shared helpers for the end-to-end tests: a mounted filesystem in a temporary folder.
# Sourced by tests/e2e/test_*.sh with the build's bin folder as $1.

set -u
BIN=$(cd "${1:?usage: $0 BUILD_BIN_DIR}" && pwd)
PASS=0
FAIL=0
WORK=$(mktemp -d /tmp/vr-e2e.XXXXXX)
MNT=$WORK/mnt
SECRET=$WORK/secret
AUDIT=$WORK/audit.log
DAEMON_PID=
mkdir -p "$MNT"
(umask 077 && head -c 32 /dev/urandom > "$SECRET")

if [ ! -c /dev/fuse ] || ! command -v fusermount3 > /dev/null; then
	echo "SKIP: /dev/fuse or fusermount3 is missing"
	rm -rf "$WORK"
	exit 77
fi

# busy_start N: N busy loops beside the test (the interleavings that crash need a loaded
# machine); busy_stop ends them, as the trap does
BUSY_PIDS=
busy_start() {
	for _ in $(seq 1 "$1"); do
		(while :; do :; done) &
		BUSY_PIDS="$BUSY_PIDS $!"
	done
}
busy_stop() {
	# shellcheck disable=SC2086
	[ -z "$BUSY_PIDS" ] || kill $BUSY_PIDS 2> /dev/null
	BUSY_PIDS=
}

cleanup() {
	busy_stop
	if mountpoint -q "$MNT" 2> /dev/null; then
		fusermount3 -u "$MNT" 2> /dev/null || umount -l "$MNT" 2> /dev/null
	fi
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2> /dev/null; then
		kill "$DAEMON_PID" 2> /dev/null
		wait "$DAEMON_PID" 2> /dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); }
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL: $*" >&2
}
# check DESCRIPTION COMMAND...: passes when the command succeeds
check() {
	local what=$1
	shift
	if [ $# -eq 0 ]; then
		bad "$what: no command to check"
	elif "$@"; then ok; else bad "$what"; fi
}
# refuse DESCRIPTION MESSAGE COMMAND...: the command must fail and print MESSAGE (strerror text)
refuse() {
	local what=$1 msg=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		bad "$what: succeeded, expected '$msg'"
	elif printf '%s' "$out" | grep -q -- "$msg"; then
		ok
	else
		bad "$what: expected '$msg', got: $out"
	fi
}

# carry_for_nobody: copies what a step run as nobody needs (the programs, libvram-client and
# the Python module) to $NBIN, in $WORK, which nobody may enter: the checkout and its build may
# sit in a folder only root can enter (a home of mode 0700 such as /root, or mktemp -d), where
# nobody can neither load the library nor import the module. as_nobody CMD... then runs CMD as
# nobody (no supplementary groups) with its environment pointing there. Fails, saying so, when
# nobody cannot run the copies either (a /tmp mounted noexec).
NBIN=$WORK/carry
carry_for_nobody() {
	local lib src
	lib=$(cd "$BIN/../lib" && pwd)
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	mkdir -p "$NBIN"
	cp "$BIN/vram-residency" "$BIN/vram-map" "$BIN/vram-load" "$BIN/vram-seal" "$NBIN/" &&
		cp -L "$lib/libvram-client.so.1" "$src/python/vram_client.py" "$NBIN/" &&
		chmod -R a+rX "$NBIN" && chmod 755 "$WORK" || {
		bad "cannot copy the programs nobody runs to $NBIN"
		return 1
	}
	if ! as_nobody "$NBIN/vram-map" --version > /dev/null; then
		bad "nobody cannot run the programs carried to $NBIN (a noexec /tmp?); the steps run as nobody would report wrong refusals"
		return 1
	fi
}
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- env LD_LIBRARY_PATH="$NBIN" \
		VRAM_CLIENT_LIB="$NBIN/libvram-client.so.1" PYTHONPATH="$NBIN" "$@"
}

# mount [OPTIONS]: starts the daemon in the foreground (in the background of this shell)
mount_vr() {
	local opts="backend=${VR_E2E_BACKEND:-mock},secret=$SECRET,audit=$AUDIT${1:+,$1}"
	# appended: finish() reads every mount's log
	# shellcheck disable=SC2086 # VR_E2E_FLAGS: more daemon flags, split on spaces
	"$BIN/vram-residency" -f ${VR_E2E_FLAGS:-} -o "$opts" "$MNT" 2>> "$WORK/daemon.log" &
	DAEMON_PID=$!
	for _ in $(seq 1 100); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$DAEMON_PID" 2> /dev/null || break
		sleep 0.05
	done
	echo "mount failed:" >&2
	cat "$WORK/daemon.log" >&2
	return 1
}

# unmount: fusermount3 -u, then the daemon must exit 0
unmount_vr() {
	local rc
	fusermount3 -u "$MNT" || return 1
	wait "$DAEMON_PID"
	rc=$?
	DAEMON_PID=
	if [ "$rc" -ne 0 ]; then
		echo "daemon exited $rc:" >&2
		cat "$WORK/daemon.log" >&2
	fi
	return "$rc"
}

# json_field FILE KEY: the value of a top-level "KEY": value in one of our JSON texts
json_field() {
	grep -m1 "\"$2\":" "$1" | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/,$//' -e 's/^"//' -e 's/"$//'
}

# seal_facts DIR: each file's path under DIR, with its seal's size, SHA-256 and fs-verity digest
# (the seals are reachable by name, not listed: the files are walked); a file without a seal
# prints "-" for each, and an empty DIR prints nothing, which a caller's comparison must expect
seal_facts() {
	(cd "$1" && find . -type f | sort | while read -r f; do
		if [ -e "$f.seal" ]; then
			printf '%s %s %s %s\n' "$f" "$(json_field "$f.seal" size)" \
				"$(json_field "$f.seal" sha256)" "$(json_field "$f.seal" fsverity)"
		else
			printf '%s - - -\n' "$f"
		fi
	done)
}

# held SIZE: the device bytes a file of SIZE bytes holds on the mock once sealed (64 KiB grains)
held() { echo $((($1 + 65535) / 65536 * 65536)); }

# audit_has EVENT PATH: an audit record of EVENT naming PATH exists
audit_has() {
	grep "\"event\":\"$1\"" "$AUDIT" | grep -q "\"path\":\"$2\""
}

finish() {
	# a test that ends with a dead daemon fails, whatever it asserted (a crash unmounts the
	# tree and loses every user's files); one that meant to stop it cleared DAEMON_PID
	if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2> /dev/null; then
		wait "$DAEMON_PID" 2> /dev/null
		bad "the daemon (pid $DAEMON_PID) is dead at the end of the test (exit status $?)"
	fi
	# a positive or out-of-range errno reaching libfuse is a bug, wherever it shows
	if grep -h -E "bad error value|BUG:" "$WORK"/*.log 2> /dev/null; then
		bad "a daemon log shows a bad error value or a BUG line"
	fi
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

# client_python [PYTHON FLAGS...]: points VRAM_CLIENT_LIB and PYTHONPATH at the build's client
# library and the checkout's module, and writes $PY: Debian's python3 with FLAGS, with a
# sanitizer build's runtime loaded first (the library needs it to come first); $preload
# names that runtime, empty in other builds
client_python() {
	local lib
	lib=$(cd "$BIN/../lib" && pwd)
	VRAM_CLIENT_LIB=$lib/libvram-client.so.1
	PYTHONPATH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../python" && pwd)
	export VRAM_CLIENT_LIB PYTHONPATH
	PY=$WORK/py
	preload=$(ldd "$VRAM_CLIENT_LIB" | awk '/libasan/ {print $3}')
	printf '#!/bin/sh\nexec env %s /usr/bin/python3 %s "$@"\n' \
		"${preload:+LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0}" "$*" > "$PY"
	chmod 755 "$PY"
}
