#!/bin/bash
# test_property.sh - a seeded random sequence of loads made of open/dup/fork/write/close and
# SIGKILL, checking after each step that a seal exists exactly when the last load of that name
# ran to its end, and then describes exactly that load's bytes (never a partial or a mixture).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
seed=${VR_SEED:-$RANDOM}
echo "seed $seed (rerun with VR_SEED=$seed)"
check "mount" mount_vr "capacity=256M"
cat > "$WORK/prop.py" << 'PYEOF'
import hashlib, json, os, random, signal, sys, time

mnt, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
names = ["m%d" % i for i in range(5)] + ["d/m5"]
os.makedirs(os.path.join(mnt, "d"), exist_ok=True)
expected = {}  # name -> bytes of its last complete load, or None after a killed one
failures = 0

def writer(path, data, plan, kill_at):
    """In a child: load DATA through one description, in pieces written directly, through a
    dup, or by a forked grandchild; killed by SIGKILL after KILL_AT pieces if given."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
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

for step in range(steps):
    name = rng.choice(names)
    path = os.path.join(mnt, name)
    data = rng.randbytes(rng.choice([0, 1, 4096, 5000, rng.randrange(1, 3 << 20)]))
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randrange(1, 5))))
    bounds = [0] + cuts + [len(data)]
    plan = [(data[a:b], rng.choice(["direct", "dup", "fork"])) for a, b in zip(bounds, bounds[1:])]
    kill_at = rng.randrange(1, len(plan) + 1) if len(plan) > 1 and rng.random() < 0.3 else None
    if kill_at is not None and kill_at >= len(plan):
        kill_at = len(plan) - 1
    pid = os.fork()
    if pid == 0:
        try:
            writer(path, data, plan, kill_at)
            os._exit(0)
        except OSError as e:
            os._exit(100 + e.errno % 100)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        expected[name] = None
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
print("%d steps, %d failures" % (steps, failures))
sys.exit(1 if failures else 0)
PYEOF
check "every seal is one complete load" "$PY" "$WORK/prop.py" "$MNT" "$seed" "${VR_STEPS:-120}"
check "daemon alive" kill -0 "$DAEMON_PID"
check "unmount, daemon exits 0" unmount_vr
finish
