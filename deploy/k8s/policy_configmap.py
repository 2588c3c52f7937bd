"""Print the `wuguan-policies` ConfigMap (as JSON, which kubectl accepts) from policy files.

    python deploy/k8s/policy_configmap.py [POLICY_DIR] | kubectl apply -f -

POLICY_DIR holds billing_guard.json, dunning.json and cards.json (the layout of
WUGUAN_POLICY_DIR). Without it, the policies bundled with the services are used. Generated
rather than checked in, so the deployed policies are the reviewed files, never a stale copy.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

SERVICES = ("billing_guard", "dunning", "cards")
ROOT = Path(__file__).resolve().parents[2]


def policy_files(policy_dir: Path | None) -> dict[str, Path]:
    if policy_dir is None:
        return {s: ROOT / "services" / s / "policy" / "default.json" for s in SERVICES}
    return {s: policy_dir / f"{s}.json" for s in SERVICES}


def configmap(policy_dir: Path | None) -> dict:
    data = {}
    for service, path in policy_files(policy_dir).items():
        text = path.read_text(encoding="utf-8")
        json.loads(text)  # refuse to ship a file that is not even JSON
        data[f"{service}.json"] = text
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "wuguan-policies",
            "namespace": "wuguan",
            "labels": {"app.kubernetes.io/part-of": "wuguan"},
        },
        "data": data,
    }


if __name__ == "__main__":
    print(json.dumps(configmap(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
