#!/bin/bash
# test_readdir.sh - a listing resumes by cookie: open directory handles cost the daemon no copy
# of their directory (one user holding many handles of a large directory open grew it by
# megabytes each, up to an out-of-memory kill), and a listing while entries come and go gives
# every entry that stays exactly once.
. "$(dirname "$0")/lib.sh"
nob() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
chmod 711 "$WORK"
PY=/usr/bin/python3

# max_idle_threads= is libfuse's, passed on: a listing needs no more threads than it keeps
check "mount with allow_other" mount_vr "capacity=64M,allow_other,max_idle_threads=4"
check "a shared folder" mkdir -m 1777 "$MNT/s"
check "nobody makes 3,000 entries with long names" nob "$PY" -c "
import os
d = '$MNT/s/big'
os.mkdir(d)
for i in range(3000):
    os.mkdir(os.path.join(d, '%05d' % i + 'x' * 240))
"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
mkdir -m 777 "$WORK/sync"
before=$(rss)
# nobody lists the folder through as many handles as it may hold, holding them until told
nob "$PY" -c "
import errno, os, time
fds = []
err = 0
for _ in range(300):
    try:
        fds.append(os.open('$MNT/s/big', os.O_RDONLY | os.O_DIRECTORY))
    except OSError as e:
        err = e.errno
        break
ok = all(len(os.listdir(fd)) == 3000 for fd in fds)
open('$WORK/sync/listed', 'w').write('%d %s %s' % (len(fds), errno.errorcode.get(err, err), ok))
while not os.path.exists('$WORK/sync/stop'):
    time.sleep(0.05)
" &
holder=$!
for _ in $(seq 1 600); do [ -e "$WORK/sync/listed" ] && break; sleep 0.1; done
check "nobody holds 64 directories open, the 65th is EMFILE, each lists all 3,000 ($(cat "$WORK/sync/listed"))" grep -qx "64 EMFILE True" "$WORK/sync/listed"
during=$(rss)
grew=$(((during - before) / 1024))
check "while they are open the daemon grew by $grew MiB: bounded per handle, not a listing each" test "$grew" -lt 100
check "root is not held to it" "$PY" -c "
import os
fds = [os.open('$MNT/s/big', os.O_RDONLY | os.O_DIRECTORY) for _ in range(100)]
"
touch "$WORK/sync/stop"
wait "$holder"
check "nobody's handles closed, it may open again" nob "$PY" -c "
import os
fds = [os.open('$MNT/s/big', os.O_RDONLY | os.O_DIRECTORY) for _ in range(64)]
"
check "the refusal is logged" grep -q "opendir /s/big by uid 65534 refused: 64 directories open already" "$WORK/daemon.log"
check "ls counts every entry" test "$(ls "$MNT/s/big" | wc -l)" -eq 3000
check "find too" test "$(find "$MNT/s/big" -mindepth 1 -maxdepth 1 | wc -l)" -eq 3000

# a listing while other entries are made and removed: what stays is listed exactly once
check "a listing under churn gives each lasting entry once" "$PY" -c "
import os, threading
d = '$MNT/churn'
os.mkdir(d)
keep = set()
for i in range(2000):
    n = 'keep-%04d' % i
    os.mkdir(os.path.join(d, n))
    keep.add(n)
stop = False
def churn():
    i = 0
    while not stop:
        p = os.path.join(d, 'tmp-%d' % (i % 50))
        try:
            os.mkdir(p)
        except FileExistsError:
            os.rmdir(p)
        i += 1
t = threading.Thread(target=churn)
t.start()
try:
    for _ in range(20):
        seen = [e.name for e in os.scandir(d) if e.name.startswith('keep-')]
        assert len(seen) == len(set(seen)), 'an entry listed twice'
        assert set(seen) == keep, 'missed %d' % len(keep - set(seen))
finally:
    stop = True
    t.join()
"
check "seekdir to a cookie resumes there" "$PY" -c "
import ctypes, ctypes.util, os
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
class Dirent(ctypes.Structure):
    _fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64), ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte), ('d_name', ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
d = libc.opendir(b'$MNT/churn')
names = []
marks = {}
while True:
    marks[len(names)] = libc.telldir(d)
    e = libc.readdir(d)
    if not e:
        break
    names.append(e.contents.d_name)
libc.seekdir(d, marks[1000])
rest = []
while True:
    e = libc.readdir(d)
    if not e:
        break
    rest.append(e.contents.d_name)
assert rest == names[1000:], (len(rest), len(names))
"
finish
