"""The containers' healthcheck: ``python -m modelops.core.probe URL [--models-dir D] [--file F]``.

In core (standard library only) because it runs in both images, and the frontend image holds
core/ and web/ only. Exit 0 when URL answers 2xx and, when given, a model version and the
files exist; else 1.
"""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from pathlib import Path


def has_model(models_dir: Path) -> bool:
    """True when a numeric version directory (what TF Serving loads) exists."""
    return models_dir.is_dir() and any(p.name.isdigit() and p.is_dir() for p in models_dir.iterdir())


def probe(url: str, models_dir: Path | None = None, timeout: float = 5.0, files: tuple[Path, ...] = ()) -> bool:
    """True if ``url`` answers 2xx and, when given, ``models_dir`` holds a version and ``files`` exist."""
    if models_dir is not None and not has_model(models_dir):
        return False
    if not all(f.is_file() for f in files):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own URLs)
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--file", type=Path, action="append", default=[], help="and this file exists (repeatable)")


def run(args: argparse.Namespace) -> int:
    return 0 if probe(args.url, args.models_dir, files=tuple(args.file)) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.core.probe",
                                     description="healthcheck: exit 0 if URL answers 2xx (and a model exists)")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
