"""Train, gate, serve and monitor a small TensorFlow classifier (see DESIGN.md)."""
