#!/bin/sh
# deps.sh - installs the Debian 12 packages the build, the tests and the mount need (as root).
set -eu
pkgs="build-essential cmake pkg-config libfuse3-dev fuse3 nettle-dev libgmp-dev libssl-dev libcjson-dev fsverity rsync openssl clang clang-format clang-tidy cppcheck gcovr groff-base libclang-rt-14-dev python3 python3-numpy python3-torch python3-filelock git attr strace aria2 systemd prometheus python3-yaml b3sum"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps.sh: installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: run as root (or install these yourself):$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing
fi
