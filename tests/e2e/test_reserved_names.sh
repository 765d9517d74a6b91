#!/bin/bash
# test_reserved_names.sh - the generated entries' names are reserved only where they are
# generated: a model folder with a metrics/ folder and a file named status copies whole with
# cp -r and rsync, a sealed file renames to d/status, while MNT/status, MNT/metrics, d/verify
# and x.seal stay refused (issue 21).
. "$(dirname "$0")/lib.sh"

check "mount" mount_vr
SRC=$WORK/models
mkdir -p "$SRC/metrics" "$SRC/sub/status.d"
head -c 70000 /dev/urandom > "$SRC/metrics/w.bin"
echo '{"acc": 0.9}' > "$SRC/metrics/eval.json"
echo "running" > "$SRC/status"
echo "x" > "$SRC/sub/metrics"
echo "y" > "$SRC/sub/status.d/status"
check "cp -r of a folder holding metrics/ and a file named status" cp -r "$SRC" "$MNT/"
for f in metrics/w.bin metrics/eval.json status sub/metrics sub/status.d/status; do
	check "$f is there with its bytes" cmp "$SRC/$f" "$MNT/models/$f"
	check "$f is sealed" test -s "$MNT/models/$f.seal"
done
check "rsync -a of the same folder" rsync -a "$SRC/" "$MNT/again/"
check "its metrics/w.bin is sealed" test -s "$MNT/again/metrics/w.bin.seal"
check "verify finds every file OK" bash -c "cat '$MNT/verify' > '$WORK/v' && grep -q '^OK models/metrics/w.bin ' '$WORK/v' && grep -q '^OK models/status ' '$WORK/v'"
echo z > "$WORK/z"
check "a load" cp "$WORK/z" "$MNT/models/z"
mkdir "$MNT/d"
check "a sealed file renames to d/status" mv "$MNT/models/z" "$MNT/d/status"
check "and its seal follows, valid" bash -c "cat '$MNT/d/verify' | grep -q '^OK d/status '"
check "a folder renames to d/metrics" mv "$MNT/again" "$MNT/d/metrics"
check "and the files below are still OK" bash -c "cat '$MNT/verify' | grep -q '^OK d/metrics/metrics/w.bin '"
# where they are generated, the names stay reserved
refuse "a file named status at the root" "" cp "$WORK/z" "$MNT/status"
check "MNT/status is still the status" grep -q '"backend"' "$MNT/status"
refuse "mkdir metrics at the root" "File exists" mkdir "$MNT/metrics"
refuse "d/verify" "File exists" mkdir "$MNT/d/verify"
refuse "x.seal" "Operation not permitted" cp "$WORK/z" "$MNT/d/x.seal"
refuse "a rename to the root's status" "" mv "$MNT/d/status" "$MNT/status"
check "unmount, daemon exits 0" unmount_vr
finish
