#!/bin/sh
# layering.sh - the pure library stays pure: the programs given (vram-seal, the fuzz targets)
# contain no symbol the residency library defines, and no source of the pure library includes
# a residency header. Usage: layering.sh SRCDIR LIBVR_RES.a PROGRAM...
set -eu
src=$1 lib=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# every global symbol the residency defines (functions and data)
nm --defined-only -g "$lib" 2> /dev/null | awk 'NF == 3 && $2 ~ /^[TDBRCV]$/ { print $3 }' |
	sort -u > "$tmp/res"
n=$(wc -l < "$tmp/res")
if [ "$n" -lt 50 ]; then
	echo "layering: only $n symbols found in $lib: is it the residency library?"
	exit 1
fi
for prog in "$@"; do
	nm "$prog" | awk '{ print $NF }' | sort -u | comm -12 - "$tmp/res" > "$tmp/hit"
	if [ -s "$tmp/hit" ]; then
		echo "layering: $(basename "$prog") links $(wc -l < "$tmp/hit") residency symbols:"
		head -20 "$tmp/hit" | sed 's/^/  /'
		fail=1
	else
		echo "layering: $(basename "$prog") links none of the residency's $n symbols"
	fi
done

# the pure library's sources name no header of the residency
for h in "$src"/core/res/*.h; do
	b=$(basename "$h")
	if grep -n "#include \"$b\"" "$src"/core/*.c "$src"/core/*.h; then
		echo "layering: the pure library includes the residency's $b"
		fail=1
	fi
done
exit $fail
