"""``python -m modelops.serving``: the old name of ``python -m modelops.localserving``."""

from modelops.localserving.server import main

raise SystemExit(main())
