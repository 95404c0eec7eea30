"""Train, gate, serve and monitor a small TensorFlow classifier (design notes: docs/design.md)."""

__version__ = "0.1.0"  # pyproject.toml's [project] version (a test keeps them equal); lineage records it
