"""Where the repository's own files are: one answer for every module that needs it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
