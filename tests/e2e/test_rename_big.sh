#!/bin/bash
# test_rename_big.sh - a rename re-signs every seal below what moves under the tree lock, so one
# user renaming a folder of 50,000 files back and forth held every other user up for seconds:
# a user other than root or the mount's owner may rename a folder of at most 1,024 sealed
# files (EXDEV beyond, so mv and shutil.move copy instead); root's renames are not limited.
. "$(dirname "$0")/lib.sh"
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"
PY=/usr/bin/python3

check "mount with allow_other" mount_vr "capacity=256M,allow_other"
check "a shared folder" mkdir -m 1777 "$MNT/s"
check "nobody's folder of 1,100 sealed files" nob "$PY" -c "
import os
os.mkdir('$MNT/s/big')
for i in range(1100):
    with open('$MNT/s/big/f%d' % i, 'w') as f:
        f.write(str(i))
"
check "and one of 1,000" nob "$PY" -c "
import os
os.mkdir('$MNT/s/small')
for i in range(1000):
    with open('$MNT/s/small/f%d' % i, 'w') as f:
        f.write(str(i))
"
check "nobody renames the 1,000 in place" nob mv "$MNT/s/small" "$MNT/s/small2"
refuse "rename(2) of the 1,100 is EXDEV" "Invalid cross-device link" nob "$PY" -c "import os; os.rename('$MNT/s/big', '$MNT/s/big2')"
check "the refusal is logged" grep -q "rename /s/big -> /s/big2 by uid 65534 refused (EXDEV): it would re-sign more than 1024 seals" "$WORK/daemon.log"
check "mv copies instead" nob mv "$MNT/s/big" "$MNT/s/big2"
check "all there, sealed under the new name" bash -c "test \$(ls '$MNT/s/big2' | wc -l) -eq 1100 && grep -q '\"path\":[[:space:]]*\"s/big2/f7\"' '$MNT/s/big2/f7.seal' && ! test -e '$MNT/s/big'"
check "root renames it in place" mv "$MNT/s/big2" "$MNT/s/big3"
check "its seals re-signed" grep -q '"path":[[:space:]]*"s/big3/f7"' "$MNT/s/big3/f7.seal"
check "verify passes" bash -c "cat '$MNT/s/verify' > /dev/null"
finish
