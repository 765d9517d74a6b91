#!/bin/bash
# test_links_xattrs.sh - relative symlinks that stay inside the mount (the Hugging Face cache
# layout) and user.* extended attributes survive cp -a, rsync -aX and tar; escapes are refused.
. "$(dirname "$0")/lib.sh"

# a Hugging Face cache: snapshots/<rev>/model.safetensors -> ../../blobs/<sha>
hf=$WORK/hub/models--org--m
mkdir -p "$hf/blobs" "$hf/snapshots/abc123" "$hf/refs"
head -c 2000000 /dev/urandom > "$hf/blobs/1f2e"
echo abc123 > "$hf/refs/main"
ln -s ../../blobs/1f2e "$hf/snapshots/abc123/model.safetensors"
echo '{}' > "$hf/blobs/9c0d"
ln -s ../../blobs/9c0d "$hf/snapshots/abc123/config.json"
setfattr -n user.origin -v hub "$hf/blobs/1f2e" 2> /dev/null || true

check "mount" mount_vr "capacity=64M"
check "cp -a of a Hugging Face cache" cp -a "$WORK/hub" "$MNT/hub"
m=$MNT/hub/models--org--m
check "the link is a link" test -L "$m/snapshots/abc123/model.safetensors"
check "readlink" test "$(readlink "$m/snapshots/abc123/model.safetensors")" = ../../blobs/1f2e
check "reading through the link" cmp -s "$m/snapshots/abc123/model.safetensors" "$hf/blobs/1f2e"
check "the blob is sealed" test -e "$m/blobs/1f2e.seal"
check "verify checks files, not links" bash -c "cat '$MNT/verify' > '$WORK/v'; ! grep -q safetensors '$WORK/v' && grep -q '^OK hub/models--org--m/blobs/1f2e ' '$WORK/v'"
check "rsync -a of the same tree" rsync -a "$WORK/hub/" "$MNT/hub2/"
check "rsync kept the link" test "$(readlink "$MNT/hub2/models--org--m/snapshots/abc123/config.json")" = ../../blobs/9c0d
check "tar -x of the same tree" bash -c "tar cf - -C '$WORK' hub | tar xf - -C '$MNT' --transform 's,^hub,hub3,'"
check "tar kept the link" test -L "$MNT/hub3/models--org--m/snapshots/abc123/model.safetensors"
check "cp -a back out" cp -a "$MNT/hub" "$WORK/back"
check "what came back is the tree" diff -r "$WORK/hub" "$WORK/back"
check "rm of a link leaves its target" bash -c "rm '$m/snapshots/abc123/config.json' && test -e '$m/blobs/9c0d'"
check "mv of a link" mv "$MNT/hub2/models--org--m/snapshots/abc123/config.json" "$MNT/hub2/models--org--m/snapshots/cfg"

# escapes: absolute, or climbing above the root, or ".." after a name
refuse "an absolute target" "Operation not permitted" ln -s /etc/passwd "$MNT/abs"
refuse "climbing above the root" "Operation not permitted" ln -s ../outside "$MNT/up"
refuse "climbing above the root from below" "Operation not permitted" ln -s ../../../x "$MNT/hub/deep"
refuse "\"..\" after a name" "Operation not permitted" ln -s sub/../../x "$MNT/hub/trick"
check "a link to a sibling" ln -s hub "$MNT/hublink"
check "refusals are logged with why" grep -q "symlink /abs -> /etc/passwd refused: an absolute target" "$WORK/daemon.log"
refuse "hard links stay refused" "Operation not permitted" ln "$m/blobs/1f2e" "$MNT/hard"

# user.* extended attributes, kept by cp -a and rsync -aX
f=$m/blobs/9c0d
check "setfattr user.*" setfattr -n user.etag -v etag123 "$f"
check "getfattr reads it" test "$(getfattr --absolute-names --only-values -n user.etag "$f")" = etag123
check "on a sealed file too (not covered by the seal)" test -e "$f.seal"
check "listed" bash -c "getfattr --absolute-names -d '$f' | grep -q '^user.etag='"
check "cp -a kept the source's user.origin" test "$(getfattr --absolute-names --only-values -n user.origin "$m/blobs/1f2e" 2>/dev/null)" = hub
check "cp --preserve=xattr out" cp --preserve=xattr "$f" "$WORK/x.out"
check "came out with it" test "$(getfattr --absolute-names --only-values -n user.etag "$WORK/x.out")" = etag123
check "rsync -aX out" rsync -aX "$m/blobs/" "$WORK/rsx/"
check "rsync -aX kept it" test "$(getfattr --absolute-names --only-values -n user.etag "$WORK/rsx/9c0d")" = etag123
check "setfattr -x removes it" setfattr -x user.etag "$f"
refuse "gone" "No such attribute" getfattr -n user.etag "$f"
refuse "other namespaces refused" "Operation not supported" setfattr -n trusted.x -v 1 "$f"
refuse "and unsupported when read, not merely absent" "Operation not supported" getfattr -n security.selinux "$f"
refuse "ACLs are not supported" "Operation not supported" getfattr -n system.posix_acl_access "$f"
check "cp -a out says nothing about ACLs" test -z "$(cp -a "$f" "$WORK/a.out" 2>&1)"
# which is what lets ls -l stop asking: one security.selinux and one ACL question per file
# system, not per file (each is a round trip to the daemon)
for i in $(seq 1 40); do : > "$m/many$i"; done
n=$(strace -f -e trace=getxattr,lgetxattr ls -l "$m" 2>&1 > /dev/null | grep -c getxattr)
check "ls -l of 40 files asks 2 extended attributes, not 80 (asked $n)" test "$n" -le 2
refuse "a value over 4096 bytes" "Argument list too long" setfattr -n user.big -v "$(head -c 5000 /dev/zero | tr '\0' a)" "$f"
for i in $(seq 1 32); do setfattr -n "user.a$i" -v 1 "$f"; done
refuse "more than 32 attributes" "No space left on device" setfattr -n user.a33 -v 1 "$f"
check "unmount, daemon exits 0" unmount_vr
finish
