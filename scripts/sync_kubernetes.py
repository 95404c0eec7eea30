"""Write the files deploy/kubernetes/ derives from the project's own, so those stay the one source.

kustomize reads nothing outside its folder, so ``config.json`` and ``monitoring/monitoring.config``
are copied into the base, and ``monitoring/alerts.yml`` becomes the prometheus-operator
component's PrometheusRule (comments kept). Run it after changing any of them; ``--check``
(tests/deploy) only reports what is out of date and exits 1.

    python scripts/sync_kubernetes.py [--check]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
COPIES = {
    ROOT / "config.json": DEPLOY / "base" / "files" / "config.json",
    ROOT / "monitoring" / "monitoring.config": DEPLOY / "base" / "files" / "monitoring.config",
    ROOT / "monitoring" / "tfserving-health.sh": DEPLOY / "base" / "files" / "tfserving-health.sh",
}
ALERTS = ROOT / "monitoring" / "alerts.yml"
PROMETHEUS_RULE = DEPLOY / "components" / "prometheus-operator" / "prometheusrule.yaml"
HEADER = "# Generated from monitoring/alerts.yml by scripts/sync_kubernetes.py: edit that file, then rerun.\n"


def prometheus_rule(alerts_text: str) -> str:
    """``alerts.yml`` as a PrometheusRule object: its groups, unchanged, under ``spec``."""
    yaml = YAML()  # round-trip: the rules' comments travel with them
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    rules = yaml.load(alerts_text)
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "modelops-alerts", "labels": {"app.kubernetes.io/part-of": "modelops"}},
        "spec": {"groups": rules["groups"]},
    }
    out = io.StringIO()
    yaml.dump(document, out)
    return HEADER + out.getvalue()


def wanted() -> dict[Path, str]:
    files = {target: source.read_text(encoding="utf-8") for source, target in COPIES.items()}
    files[PROMETHEUS_RULE] = prometheus_rule(ALERTS.read_text(encoding="utf-8"))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date files (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = [path for path, text in wanted().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run: python scripts/sync_kubernetes.py)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted()[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
