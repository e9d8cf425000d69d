#!/usr/bin/env python3
"""Checks that every file, config and port the deployment files reference exists and agrees.

  deploy-references.py DEPLOY_DIR [--bin RISKWATCH]

A schema validator (docker compose config, kubernetes-validate) checks each file's shape;
this checks what they refer to, across files:

deploy/compose.yaml
  - every bind-mounted path and the build context and Dockerfile exist; named volumes are
    declared;
  - each riskwatch service's --config is a mounted file that passes `riskwatch check-config`
    (with --bin), its --state is on a mounted volume, its --metrics-addr port is the container
    port it publishes and the port its healthcheck asks, its --hosts are the services'
    hostnames in --process order, on one timely port the Dockerfile exposes;
  - Prometheus's config file is mounted, its rule files are mounted and exist, and it scrapes
    every riskwatch service on its metrics port (and nothing else);
  - Grafana's provisioning is mounted, its dashboards path is a mount holding the generated
    dashboards, and its datasource URL is the Prometheus service's port.
deploy/k8s/
  - the kustomization's resources exist;
  - the probes' ports, the Service's target ports and the prometheus.io/port annotation are
    container ports, and the metrics container port is the --metrics-addr port;
  - the ConfigMap's hosts are the StatefulSet's pods (<name>-<i>.<service>:<timely port>),
    one per replica;
  - every configMapKeyRef and secretKeyRef names a key of the ConfigMap or the example Secret,
    every volume mount a volume or a claim template, --config a key of the mounted ConfigMap,
    --state a path on the claim; the config's secret environment variables are set in the
    container; selectors match the pod labels;
  - the ConfigMap's riskwatch.toml passes `riskwatch check-config` (with --bin).

Exit 1 lists every finding. Needs PyYAML (and Python 3.11 for tomllib).
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

errors = []


def err(msg):
    errors.append(msg)


def flag(args, name):
    """The value of `--name VALUE` or `--name=VALUE` in an argument list, or None."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def port_of(addr):
    m = re.search(r":(\d+)$", addr or "")
    return int(m.group(1)) if m else None


