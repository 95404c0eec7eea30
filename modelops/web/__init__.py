"""The frontend: a Flask app proxying predictions to TF Serving and showing the model's record.

Production runs it on gunicorn::

    gunicorn --config python:modelops.web.gunicorn_conf 'modelops.web:create_app()'

Settings come from the environment (the product README's ``TF_HOST`` and ``MODEL_NAME``, plus
the limits below); ``test_config`` overrides any of them and can inject the serving transport
(``SERVING_SESSION``) and a Prometheus registry (``METRICS_REGISTRY``).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from modelops.core.config import default_config_path, load_config
from modelops.core.errors import ConfigError
from modelops.core.model_name import ENV, served_model_name
from modelops.core.paths import REPO_ROOT
from modelops.core.tfserving_client import ServingClient, base_url_of, env_target
from modelops.web import drift, errors, files, headers, health, metrics, openapi, pages, predict, traffic
from modelops.web.following import ModelNameFollower
from modelops.web.served import SchemaBook


def settings(test_config: dict | None = None) -> dict:
    """The app's settings: environment, then ``test_config``; checked, so a mistake is one ConfigError.

    gunicorn's master calls this before starting workers, so a bad ``TF_HOST``, limit or
    config.json stops the server with the message instead of a worker traceback per boot.
    """
    tf_host, model_name = env_target()
    values = dict(
        TF_HOST=tf_host,
        MODEL_NAME=model_name,  # None: the model_name of config.json; set, it must be the same
        MAX_INSTANCES=_env_number("MAX_INSTANCES", 1000, int),
        MAX_CONTENT_LENGTH=_env_number("MAX_CONTENT_LENGTH", 1024 * 1024, int),
        TF_TIMEOUT_SECONDS=_env_number("TF_TIMEOUT_SECONDS", 10.0, float),
        REQUEST_TIMEOUT_SECONDS=request_timeout_seconds(),
        TRUSTED_HOSTS=[h.strip() for h in os.environ.get("TRUSTED_HOSTS", "").split(",") if h.strip()] or None,
        MODELOPS_CONFIG=None,  # None: $MODELOPS_CONFIG, else config.json at the repo root
        SERVING_SESSION=None,
        METRICS_REGISTRY=None,
        HISTORY_ROWS=10,
    )
    values.update(test_config or {})
    values["TF_HOST"] = base_url_of(values["TF_HOST"])
    values["MODELOPS"] = load_config(values["MODELOPS_CONFIG"])
    values["MODEL_NAME_PINNED"] = values["MODEL_NAME"]  # MODEL_NAME as given (None: config.json decides)
    values["MODEL_NAME"] = served_model_name(values["MODELOPS"], {ENV: values["MODEL_NAME"] or ""})
    return values


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(REPO_ROOT / "templates"), static_folder=str(REPO_ROOT / "static"))
    app.json.sort_keys = False  # type: ignore[attr-defined]  # answers keep their order (label.classes order)
    app.config.from_mapping(settings(test_config))

    web_metrics = metrics.metrics_for(app.config["METRICS_REGISTRY"])
    app.extensions["metrics"] = web_metrics
    app.extensions["serving"] = ServingClient(
        app.config["TF_HOST"],
        app.config["MODEL_NAME"],
        session=app.config["SERVING_SESSION"],
        timeout=app.config["TF_TIMEOUT_SECONDS"],
        observe=web_metrics.upstream,
    )
    cfg = app.config["MODELOPS"]
    app.extensions["schemas"] = SchemaBook(cfg.models_dir, cfg.schema)  # each served version's own schema
    mirror_client = ServingClient(  # its own client: mirrors stay out of the upstream latency metric
        app.config["TF_HOST"], app.config["MODEL_NAME"], session=app.config["SERVING_SESSION"],
        timeout=app.config["TF_TIMEOUT_SECONDS"],
    )
    rollout_metrics = metrics.metrics_for(app.config["METRICS_REGISTRY"], traffic.RolloutMetrics)
    app.extensions["traffic"] = traffic.Traffic(cfg.rollout, cfg.history_path, app.extensions["serving"],
                                                mirror_client, rollout_metrics, schema=cfg.schema,
                                                schema_for=app.extensions["schemas"].schema)
    follower = ModelNameFollower(app, default_config_path() if app.config["MODELOPS_CONFIG"] is None
                                 else Path(app.config["MODELOPS_CONFIG"]),
                                 [app.extensions["serving"], mirror_client], app.config["MODEL_NAME_PINNED"])
    app.extensions["model_name"] = follower
    app.before_request(follower.check)
    for module in (predict, pages, health, metrics, openapi, files):
        app.register_blueprint(module.bp)
    metrics.init_app(app)
    errors.init_app(app)
    drift.init_app(app)
    headers.init_app(app)
    return app


def request_timeout_seconds() -> float:
    """How long a client has to send a whole request, head and body (the worker's deadline, web/worker.py)."""
    return _env_number("REQUEST_TIMEOUT_SECONDS", 15.0, float)


def _env_number(name: str, default, kind):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value > 0:
        raise ConfigError(f"environment variable {name} must be a positive {kind.__name__}, got {raw!r}")
    return value
