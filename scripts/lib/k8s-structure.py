#!/usr/bin/env python3
"""Structural check of deploy/k8s when kubernetes-validate is not available: every file
parses, has apiVersion/kind/metadata.name, and the StatefulSet has what docs/operations.md
relies on (headless service name, probes on /health and /ready, resources, a PVC template,
secret references)."""
import sys
from pathlib import Path

import yaml

d = Path(sys.argv[1])
docs = {}
for f in sorted(d.glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        if doc is None:
            continue
        for k in ("apiVersion", "kind"):
            assert k in doc, f"{f}: no {k}"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{f}: no metadata.name"
        docs[doc["kind"]] = doc
for kind in ("StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "Secret"):
    assert kind in docs, f"no {kind}"
assert docs["Service"]["spec"].get("clusterIP") == "None", "the Service is not headless"
sts = docs["StatefulSet"]["spec"]
assert sts["serviceName"] == docs["Service"]["metadata"]["name"]
c = sts["template"]["spec"]["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/health"
assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
assert c["resources"]["requests"] and c["resources"]["limits"]
assert sts["volumeClaimTemplates"], "no PVC template"
assert any("secretKeyRef" in e.get("valueFrom", {}) for e in c["env"]), "no secret reference"
print(f"  {len(docs)} kinds structurally sound")
