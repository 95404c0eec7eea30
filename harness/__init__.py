"""What the tests and the benchmarks (scripts/bench.py) both run: real processes, a project's
config.json, a fake TF Serving's answers. Importable from the repository root without installing
anything (pytest puts the root on ``sys.path``; the scripts insert it); never in an image."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
