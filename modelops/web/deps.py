"""What the views share, looked up on the current app: the serving client and the model store."""

from __future__ import annotations

from flask import current_app

from modelops.serving.client import ServingClient
from modelops.store import ModelStore


def serving() -> ServingClient:
    return current_app.extensions["serving"]


def store() -> ModelStore:
    return ModelStore(current_app.config["MODELOPS"].models_dir)
