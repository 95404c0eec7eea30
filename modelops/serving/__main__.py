"""``python -m modelops.serving``: the TF-Serving-compatible server (see server.py)."""

from modelops.serving.server import main

raise SystemExit(main())
