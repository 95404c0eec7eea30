"""``python -m modelops.localserving``: the TF-Serving-compatible server (see server.py)."""

from modelops.localserving.server import main

raise SystemExit(main())
