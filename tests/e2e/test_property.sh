#!/bin/bash
# test_property.sh - a seeded random sequence of loads made of open/dup/fork/write/close and
# SIGKILL, checking after each step that a seal exists exactly when the last load of that name
# ran to its end, and then describes exactly that load's bytes (never a partial or a mixture).
# Write sizes from 1 byte to 8 MiB, files to 48 MiB; a killed load is then removed, renamed,
# replaced or resumed by an append; a thread samples every seal while loads run, and none may
# ever describe bytes that were not a complete load. Beside two busy loops, VR_SEEDS seeds
# (default 2) of VR_STEPS steps.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
seed=${VR_SEED:-$RANDOM}
echo "seed $seed (rerun with VR_SEED=$seed)"
busy_start 2
check "mount" mount_vr "capacity=512M"
cat > "$WORK/prop.py" << 'PYEOF'
import hashlib, json, os, random, signal, sys, threading, time

mnt, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
names = ["m%d" % i for i in range(5)] + ["d/m5"]
os.makedirs(os.path.join(mnt, "d"), exist_ok=True)
expected = {}  # name -> bytes of its last complete load, or None after a killed one
partial = {}  # name -> (the whole data, bytes written) of a killed load, for a resume
failures = 0
complete = set()  # sha256 of every load meant to complete; a seal must name one of them
complete_lock = threading.Lock()
sampled_bad = []
done = threading.Event()

def sampler():
    """Reads every name's seal while loads run: each must describe a complete load."""
    while not done.is_set():
        for name in names:
            try:
                seal = json.load(open(os.path.join(mnt, name + ".seal")))
            except (OSError, ValueError):
                continue
            with complete_lock:
                if seal["sha256"] not in complete:
                    sampled_bad.append((name, seal["size"]))
        time.sleep(0.002)

def piece_sizes(n):
    """Cuts N bytes into pieces of 1 byte to 8 MiB, log-uniform, a small one often first."""
    out, at = [], 0
    while at < n:
        k = min(n - at, rng.randrange(1 << rng.randrange(0, 24)) + 1)
        out.append(k)
        at += k
    return out

def writer(path, data, plan, kill_at, flags):
    """In a child: load DATA through one description, in pieces written directly, through a
    dup, or by a forked grandchild; killed by SIGKILL after KILL_AT pieces if given."""
    fd = os.open(path, flags, 0o644)
    for i, (piece, how) in enumerate(plan):
        if kill_at is not None and i == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "direct":
            os.write(fd, piece)
        elif how == "dup":
            d = os.dup(fd)
            os.write(d, piece)
            os.close(d)
        else:
            pid = os.fork()
            if pid == 0:
                os.write(fd, piece)
                os._exit(0)
            os.waitpid(pid, 0)
    if kill_at is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    os.close(fd)

def run(path, data, plan, kill_at, flags):
    """Forks a writer; its wait status."""
    pid = os.fork()
    if pid == 0:
        try:
            writer(path, data, plan, kill_at, flags)
            os._exit(0)
        except OSError as e:
            os._exit(100 + e.errno % 100)
    return os.waitpid(pid, 0)[1]

def make_plan(data, skip=0):
    sizes, at, plan = piece_sizes(len(data) - skip), skip, []
    for k in sizes:
        plan.append((data[at:at + k], rng.choice(["direct", "direct", "dup", "fork"])))
        at += k
    return plan

# a run after another on the same mount: the seals there were checked by that run
for name in names:
    try:
        complete.add(json.load(open(os.path.join(mnt, name + ".seal")))["sha256"])
    except (OSError, ValueError):
        pass
threading.Thread(target=sampler, daemon=True).start()
WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
for step in range(steps):
    name = rng.choice(names)
    path = os.path.join(mnt, name)
    # after a killed load: remove it, rename it, replace it (the load below) or resume it
    if expected.get(name, 0) is None and name in partial:
        what = rng.choice(["rm", "mv", "replace", "resume"])
        if what == "rm":
            os.unlink(path)
            del expected[name]
            continue
        if what == "mv":
            other = rng.choice([n for n in names if n != name])
            try:
                os.rename(path, os.path.join(mnt, other))
            except OSError as e:
                print("step %d: mv of killed %s to %s failed: %s" % (step, name, other, e))
                failures += 1
                continue
            expected[other], partial[other] = None, partial.pop(name)
            del expected[name]
            continue
        if what == "resume":
            data, written = partial.pop(name)
            with complete_lock:
                complete.add(hashlib.sha256(data).hexdigest())
            status = run(path, data, make_plan(data, written), None,
                         os.O_WRONLY | os.O_APPEND)
            if os.WIFSIGNALED(status) or os.WEXITSTATUS(status) != 0:
                print("step %d: resume of %s failed (%d)" % (step, name, status))
                failures += 1
                expected.pop(name, None)
                continue
            expected[name] = data
    if expected.get(name, 0) is not None or name not in partial:
        big = rng.random() < 0.1
        size = rng.randrange(34 << 20, 48 << 20) if big else rng.choice(
            [0, 1, 4096, 5000, rng.randrange(1, 3 << 20)])
        data = rng.randbytes(size)
        plan = make_plan(data)
        kill_at = rng.randrange(1, len(plan) + 1) if len(plan) > 1 and rng.random() < 0.3 else None
        if kill_at is not None and kill_at >= len(plan):
            kill_at = len(plan) - 1
        if kill_at is None:
            with complete_lock:
                complete.add(hashlib.sha256(data).hexdigest())
        status = run(path, data, plan, kill_at, WRITE)
        partial.pop(name, None)
        if os.WIFSIGNALED(status):
            expected[name] = None
            partial[name] = (data, sum(len(p) for p, _ in plan[:kill_at]))
        elif os.WEXITSTATUS(status) == 0:
            expected[name] = data
        else:
            print("step %d: %s load failed with status %d" % (step, name, os.WEXITSTATUS(status)))
            failures += 1
            expected.pop(name, None)
            continue
    want = expected[name]
    sealed = os.path.exists(path + ".seal")
    # an empty file closed without a write is sealed at its release, a moment after close
    # (its opener's close cannot be told from a shell's dup-and-close before writing)
    for _ in range(100):
        if sealed or want is None or len(want) > 0:
            break
        time.sleep(0.01)
        sealed = os.path.exists(path + ".seal")
    if want is None:
        if sealed:
            print("step %d: %s killed mid-load but sealed" % (step, name))
            failures += 1
        continue
    if not sealed:
        print("step %d: %s loaded whole but not sealed" % (step, name))
        failures += 1
        continue
    seal = json.load(open(path + ".seal"))
    if seal["sha256"] != hashlib.sha256(want).hexdigest() or seal["size"] != len(want):
        print("step %d: %s seal does not describe the load (%d bytes)" % (step, name, len(want)))
        failures += 1
    if open(path, "rb").read() != want:
        print("step %d: %s bytes differ from the load" % (step, name))
        failures += 1
done.set()
for name, size in sampled_bad[:10]:
    print("a seal of %s (%d bytes) was seen that describes no complete load" % (name, size))
failures += len(sampled_bad)
print("%d steps, %d failures" % (steps, failures))
sys.exit(1 if failures else 0)
PYEOF
for i in $(seq 0 $((${VR_SEEDS:-2} - 1))); do
	check "every seal is one complete load (seed $((seed + i)))" \
		"$PY" "$WORK/prop.py" "$MNT" "$((seed + i))" "${VR_STEPS:-120}"
done
check "daemon alive" kill -0 "$DAEMON_PID"
busy_stop
check "unmount, daemon exits 0" unmount_vr
finish
