"""What the views share, looked up on the current app: the serving client and the model store."""

from __future__ import annotations

from flask import current_app

from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient


def serving() -> ServingClient:
    return current_app.extensions["serving"]


def store() -> ModelStore:
    return ModelStore(current_app.config["MODELOPS"].models_dir)
