#!/bin/bash
# test_cli.sh - the programs' command lines as a user meets them: every program answers
# --version; an unknown option or a bad value is a usage error (exit 2, one line naming it);
# --help lists only libfuse options that apply; a detached daemon says where its messages go,
# and log= keeps them in a file (machines without syslog).
. "$(dirname "$0")/lib.sh"

for p in vram-residency vram-seal vram-map vram-load; do
	check "$p --version" bash -c "'$BIN/$p' --version | head -1 | grep -qx '$p [0-9][0-9.]*'"
done
# exit_of CMD...: the exit status, output to $WORK/out
exit_of() {
	"$@" > "$WORK/out" 2>&1
	echo $?
}
check "unknown -o option: exit 2" test "$(exit_of "$BIN/vram-residency" -o no_such_option "$MNT")" = 2
check "and libfuse names it" grep -q "no_such_option" "$WORK/out"
check "unknown flag: exit 2" test "$(exit_of "$BIN/vram-residency" --no-such-flag "$MNT")" = 2
check "a bad value: exit 2" test "$(exit_of "$BIN/vram-residency" -o backend=gpu "$MNT")" = 2
check "and says why" grep -q "backend=gpu: use auto, cuda or mock" "$WORK/out"
check "no mount point: exit 2" test "$(exit_of "$BIN/vram-residency" -o backend=mock)" = 2
check "a start-up failure stays exit 1" \
	test "$(exit_of "$BIN/vram-residency" -o "backend=mock,secret=$WORK/none" "$MNT")" = 1
check "nothing mounted by any of them" bash -c "! mountpoint -q '$MNT'"
check "vram-map: unknown option exit 2" test "$(exit_of "$BIN/vram-map" --no-such "$MNT")" = 2
check "vram-load: unknown option exit 2" test "$(exit_of "$BIN/vram-load" --no-such a b)" = 2

"$BIN/vram-residency" --help > "$WORK/help" 2>&1
for o in allow_other auto_unmount 'log=PATH' 'backend=auto'; do
	check "--help lists $o" grep -q -- "$o" "$WORK/help"
done
for o in subdir iconv kernel_cache modules= 'umask=' 'entry_timeout'; do
	check "--help does not list libfuse's $o (it does not apply)" bash -c "! grep -q -- '$o' '$WORK/help'"
done

# detached (no -f), with log=: the start-up line names the log; the messages land there
"$BIN/vram-residency" -o "backend=mock,capacity=64M,secret=$SECRET,audit=$AUDIT,log=$WORK/daemon-file.log" \
	"$MNT" 2> "$WORK/start.err"
check "detached daemon mounted" mountpoint -q "$MNT"
check "its start-up line says where the messages go" \
	grep -q "detached (pid [0-9]*); messages go to $WORK/daemon-file.log" "$WORK/start.err"
check "the log file has the mount's lines, dated" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z vram-residency\[[0-9]+\]: info: .*mounted' "$WORK/daemon-file.log"
check "created mode 0600" test "$(stat -c %a "$WORK/daemon-file.log")" = 600
printf 'x' > "$MNT/f"
rm -f "$MNT/f.seal" 2> /dev/null # refused: a message the detached daemon logs
check "unmount" fusermount3 -u "$MNT"
for _ in $(seq 1 100); do
	pgrep -f "log=$WORK/daemon-file.log" > /dev/null || break
	sleep 0.05
done
check "the detached daemon's later messages are in the file" \
	test "$(wc -l < "$WORK/daemon-file.log")" -gt 2
ln -s "$WORK/daemon-file.log" "$WORK/link.log"
check "a log= that is a symbolic link is refused (exit 1)" \
	test "$(exit_of "$BIN/vram-residency" -f -o "backend=mock,secret=$SECRET,audit=$AUDIT,log=$WORK/link.log" "$MNT")" = 1
check "saying why" grep -q "log=$WORK/link.log: " "$WORK/out"
finish
