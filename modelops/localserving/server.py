"""The TF-Serving-compatible local server: ``tensorflow_model_server``'s flags, one process.

Used where no Docker engine runs ``tensorflow/serving`` (local mode, CI). Like TF Serving, it
opens no port until the first version is AVAILABLE, so a TCP connect means "initial load done".

One process on purpose: TF must not be initialised in a process that later forks, and the
servables, their state history and the metrics must be one truth for REST and gRPC. So there is
no pre-fork server: REST runs on cheroot (CherryPy's production WSGI server: a thread pool, with
idle keep-alive connections parked in a selector instead of holding a thread), gRPC on grpcio's
thread pool, and the version poller on its own thread; TF releases the GIL while it computes.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import tensorflow as tf

from modelops.core.errors import ConfigError, ModelopsError
from modelops.localserving import grpc_api, model_config
from modelops.localserving.model_config import ModelSpec
from modelops.localserving.monitoring import Metrics, prometheus_path
from modelops.localserving.read_deadline import DeadlineServer, ReadDeadline
from modelops.localserving.registry import ModelRegistry
from modelops.localserving.request_limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INSTANCES, LISTEN_BACKLOG
from modelops.localserving.rest import RestApp

logger = logging.getLogger("modelops.localserving")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``tensorflow_model_server``'s flag names and defaults (REST on 8501, as in the Docker image)."""
    parser = argparse.ArgumentParser(prog="python -m modelops.localserving", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 disables gRPC")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port; 0 disables REST")
    parser.add_argument("--rest_api_num_threads", type=int, default=4 * (os.cpu_count() or 1))
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                        help="to read a request (line, headers, body) and to answer it")
    parser.add_argument("--rest_api_max_request_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="largest REST body, as sent and once gunzipped (413 beyond)")
    parser.add_argument("--rest_api_max_instances", type=int, default=DEFAULT_MAX_INSTANCES,
                        help="most rows in one REST predict request (413 beyond); not a TF Serving flag")
    parser.add_argument("--grpc_channel_arguments", default="",
                        help="comma-separated key=value gRPC server options, e.g. grpc.max_receive_message_length=N")
    parser.add_argument("--grpc_max_threads", type=int, default=4 * (os.cpu_count() or 1))
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path", type=Path, help="required unless --model_config_file is given")
    parser.add_argument("--model_config_file", type=Path, help="ModelServerConfig text proto")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0, help="0: read once")
    parser.add_argument("--allow_version_labels_for_unavailable_models", type=_flag_bool, nargs="?", const=True,
                        default=False)
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--max_num_load_retries", type=int, default=5)
    parser.add_argument("--load_retry_interval_micros", type=int, default=60_000_000)
    parser.add_argument("--monitoring_config_file", default="")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0, help="0: TensorFlow's default")
    args = parser.parse_args(argv)
    if args.port and args.port == args.rest_api_port:
        parser.error("--port and --rest_api_port must differ")
    try:
        args.grpc_options = grpc_api.channel_options(args.grpc_channel_arguments)
    except ConfigError as e:
        parser.error(str(e))
    if args.model_base_path is None and args.model_config_file is None:
        parser.error("Both server_options.model_base_path and server_options.model_config_file are empty!")
    return args


def _flag_bool(text: str) -> bool:
    """TF Serving's boolean flag values: ``--flag``, ``--flag=true``, ``--flag=false``."""
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1")


def initial_models(args: argparse.Namespace, registry: ModelRegistry) -> list[ModelSpec]:
    """The models to start with: the config file's, else the one the flags name."""
    if args.model_config_file is None:
        return [ModelSpec(args.model_name, args.model_base_path)]
    text, specs = model_config.read(args.model_config_file)
    registry.remember_config_text(text)
    return specs


def start_rest(args: argparse.Namespace, host: str, registry: ModelRegistry, metrics: Metrics,
               metrics_path: str | None) -> DeadlineServer:
    """cheroot bound to ``--rest_api_port`` (not serving yet), each request read under a deadline."""
    deadline = ReadDeadline(args.rest_api_timeout_in_ms / 1000.0)
    app = RestApp(registry, metrics, metrics_path, args.rest_api_timeout_in_ms, args.rest_api_max_request_bytes,
                  read_done=deadline.done, max_instances=args.rest_api_max_instances)
    rest = DeadlineServer(
        (host, args.rest_api_port),
        app,
        numthreads=args.rest_api_num_threads,
        server_name="modelops-serving",
        timeout=60,
        shutdown_timeout=1,
        request_queue_size=LISTEN_BACKLOG,
        read_deadline=deadline,
    )
    # cheroot's default (10) closes the 11th client's connection; None: no limit
    rest.keep_alive_conn_limit = None  # type: ignore[assignment]  # cheroot's stub says int, code allows None
    rest.prepare()  # binds now, so the log line below means "listening"
    logger.info("Exporting HTTP/REST API at:localhost:%d ...", args.rest_api_port)
    return rest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    metrics = Metrics()
    registry = ModelRegistry(
        args.allow_version_labels_for_unavailable_models,
        metrics=metrics,
        max_load_retries=max(args.max_num_load_retries, 0),
        retry_interval=args.load_retry_interval_micros / 1e6,
        session_config=tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=args.tensorflow_intra_op_parallelism,
            inter_op_parallelism_threads=args.tensorflow_inter_op_parallelism,
        ),
    )
    metrics.label_models(registry.knows)
    try:
        metrics_path = prometheus_path(args.monitoring_config_file) if args.monitoring_config_file else None
        registry.start(initial_models(args, registry), args.file_system_poll_wait_seconds)
    except ModelopsError as e:
        logger.error("Failed to start server. Error: %s", e)
        return 255
    registry.start_polling(
        args.file_system_poll_wait_seconds, args.model_config_file, args.model_config_file_poll_wait_seconds
    )

    stopped = threading.Event()
    # Unlike tensorflow_model_server (always 0.0.0.0), local mode listens on $BIND_ADDRESS only.
    host = os.environ.get("BIND_ADDRESS") or "127.0.0.1"
    grpc_server = None
    if args.port:
        grpc_server = grpc_api.start(registry, metrics, host, args.port, args.grpc_max_threads, args.grpc_options)
        logger.info("Running gRPC ModelServer at %s:%d ...", host, args.port)
    rest = start_rest(args, host, registry, metrics, metrics_path) if args.rest_api_port else None

    def stop(signum, _frame) -> None:
        logger.info("Received signal %d, shutting down", signum)
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if rest is not None:
        threading.Thread(target=rest.serve, name="rest", daemon=True).start()
    stopped.wait()
    registry.stop()
    if rest is not None:
        rest.stop()
    if grpc_server is not None:
        grpc_server.stop(grace=1).wait()
    return 0
