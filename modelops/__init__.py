"""Train, gate, serve and monitor a small TensorFlow classifier (design notes: docs/design.md)."""
