"""The served model's one name: ``model_name`` in config.json.

``MODEL_NAME`` (the product README's variable) may still be set, but only to the same name: a
trainer, frontend or command whose environment names another model refuses to start with both
names in the message, instead of serving, verifying or asking under a name nobody else uses.
Compose passes ``MODEL_NAME`` through unset by default, so config.json decides everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from modelops.core.config import Config
from modelops.core.errors import ConfigError

ENV = "MODEL_NAME"


def served_model_name(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """``config.model_name``; a ConfigError when ``MODEL_NAME`` is set to another name."""
    named = ((os.environ if environ is None else environ).get(ENV) or "").strip()
    if named and named != config.model_name:
        raise ConfigError(
            f"environment variable {ENV}={named!r} disagrees with model_name {config.model_name!r} in "
            f"{config.config_dir or config.root}/config.json: config.json names the served model; "
            f"unset {ENV} (or set it to {config.model_name!r})")
    return config.model_name
