#!/bin/bash
# test_refusals.sh - every refusal a user can meet, with the errno that standard tools print.
. "$(dirname "$0")/lib.sh"

head -c 100000 /dev/urandom > "$WORK/w.bin"

# the daemon refuses to start, before mounting, with one clear line
refuse "unknown option" "unknown option" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,frobnicate=1 "$MNT"
out=$("$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,frobnicate=1 "$MNT" 2>&1)
check "an unknown option is the one line printed" test "$(printf '%s\n' "$out" | grep -c .)" = 1
out=$("$BIN/vram-residency" -f -o backend=auto,audit=$AUDIT,secret=$SECRET,capacity=64M "$MNT" 2>&1 &
	sleep 1.5; fusermount3 -u "$MNT" 2> /dev/null; wait)
check "no GPU under backend=auto is no error line" bash -c "! printf '%s\n' \"\$1\" | grep -q 'error:'" _ "$out"
# a plain mount warns of nothing but the mock (a warning once said SIGHUP could not be taken
# whenever systemd was not the starter)
check "a mount outside systemd warns of nothing else" bash -c "! printf '%s\n' \"\$1\" | grep 'warning:' | grep -v -i -q 'gpu\|mock'" _ "$out"
refuse "missing secret" "No such file" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/nope "$MNT"
(umask 022 && head -c 32 /dev/urandom > "$WORK/loose")
refuse "loose secret" "chmod 600" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/loose "$MNT"
(umask 077 && head -c 8 /dev/urandom > "$WORK/short")
refuse "short secret" "needs 32" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/short "$MNT"
# a FIFO as the secret is refused at once (timeout: a hang fails), as are unsafe audit logs
mkfifo "$WORK/fifo"
refuse "FIFO secret" "not a regular file" timeout 10 "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/fifo "$MNT"
ln -s "$AUDIT" "$WORK/audit-link.log"
refuse "symlinked audit log" "symbolic link" "$BIN/vram-residency" -f -o backend=mock,audit=$WORK/audit-link.log "$MNT"
install -m 0666 /dev/null "$WORK/loose-audit.log"
refuse "audit log others may write" "chmod 600" "$BIN/vram-residency" -f -o backend=mock,audit=$WORK/loose-audit.log "$MNT"
mkdir -m 0777 "$WORK/open"
refuse "audit log in a folder others may write" "chmod go-w" "$BIN/vram-residency" -f -o backend=mock,audit=$WORK/open/audit.log "$MNT"
# keys and trust stores others could replace or add to (issue 22, item 16)
(umask 077 && head -c 32 /dev/urandom > "$WORK/open/secret")
refuse "a secret in a folder others may write" "chmod go-w" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/open/secret "$MNT"
cp -p "$SECRET" "$WORK/same-as-secret"
refuse "an audit key holding the secret's bytes" "same secret as secret=" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET,audit_key=$WORK/same-as-secret "$MNT"
refuse "the secret itself as the audit key" "same secret as secret=" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET,audit_key=$SECRET "$MNT"
refuse "an audit key in a folder others may write" "chmod go-w" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET,audit_key=$WORK/open/secret "$MNT"
openssl ecparam -name prime256v1 -genkey -noout 2> /dev/null | openssl pkey -pubout > "$WORK/tk.pub"
mkdir -m 777 "$WORK/tdir" && cp "$WORK/tk.pub" "$WORK/tdir/k.pem"
refuse "a trust folder others may add a key to" "could add" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,trust=$WORK/tdir "$MNT"
chmod 1777 "$WORK/tdir"
refuse "even with the sticky bit" "could add" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,trust=$WORK/tdir "$MNT"
chmod 666 "$WORK/tk.pub"
refuse "a trust file others may write" "could add a key" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,trust=$WORK/tk.pub "$MNT"
cp "$WORK/tk.pub" "$WORK/open/tk.pub" && chmod 644 "$WORK/open/tk.pub"
refuse "a trust file in a folder others may write" "chmod go-w" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,trust=$WORK/open/tk.pub "$MNT"
# backend=cuda where there is none (no GPU here, or a build without CUDA): refused, not mock
if ! nvidia-smi -L > /dev/null 2>&1; then
	refuse "backend=cuda without a GPU" "nothing mounted" "$BIN/vram-residency" -f -o backend=cuda,audit=$AUDIT,secret=$SECRET "$MNT"
fi
refuse "bad backend" "use auto, cuda or mock" "$BIN/vram-residency" -f -o backend=tpu,audit=$AUDIT "$MNT"
refuse "bad capacity" "capacity=" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,capacity=lots "$MNT"
refuse "a capacity of nothing" "capacity=" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,capacity=0 "$MNT"
refuse "bad verify_on_open" "verify_on_open" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,verify_on_open=2 "$MNT"
check "nothing mounted by the refusals" bash -c "! mountpoint -q '$MNT'"
refuse "bad list_generated" "list_generated must be 0 or 1" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,list_generated=2 "$MNT"
refuse "bad immutable" "immutable must be 0 or 1" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,immutable=7 "$MNT"
refuse "bad expect" "use check or require" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,expect=maybe "$MNT"
refuse "bad sha256" "use on or off" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,sha256=sometimes "$MNT"
refuse "negative device" "must be 0 or more" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,device=-1 "$MNT"
refuse "metrics_interval 0" "give 1 to 86400 seconds" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,metrics_interval=0 "$MNT"
refuse "metrics_interval over a day" "give 1 to 86400 seconds" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,metrics_interval=86401 "$MNT"
refuse "a source and device= that disagree" "disagree" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,device=2 gpu1 "$MNT"
refuse "a missing trust file" "trust=$WORK/no-keys.pem" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET,trust=$WORK/no-keys.pem "$MNT"
refuse "a missing audit key" "No such file" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET,audit_key=$WORK/no-key "$MNT"
refuse "no mount point" "usage:" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT
refuse "a mount point that is not there" "$WORK/nowhere" "$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$SECRET "$WORK/nowhere"
check "still nothing mounted" bash -c "! mountpoint -q '$MNT'"

# without -f the daemon goes to the background once the mount answers, and its parent exits 0
check "daemon mode: the parent exits 0 once mounted" \
	"$BIN/vram-residency" -o "backend=mock,secret=$SECRET,audit=$AUDIT,capacity=8M" "$MNT"
check "daemon mode: mounted when the parent returns" mountpoint -q "$MNT"
check "daemon mode: status answers" grep -q '"backend":[[:space:]]*"mock"' "$MNT/status"
bgpid=$(pgrep -f "vram-residency -o backend=mock,secret=$SECRET" | head -1)
check "daemon mode: unmounts" fusermount3 -u "$MNT"
for _ in $(seq 1 100); do kill -0 "$bgpid" 2> /dev/null || break; sleep 0.05; done
check "daemon mode: the daemon exits at unmount" bash -c "! kill -0 '$bgpid' 2> /dev/null"
out=$("$BIN/vram-residency" -f -o backend=mock,audit=$AUDIT,secret=$WORK/loose "$MNT" 2>&1)
check "one line for a loose secret" test "$(printf '%s\n' "$out" | grep -c .)" = 1
check "--help" bash -c "'$BIN/vram-residency' --help | grep -q 'backend=auto|cuda|mock'"
check "--version" bash -c "'$BIN/vram-residency' --version | grep -q 'vram-residency'"

check "mount" mount_vr capacity=16M
check "load" cp "$WORK/w.bin" "$MNT/w.bin"
mkdir "$MNT/d"

# sealed files are immutable
refuse "append to sealed" "Operation not permitted" bash -c "echo x >> '$MNT/w.bin'"
refuse "truncate sealed" "Operation not permitted" truncate -s 0 "$MNT/w.bin"
refuse "dd into sealed" "Operation not permitted" dd if=/dev/zero of="$MNT/w.bin" bs=1 count=1 conv=notrunc status=none
check "bytes untouched" cmp -s "$WORK/w.bin" "$MNT/w.bin"
check "refusal audited" grep -q '"event":"policy_violation","path":"w.bin"' "$AUDIT"

# generated files
refuse "rm seal" "Operation not permitted" rm "$MNT/w.bin.seal"
refuse "write seal" "Permission denied\|Operation not permitted" bash -c "echo x > '$MNT/w.bin.seal'"
refuse "rm verify" "Operation not permitted" rm "$MNT/verify"
refuse "write status" "Permission denied\|Operation not permitted" bash -c "echo x > '$MNT/status'"
refuse "mv seal" "Operation not permitted" mv "$MNT/w.bin.seal" "$MNT/x"

# names
refuse "create .seal" "Operation not permitted" touch "$MNT/new.seal"
refuse "mkdir .seal" "Operation not permitted" mkdir "$MNT/dir.seal"
refuse "mkdir verify" "File exists" mkdir "$MNT/d/verify"
refuse "mkdir status" "File exists" mkdir "$MNT/status"
refuse "open status for writing" "Operation not permitted" touch "$MNT/status"
refuse "control character" "Invalid argument" touch "$MNT/a$(printf '\001')b"
refuse "newline in name" "Invalid argument" touch "$MNT/a
b"
refuse "invalid UTF-8" "Invalid argument" touch "$MNT/$(printf 'bad\377')"
refuse "name too long" "File name too long" touch "$MNT/$(head -c 256 /dev/zero | tr '\0' a)"
check "a 255-byte directory name is fine" mkdir "$MNT/$(head -c 255 /dev/zero | tr '\0' a)"
check "a 250-byte file name is fine" touch "$MNT/$(head -c 250 /dev/zero | tr '\0' b)"
check "its seal is reachable" test -f "$MNT/$(head -c 250 /dev/zero | tr '\0' b).seal"
refuse "a 251-byte file name leaves no room for .seal" "File name too long" touch "$MNT/$(head -c 251 /dev/zero | tr '\0' c)"
refuse "rename to .seal" "Operation not permitted" mv "$MNT/w.bin" "$MNT/w2.seal"
refuse "rename to verify" "File exists\|Operation not permitted" mv "$MNT/w.bin" "$MNT/d/verify"

# what is not a regular file or directory
refuse "a symlink leading outside" "Operation not permitted" ln -s /etc/passwd "$MNT/link"
refuse "hard link" "Operation not permitted" ln "$MNT/w.bin" "$MNT/hard"
refuse "fifo" "Operation not permitted" mkfifo "$MNT/fifo"

# directories
cp "$WORK/w.bin" "$MNT/d/x"
refuse "rmdir non-empty" "Directory not empty" rmdir "$MNT/d"
refuse "mv dir into itself" "subdirectory of itself" mv "$MNT/d" "$MNT/d/sub"
refuse "rm dir" "Is a directory" rm "$MNT/d"
refuse "missing parent" "No such file" cp "$WORK/w.bin" "$MNT/nodir/x"

check "unmount, daemon exits 0" unmount_vr
finish