def check_config(binary, path, env=None, where=""):
    if not binary:
        return
    r = subprocess.run([binary, "check-config", "--config", str(path)], capture_output=True,
                       text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        err(f"{where}: riskwatch check-config failed ({r.returncode}): "
            f"{(r.stderr or r.stdout).strip()[:400]}")
    else:
        print(f"  {where}: passes riskwatch check-config")


def exposed_ports(dockerfile):
    ports = set()
    for line in dockerfile.read_text().splitlines():
        if line.strip().upper().startswith("EXPOSE"):
            ports |= {int(p.split("/")[0]) for p in line.split()[1:]}
    return ports


# ------------------------------------------------------------------ compose
def compose(deploy, binary):
    path = deploy / "compose.yaml"
    doc = yaml.safe_load(path.read_text())
    if "name" in doc:
        err(f"{path}: a top-level name: (docker-compose 1.29 rejects it; use -p riskwatch)")
    services = doc.get("services", {})
    named = set((doc.get("volumes") or {}).keys())

    def mounts(svc):
        """[(source, target)] of a service; sources of bind mounts are host paths."""
        out = []
        for v in svc.get("volumes", []):
            parts = v.split(":")
            src, dst = parts[0], parts[1]
            out.append((src, dst))
        return out

    def host_path(svc, container_path):
        """The host path a container path is mounted from (bind mounts only), or None."""
        best = None
        for src, dst in mounts(svc):
            if not src.startswith((".", "/")):
                continue
            if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
                if best is None or len(dst) > len(best[1]):
                    best = (src, dst)
        if best is None:
            return None
        rest = container_path[len(best[1]):].lstrip("/")
        return (deploy / best[0] / rest).resolve() if rest else (deploy / best[0]).resolve()

    def on_volume(svc, container_path):
        return any(container_path == dst or container_path.startswith(dst.rstrip("/") + "/")
                   for _, dst in mounts(svc))

    dockerfile = None
    for name, svc in services.items():
        for src, dst in mounts(svc):
            if src.startswith((".", "/")):
                if not (deploy / src).exists():
                    err(f"compose {name}: mounts {src}, which does not exist")
            elif src not in named:
                err(f"compose {name}: volume {src} is not declared under volumes:")
        build = svc.get("build")
        if build:
            ctx = (deploy / build["context"]).resolve()
            df = ctx / build.get("dockerfile", "Dockerfile")
            if not ctx.is_dir():
                err(f"compose {name}: build context {build['context']} does not exist")
            elif not df.is_file():
                err(f"compose {name}: Dockerfile {df} does not exist")
            else:
                dockerfile = df

    riskwatch = {n: s for n, s in services.items()
                 if isinstance(s.get("command"), list) and s["command"][:1] == ["run"]}
    if not riskwatch:
        err("compose: no riskwatch service (command: [run, ...])")
    metrics_port, timely = {}, set()
    by_process, hosts_lists = {}, set()
    for name, svc in riskwatch.items():
        args = svc["command"]
        cfg = flag(args, "--config")
        if not cfg:
            err(f"compose {name}: no --config")
        else:
            hp = host_path(svc, cfg)
            if hp is None or not hp.is_file():
                err(f"compose {name}: --config {cfg} is not a mounted file")
            else:
                check_config(binary, hp, where=f"compose {name} --config {cfg}")
        state = flag(args, "--state")
        if state and not on_volume(svc, state):
            err(f"compose {name}: --state {state} is not on a mounted volume")
        mp = port_of(flag(args, "--metrics-addr"))
        if mp is None:
            err(f"compose {name}: no --metrics-addr HOST:PORT")
            continue
        metrics_port[svc.get("hostname", name)] = mp
        published = {int(str(p).split(":")[-1]) for p in svc.get("ports", [])}
        if mp not in published:
            err(f"compose {name}: --metrics-addr port {mp} is not a published container port "
                f"({sorted(published)})")
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        hc = re.search(r"https?://[^/:]+:(\d+)(/\S*)", test)
        if not hc or int(hc.group(1)) != mp:
            err(f"compose {name}: the healthcheck does not ask the metrics port {mp}: {test}")
        elif hc.group(2) not in ("/ready", "/health"):
            err(f"compose {name}: the healthcheck asks {hc.group(2)}, not /ready or /health")
        hosts = flag(args, "--hosts")
        proc = flag(args, "--process")
        if hosts is not None and proc is not None:
            hosts_lists.add(hosts)
            by_process[int(proc)] = svc.get("hostname", name)
            timely |= {port_of(h) for h in hosts.split(",")}
    if len(hosts_lists) > 1:
        err(f"compose: the riskwatch services disagree on --hosts: {sorted(hosts_lists)}")
    elif hosts_lists:
        hosts = next(iter(hosts_lists)).split(",")
        names = [h.rsplit(":", 1)[0] for h in hosts]
        if sorted(by_process) != list(range(len(hosts))):
            err(f"compose: --process indices {sorted(by_process)} are not 0..{len(hosts) - 1}")
        for i, host in by_process.items():
            if i < len(names) and names[i] != host:
                err(f"compose: --hosts entry {i} is {names[i]}, but process {i} is {host}")
        if len(timely) != 1:
            err(f"compose: --hosts use several ports {sorted(timely)}")
    if dockerfile:
        exposed = exposed_ports(dockerfile)
        for p in set(metrics_port.values()) | timely:
            if p not in exposed:
                err(f"compose: port {p} is not EXPOSEd by {dockerfile.name}")

    # Prometheus: its config, its rules, its targets.
    prom = next((s for s in services.values()
                 if any(str(c).startswith("--config.file=") for c in s.get("command", []))),
                None)
    prom_port = 9090
    if prom is None:
        err("compose: no Prometheus service (--config.file=)")
    else:
        listen = flag(prom["command"], "--web.listen-address")
        prom_port = port_of(listen) or 9090
        cfile = flag(prom["command"], "--config.file")
        hp = host_path(prom, cfile)
        if hp is None or not hp.is_file():
            err(f"compose prometheus: --config.file {cfile} is not a mounted file")
        else:
            pcfg = yaml.safe_load(hp.read_text())
            for rf in pcfg.get("rule_files", []):
                rp = host_path(prom, rf)
                if rp is None or not rp.is_file():
                    err(f"compose prometheus: rule file {rf} is not a mounted file")
            targets = {t for sc in pcfg.get("scrape_configs", [])
                       for st in sc.get("static_configs", []) for t in st.get("targets", [])}
            want = {f"{h}:{p}" for h, p in metrics_port.items()}
            if targets != want:
                err(f"compose prometheus: scrapes {sorted(targets)}, the riskwatch services "
                    f"serve {sorted(want)}")
            print(f"  compose: Prometheus scrapes {len(targets)} riskwatch targets, "
                  f"{len(pcfg.get('rule_files', []))} rule file(s) mounted")

    # Grafana: provisioning, the dashboards, the datasource.
    graf = next((s for s in services.values()
                 if any(dst == "/etc/grafana/provisioning" for _, dst in mounts(s))), None)
    if graf is None:
        err("compose: no Grafana service with /etc/grafana/provisioning mounted")
    else:
        prov = host_path(graf, "/etc/grafana/provisioning")
        for f in sorted((prov / "dashboards").glob("*.y*ml")) if prov else []:
            for provider in yaml.safe_load(f.read_text()).get("providers", []):
                dpath = provider.get("options", {}).get("path", "")
                dh = host_path(graf, dpath)
                if dh is None or not list(dh.glob("*.json")):
                    err(f"compose grafana: dashboards path {dpath} ({f.name}) is not a mount "
                        "holding dashboards")
                else:
                    print(f"  compose: Grafana provisions {len(list(dh.glob('*.json')))} "
                          f"dashboards from {dpath}")
        if prov is None or not list((prov / "datasources").glob("*.y*ml")):
            err("compose grafana: no datasource provisioning")
        url = graf.get("environment", {}).get("PROMETHEUS_URL", "")
        m = re.match(r"https?://([^:/]+):(\d+)", url)
        prom_names = {n for n, s in services.items() if s is prom} | (
            {prom.get("hostname")} if prom and prom.get("hostname") else set())
        if not m or m.group(1) not in prom_names or int(m.group(2)) != prom_port:
            err(f"compose grafana: PROMETHEUS_URL {url!r} is not the Prometheus service on "
                f"port {prom_port}")
    print(f"  compose: {len(services)} services, {len(riskwatch)} riskwatch processes: mounts, "
          "configs and ports checked")


# ------------------------------------------------------------------ kubernetes
def kubernetes(k8s, binary):
    docs = {}
    for f in sorted(k8s.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                docs[doc["kind"]] = doc
    kust = docs.get("Kustomization", {})
    for r in kust.get("resources", []):
        if not (k8s / r).is_file():
            err(f"k8s kustomization: resource {r} does not exist")
    sts, svc, cm = docs["StatefulSet"], docs["Service"], docs["ConfigMap"]
    secret = docs.get("Secret", {})
    secret_keys = set((secret.get("stringData") or {}).keys()) | set(
        (secret.get("data") or {}).keys())
    spec = sts["spec"]
    pod = spec["template"]
    labels = pod["metadata"].get("labels", {})

    def selects(selector):
        return all(labels.get(k) == v for k, v in selector.items())

    if not selects(spec["selector"]["matchLabels"]):
        err("k8s StatefulSet: its selector does not match the pod labels")
    if not selects(svc["spec"].get("selector", {})):
        err("k8s Service: its selector does not match the pod labels")
    if "PodDisruptionBudget" in docs and not selects(
            docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        err("k8s PodDisruptionBudget: its selector does not match the pod labels")
    if spec["serviceName"] != svc["metadata"]["name"]:
        err(f"k8s: serviceName {spec['serviceName']} is not the Service "
            f"{svc['metadata']['name']}")

    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}

    def resolve(port, where):
        if isinstance(port, int):
            if port not in ports.values():
                err(f"k8s {where}: port {port} is not a container port {sorted(ports.values())}")
            return port
        if port not in ports:
            err(f"k8s {where}: port name {port} is not a container port name {sorted(ports)}")
        return ports.get(port)

    args = shlex.split(" ".join(c.get("args", [])))
    cmdline = (c.get("command") or []) + args
    if "-c" in cmdline:  # /bin/sh -c "exec riskwatch ...": the shell words
        cmdline = args
    mp = port_of(flag(cmdline, "--metrics-addr"))
    if mp is None:
        err("k8s StatefulSet: no --metrics-addr HOST:PORT")
    for probe in ("livenessProbe", "readinessProbe"):
        p = c.get(probe, {}).get("httpGet", {})
        if resolve(p.get("port"), f"{probe}") != mp:
            err(f"k8s {probe}: port {p.get('port')} is not the --metrics-addr port {mp}")
    ann = pod["metadata"].get("annotations", {})
    if "prometheus.io/port" in ann and int(ann["prometheus.io/port"]) != mp:
        err(f"k8s: prometheus.io/port {ann['prometheus.io/port']} is not the metrics port {mp}")
    svc_ports = {}
    for sp in svc["spec"]["ports"]:
        svc_ports[sp["name"]] = sp["port"]
        target = resolve(sp.get("targetPort", sp["port"]), f"Service port {sp['name']}")
        if target is not None and sp["port"] != target:
            err(f"k8s Service port {sp['name']}: {sp['port']} differs from the container port "
                f"{target} (the pods' DNS names are used with the Service's port)")

    # The timely cluster: hosts are the pods, in ordinal order, on the timely port.
    hosts = cm["data"].get("hosts", "").split(",")
    replicas = spec.get("replicas", 1)
    want = [f"{sts['metadata']['name']}-{i}.{svc['metadata']['name']}:{ports.get('timely')}"
            for i in range(replicas)]
    if hosts != want:
        err(f"k8s ConfigMap hosts {hosts} are not the StatefulSet's {replicas} pods {want}")

    # References into the ConfigMap and the Secret.
    env = set()
    for e in c.get("env", []):
        env.add(e["name"])
        vf = e.get("valueFrom", {})
        if "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            if r["name"] != cm["metadata"]["name"] or r["key"] not in cm["data"]:
                err(f"k8s env {e['name']}: ConfigMap {r['name']} has no key {r['key']}")
        if "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            if r["name"] != secret.get("metadata", {}).get("name") or r["key"] not in secret_keys:
                err(f"k8s env {e['name']}: Secret {r['name']} (secret.example.yaml) has no key "
                    f"{r['key']}")
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] != cm["metadata"]["name"]:
            err(f"k8s volume {v['name']}: ConfigMap {v['configMap']['name']} does not exist")
    mounts = {}
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes and m["name"] not in claims:
            err(f"k8s volumeMount {m['name']}: no such volume or claim template")
        mounts[m["mountPath"]] = m["name"]

    def mount_of(path):
        best = max((mp_ for mp_ in mounts if path.startswith(mp_.rstrip("/") + "/")),
                   key=len, default=None)
        return best, (mounts[best] if best else None)

    cfg = flag(cmdline, "--config")
    toml_text = None
    if not cfg:
        err("k8s StatefulSet: no --config")
    else:
        base, vol = mount_of(cfg)
        key = cfg[len(base):].lstrip("/") if base else None
        v = volumes.get(vol, {})
        items = {i["path"]: i["key"] for i in v.get("configMap", {}).get("items", [])}
        key = items.get(key, key) if items else key
        if "configMap" not in v or key not in cm["data"]:
            err(f"k8s: --config {cfg} is not a key of the mounted ConfigMap")
        else:
            toml_text = cm["data"][key]
    state = flag(cmdline, "--state")
    if state:
        _, vol = mount_of(state)
        if vol not in claims:
            err(f"k8s: --state {state} is not on the claim template's volume ({sorted(claims)})")
    if toml_text is not None:
        cfgdoc = tomllib.loads(toml_text)
        sd = cfgdoc.get("run", {}).get("state_dir")
        if sd and state and sd != state:
            err(f"k8s: the config's run.state_dir {sd} differs from --state {state}")
        secret_env = set()

        def walk(x):
            if isinstance(x, dict):
                for k, v in x.items():
                    if k.endswith("_env") and isinstance(v, str):
                        secret_env.add(v)
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(cfgdoc)
        for var in sorted(secret_env - env):
            err(f"k8s: the config reads ${var}, which the container does not set")
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "riskwatch.toml"
            f.write_text(toml_text)
            check_config(binary, f, env={v: "k8s-check-placeholder" for v in secret_env},
                         where="k8s ConfigMap riskwatch.toml")
    print(f"  k8s: ports (metrics {mp}, timely {ports.get('timely')}), {len(hosts)} hosts, "
          f"{len(c.get('env', []))} env references and {len(mounts)} mounts checked")


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    deploy = Path(argv[0]).resolve()
    binary = flag(argv, "--bin")
    compose(deploy, binary)
    kubernetes(deploy / "k8s", binary)
    for e in errors:
        print(f"  FAIL {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
