"""A TF Serving that costs nothing: fixed, correct answers to one model's status, metadata and
predict paths (docs: shared reference 1.4, 1.7). The frontend bench has haproxy serve them
(scripts/bench_frontend.py); ``Handler`` serves the same ones from the standard library, for a
process that has neither TensorFlow nor the local server."""

from __future__ import annotations

import json
import re

from harness.servers import QuietHandler

MODEL = "simple_classifier"
# What TF Serving answers, pretty-printed as its REST layer writes it.
STATUS = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                    "status": {"error_code": "OK", "error_message": ""}}]}
METADATA = {"model_spec": {"name": MODEL, "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": {"x1": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}], "unknown_rank": False},
                                  "name": "serving_default_x1:0"},
                           "x2": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}], "unknown_rank": False},
                                  "name": "serving_default_x2:0"}},
                "outputs": {"probability": {"dtype": "DT_FLOAT", "name": "StatefulPartitionedCall:0",
                                            "tensor_shape": {"dim": [{"size": "-1"}, {"size": "1"}],
                                                             "unknown_rank": False}}},
                "method_name": "tensorflow/serving/predict"}}}}}
PREDICTION = '{\n    "predictions": [[0.731058598]\n    ]\n}'  # one row
BASE = f"/v1/models/{MODEL}"
# (method, path pattern) -> the body answered with 200; any other request gets 404 ``{}``.
ROUTES = {
    ("POST", f"^{BASE}(/versions/[0-9]+)?:predict$"): PREDICTION,
    ("GET", f"^{BASE}(/versions/[0-9]+)?$"): json.dumps(STATUS, indent=4),
    ("GET", f"^{BASE}(/versions/[0-9]+)?/metadata$"): json.dumps(METADATA, indent=4),
}


class Handler(QuietHandler):
    """``ROUTES`` over keep-alive HTTP/1.1, the request body read first as TF Serving does."""

    protocol_version = "HTTP/1.1"

    def _answer(self, method: str) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = 404, "{}"
        for (route_method, pattern), text in ROUTES.items():
            if method == route_method and re.match(pattern, self.path):
                status, body = 200, text
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server API)
        self._answer("GET")

    def do_POST(self):  # noqa: N802 (http.server API)
        self._answer("POST")
