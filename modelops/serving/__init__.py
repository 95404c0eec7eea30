"""The project's TF-Serving-compatible local server (``python -m modelops.serving``)."""
