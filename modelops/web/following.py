"""The frontend follows config.json's ``model_name`` without a restart.

TF Serving serves the model the trainer's serving config file names, which follows config.json
(docs/your-data.md, "Under Docker Compose"); a frontend that kept asking for the old name would
answer every request with "no model loaded". Each worker looks at config.json at most every
``every`` seconds (one read; the request path pays one clock reading otherwise) and, when the
name changed, points its serving clients at the new one. The schema needs no such step: it comes
with each served version (web/served.py). A change that does not load is logged once and ignored.
"""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from modelops.core.config_watch import ConfigWatch
from modelops.core.model_name import ENV
from modelops.core.tfserving_client import ServingClient


class ModelNameFollower:
    def __init__(self, app: Flask, path: Path, clients: list[ServingClient], pinned: str | None,
                 every: float = 2.0):
        self.app, self.clients, self.every = app, clients, every
        self.watch = ConfigWatch(path, app.config["MODELOPS"], app.logger.warning, {ENV: pinned or ""})
        self.next = time.monotonic() + every

    def check(self) -> None:
        """``before_request``: take up a renamed model at most every ``every`` seconds."""
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + self.every
        config = self.watch.changed()
        if config is None or config.model_name == self.app.config["MODEL_NAME"]:
            return
        self.app.logger.warning("config.json names the model %r now (was %r): serving is asked for it",
                                config.model_name, self.app.config["MODEL_NAME"])
        self.app.config["MODEL_NAME"] = config.model_name
        for client in self.clients:
            client.rename(config.model_name)
