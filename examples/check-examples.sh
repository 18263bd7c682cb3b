#!/usr/bin/env bash
# Checks the examples in this directory:
#   prometheus/  alerts.yml (promtool check rules), its unit tests (promtool
#                test rules), prometheus.yml (promtool check config);
#   kubernetes/  every *.yaml: yamllint (kubernetes/.yamllint), validation
#                against the Kubernetes API schemas that ship inside the
#                kubernetes-validate package (nothing is downloaded), and a
#                structural check of what the sidecar needs (below).
# A missing tool is an error, never a skipped check. The tools:
#   apt-get install prometheus           # promtool (Debian 12: 2.42)
#   pip install yamllint==1.38.0 kubernetes-validate==1.37.0
#                                        # (brings PyYAML and jsonschema)
#   python3 3.11 or later                # tomllib, for the manifest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

missing=0
need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "error: $1 is not installed ($2)" >&2
        missing=1
    fi
}
need promtool "apt-get install prometheus"
need yamllint "pip install yamllint"
need kubernetes-validate "pip install kubernetes-validate"
need python3 "apt-get install python3"
if [ "$missing" -ne 0 ]; then
    exit 1
fi
if ! python3 -c 'import tomllib, yaml' 2>/dev/null; then
    echo "error: python3 needs tomllib (Python 3.11+) and PyYAML (pip install pyyaml)" >&2
    exit 1
fi

