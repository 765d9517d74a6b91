#!/bin/bash
# test_k8s.sh - the Kubernetes manifests parse and hold what docs/kubernetes.md relies on
# (no cluster here): privileged with /dev/fuse, Bidirectional and HostToContainer propagation,
# a preStop unmount, the secret as a 0400 file, selectors matching their labels.
set -u
K8S=$(cd "$(dirname "$0")/../../k8s" && pwd)
/usr/bin/python3 - "$K8S/daemonset.yaml" "$K8S/consumer-pod.yaml" <<'PY'
import sys, yaml

passed = failed = 0
def check(what, ok):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)

docs = {}
for path in sys.argv[1:]:
    for d in yaml.safe_load_all(open(path)):
        check(f"{path}: apiVersion, kind, metadata.name", all(k in d for k in ("apiVersion", "kind", "metadata")) and "name" in d["metadata"])
        docs[d["kind"]] = d
ds, pod = docs.get("DaemonSet"), docs.get("Pod")
check("a DaemonSet", ds is not None and ds["apiVersion"] == "apps/v1")
check("a consumer Pod", pod is not None)
spec = ds["spec"]
tmpl = spec["template"]
check("selector matches the template's labels", all(tmpl["metadata"]["labels"].get(k) == v for k, v in spec["selector"]["matchLabels"].items()))
vols = {v["name"]: v for v in tmpl["spec"]["volumes"]}
for c in tmpl["spec"]["containers"]:
    n = c["name"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    check(f"{n}: privileged", c.get("securityContext", {}).get("privileged") is True)
    check(f"{n}: /dev/fuse from the host", "/dev/fuse" in mounts and vols[mounts["/dev/fuse"]["name"]].get("hostPath", {}).get("path") == "/dev/fuse")
    vram = mounts.get("/run/vram")
    check(f"{n}: /run/vram with Bidirectional propagation", vram is not None and vram.get("mountPropagation") == "Bidirectional")
    check(f"{n}: /run/vram is the host's", vram is not None and vols[vram["name"]].get("hostPath", {}).get("path") == "/run/vram")
    cmd = c["command"]
    mp = cmd[-1]
    check(f"{n}: vram-keeper runs the daemon, which keeps what is resident across restarts", cmd[:3] == ["vram-keeper", "--", "vram-residency"])
    check(f"{n}: runs the daemon in the foreground on a mount point under /run/vram", "vram-residency" in cmd and "-f" in cmd and mp.startswith("/run/vram/"))
    opts = cmd[cmd.index("-o") + 1].split(",")
    check(f"{n}: backend=cuda, allow_other, auto_unmount", {"backend=cuda", "allow_other", "auto_unmount"} <= set(opts))
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    check(f"{n}: preStop unmounts its mount point", pre[:1] == ["fusermount3"] and "-u" in pre and pre[-1] == mp)
    secret_opt = [o for o in opts if o.startswith("secret=")]
    sm = mounts.get(secret_opt[0][len("secret="):]) if secret_opt else None
    check(f"{n}: the secret is a file of its own (subPath) from a Secret, 0400", sm is not None and "subPath" in sm and vols[sm["name"]].get("secret", {}).get("defaultMode") == 0o400)
    check(f"{n}: one GPU", c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") == 1)
check("grace period for the scrub", tmpl["spec"].get("terminationGracePeriodSeconds", 30) >= 60)
pm = {m["mountPath"]: m for c in pod["spec"]["containers"] for m in c["volumeMounts"]}
pv = {v["name"]: v for v in pod["spec"]["volumes"]}
check("consumer: /run/vram with HostToContainer", pm.get("/run/vram", {}).get("mountPropagation") == "HostToContainer")
check("consumer: the host's /run/vram", pv[pm["/run/vram"]["name"]].get("hostPath", {}).get("path") == "/run/vram")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