shopt -s nullglob
k8s=(kubernetes/*.yaml)
if [ "${#k8s[@]}" -eq 0 ]; then
    echo "error: no kubernetes/*.yaml" >&2
    exit 1
fi

echo "== promtool check rules"
promtool check rules prometheus/alerts.yml
echo "== promtool test rules"
promtool test rules prometheus/alerts_test.yml
echo "== promtool check config"
promtool check config prometheus/prometheus.yml
echo "== yamllint"
yamllint --strict -c kubernetes/.yamllint "${k8s[@]}"
echo "yamllint: ${#k8s[@]} files clean"
echo "== kubernetes-validate (schemas shipped in the package)"
kubernetes-validate --strict "${k8s[@]}"
echo "== the sidecar's structure"
python3 - "${k8s[@]}" <<'EOF'
"""What the sidecar needs, beyond the API schema."""
import json
import posixpath
import sys
import tomllib

import yaml

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
    return ok


docs = []
for name in sys.argv[1:]:
    with open(name) as f:
        docs += [d for d in yaml.safe_load_all(f) if d]


def one(kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"error: expected one {kind}, found {len(found)}")
    return found[0]


deploy, cm, secret, svc = (one(k) for k in ("Deployment", "ConfigMap", "Secret", "Service"))
pod = deploy["spec"]["template"]
spec = pod["spec"]
containers = {c["name"]: c for c in spec["containers"]}
sidecar = containers.get("hotreload")
if sidecar is None:
    sys.exit("error: no container named hotreload in the Deployment")
volumes = {v["name"]: v for v in spec.get("volumes", [])}
data = cm.get("data", {})

# The command.
argv = sidecar.get("command", []) + sidecar.get("args", [])
check(argv[-2:] == ["run", "/etc/hotreload/hotreload.toml"] and "hotreload" in argv[0],
      f"sidecar runs `hotreload run /etc/hotreload/hotreload.toml` (it runs {argv})")

# Probes on the admin port.
for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
    get = sidecar.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and get.get("port") == 7070,
          f"sidecar {probe} is httpGet {path} on port 7070 (it is {get})")

# Scrape annotations.
want = {"prometheus.io/scrape": "true", "prometheus.io/port": "7070", "prometheus.io/path": "/metrics"}
ann = pod.get("metadata", {}).get("annotations", {})
for k, v in want.items():
    check(ann.get(k) == v, f"pod annotation {k}: {v!r} (it is {ann.get(k)!r})")


def source(path):
    """What the sidecar sees at `path`: (volume, key inside it)."""
    best = None
    for m in sidecar.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    if best is None:
        return None, None
    vol = volumes.get(best["name"], {})
    rel = posixpath.relpath(path, best["mountPath"])
    api = vol.get("configMap") or vol.get("secret")
    if api is None:
        return vol, rel
    items = api.get("items")
    if items is None:
        return vol, rel
    keys = [i["key"] for i in items if i["path"] == rel]
    return vol, keys[0] if keys else None


# No subPath anywhere: a subPath mount is never updated.
for c in spec["containers"]:
    for m in c.get("volumeMounts", []):
        check("subPath" not in m and "subPathExpr" not in m,
              f"container {c['name']} mounts {m['name']} without subPath")

# The manifest comes from the ConfigMap, and parses.
manifest_path = "/etc/hotreload/hotreload.toml"
vol, key = source(manifest_path)
check(vol is not None and vol.get("configMap", {}).get("name") == cm["metadata"]["name"] and key in data,
      f"{manifest_path} is a key of ConfigMap {cm['metadata']['name']}")
manifest = tomllib.loads(data.get(key or "hotreload.toml", ""))
base = posixpath.dirname(manifest_path)

# Each component's configuration: a key of the ConfigMap through a directory
# mount, valid in its format, the same as the demo's.
components = manifest.get("component", [])
check(len(components) == 2, "the manifest declares two components")
for comp in components:
    path = posixpath.normpath(posixpath.join(base, comp["config"]))
    vol, key = source(path)
    if check(vol is not None and vol.get("configMap", {}).get("name") == cm["metadata"]["name"] and key in data,
             f"component {comp['name']}: {path} is a key of ConfigMap {cm['metadata']['name']}"):
        parse = json.loads if key.endswith(".json") else yaml.safe_load
        with open(f"demo/config/{key}") as f:
            demo = parse(f.read())
        check(parse(data[key]) == demo, f"{key} in the ConfigMap matches examples/demo/config/{key}")

# The token: a key of the Secret, through a secret volume.
admin = manifest.get("admin", {})
token_file = admin.get("token_file", "")
check(token_file == "/etc/hotreload/token/token", f"[admin] token_file is /etc/hotreload/token/token ({token_file})")
vol, key = source(posixpath.join(base, token_file))
check(vol is not None and vol.get("secret", {}).get("secretName") == secret["metadata"]["name"]
      and key in {**secret.get("data", {}), **secret.get("stringData", {})},
      f"{token_file} is a key of Secret {secret['metadata']['name']} through a secret volume")

# The admin port everywhere, and the Service's name allowed as a Host.
port = int(admin.get("listen", "").rpartition(":")[2] or 0)
check(port == 7070, f"[admin] listen is on port 7070 ({admin.get('listen')})")
check(any(p.get("containerPort") == 7070 for p in sidecar.get("ports", [])), "sidecar declares containerPort 7070")
check(all(p["port"] == 7070 for p in svc["spec"]["ports"]), "the Service port is 7070 (the daemon checks Host's port)")
check(svc["metadata"]["name"] in admin.get("allowed_hosts", []), "the Service's name is in [admin] allowed_hosts")
labels = pod.get("metadata", {}).get("labels", {})
check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "the Service selects the pod")

# Read-only root, non-root user, state on an emptyDir, resources.
sc, psc = sidecar.get("securityContext", {}), spec.get("securityContext", {})
check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "sidecar runs as non-root")
check(sc.get("readOnlyRootFilesystem") is True, "sidecar has a read-only root filesystem")
state = manifest.get("runtime", {}).get("state_dir", "")
vol, _ = source(posixpath.join(base, state))
check(state.startswith("/") and vol is not None and "emptyDir" in vol, f"[runtime] state_dir {state} is on an emptyDir")
res = sidecar.get("resources", {})
for part in ("requests", "limits"):
    check({"cpu", "memory"} <= set(res.get(part, {})), f"sidecar resources.{part} has cpu and memory")

if failures:
    for f in failures:
        print(f"FAILED: {f}")
    sys.exit(1)
print(f"structure: ok ({len(components)} components, token from Secret {secret['metadata']['name']}, "
      f"probes /readyz and /healthz on 7070, no subPath)")
EOF
echo "all example checks passed"
