"""REST contract on a server that is not changed underneath: status, metadata, predict, errors, routing."""

from __future__ import annotations

import http.client
import json
import threading
from urllib.parse import urlsplit

import pytest

from tests.localserving.conftest import REMOTE_URL, ROWS, close, local_only

pytestmark = [pytest.mark.slow, pytest.mark.contract]


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    return body["error"]


# -- status ------------------------------------------------------------------------------------


def test_status_lists_the_served_version_as_a_string_with_state_names(served):
    body = served.get(f"/v1/models/{served.model}").json()
    latest = served.latest()
    entries = body["model_version_status"]
    assert entries[0] == {
        "version": str(latest),
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert [int(e["version"]) for e in entries] == sorted((int(e["version"]) for e in entries), reverse=True)
    if not REMOTE_URL:
        assert entries == [entries[0]] and latest == 2  # latest policy: version 1 on disk is never loaded


def test_status_of_one_version_and_unknown_ones(served):
    latest = served.latest()
    one = served.get(f"/v1/models/{served.model}/versions/{latest}")
    assert one.status_code == 200
    assert one.json()["model_version_status"] == [served.statuses()[latest]]
    assert served.get(f"/v1/models/{served.model}/versions/00{latest}").json() == one.json()  # leading zeros
    assert error_of(served.get(f"/v1/models/{served.model}/versions/987654"), 404) == (
        f"Could not find version 987654 of model {served.model}"
    )
    assert error_of(served.get("/v1/models/no_such_model"), 404) == "Could not find any versions of model no_such_model"


def test_status_ignores_labels(served):
    response = served.get(f"/v1/models/{served.model}/labels/whatever")
    assert response.status_code == 200
    assert response.json() == served.get(f"/v1/models/{served.model}").json()


# -- metadata ----------------------------------------------------------------------------------


def test_metadata_has_the_double_signature_def_nesting(served):
    latest = served.latest()
    for path in (f"/v1/models/{served.model}/metadata", f"/v1/models/{served.model}/versions/{latest}/metadata"):
        body = served.get(path).json()
        assert body["model_spec"] == {"name": served.model, "signature_name": "", "version": str(latest)}
        signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert signature["method_name"] == "tensorflow/serving/predict"
        x = signature["inputs"]["x"]
        assert x["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "2"]
        probability = signature["outputs"]["probability"]
        assert (probability["dtype"], [d["size"] for d in probability["tensor_shape"]["dim"]]) == (
            "DT_FLOAT",
            ["-1", "1"],
        )


def test_metadata_of_unloaded_version_or_unknown_model_is_404(served):
    assert error_of(served.get(f"/v1/models/{served.model}/versions/987654/metadata"), 404) == (
        f"Servable not found for request: Specific({served.model}, 987654)"
    )
    assert error_of(served.get("/v1/models/no_such_model/metadata"), 404) == (
        "Servable not found for request: Latest(no_such_model)"
    )


# -- predict -----------------------------------------------------------------------------------


def test_row_and_columnar_formats_answer_like_the_model_in_process(served, expected):
    m = served.model
    row = served.post(f"/v1/models/{m}:predict", {"instances": ROWS}).json()
    assert list(row) == ["predictions"]
    predictions = row["predictions"]
    assert len(predictions) == len(ROWS) and all(len(p) == 1 and 0.0 <= p[0] <= 1.0 for p in predictions)
    if expected is not None:
        assert close(predictions, expected)
    named_rows = served.post(f"/v1/models/{m}:predict", {"instances": [{"x": r} for r in ROWS]}).json()
    columnar = served.post(f"/v1/models/{m}:predict", {"inputs": ROWS}).json()
    named_columns = served.post(f"/v1/models/{m}:predict", {"inputs": {"x": ROWS}, "ignored": 1}).json()
    assert list(columnar) == list(named_columns) == ["outputs"]
    for answer in (named_rows["predictions"], columnar["outputs"], named_columns["outputs"]):
        assert close(answer, predictions)


def test_specific_version_signature_name_and_int_inputs(served):
    m, latest = served.model, served.latest()
    predictions = served.predict()
    assert close(served.predict(version=latest), predictions)
    explicit = served.post(f"/v1/models/{m}:predict", {"signature_name": "serving_default", "instances": ROWS})
    assert close(explicit.json()["predictions"], predictions)
    ints = served.post(f"/v1/models/{m}:predict", {"instances": [[1, 2]]})  # ints are fine for float inputs
    assert close(ints.json()["predictions"], served.predict([[1.0, 2.0]]))
    trailing = served.post(f"/v1/models/{m}:predict", data=b'{"instances": [[1.0, 2.0]]} trailing bytes')
    assert close(trailing.json()["predictions"], served.predict([[1.0, 2.0]]))


def test_unknown_model_version_or_label_on_predict(served):
    m = served.model
    body = {"instances": ROWS}
    assert error_of(served.post("/v1/models/no_such_model:predict", body), 404) == (
        "Servable not found for request: Latest(no_such_model)"
    )
    assert error_of(served.post(f"/v1/models/{m}/versions/987654:predict", body), 404) == (
        f"Servable not found for request: Specific({m}, 987654)"
    )
    assert error_of(served.post(f"/v1/models/{m}/labels/nope:predict", body), 400) == (
        "Unrecognized servable version label: nope"
    )
    # JSON is parsed before the model is looked up
    assert error_of(served.post("/v1/models/no_such_model:predict", data=b"{not json"), 400).startswith(
        "JSON Parse error"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"{oops", "JSON Parse error"),
        (b"[1, 2]", "Is not object"),
        (b'{"instances": [[1.0, 2.0]], "signature_name": 7}', "'signature_name' key must be a string value"),
        (
            b'{"instances": [[1.0, 2.0]], "signature_name": "nope"}',
            'Serving signature name: "nope" not found in signature def',
        ),
        (b'{"instances": [[1.0, 2.0]], "inputs": [[1.0, 2.0]]}', "expecting only one of 'inputs' or 'instances' keys"),
        (b'{"rows": [[1.0, 2.0]]}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": []}', "No values in 'instances' array"),
        (b'{"instances": {"x": [1.0, 2.0]}}', "Expecting 'instances' to be an list/array"),
        (b'{"instances": [["a", 2.0]]}', 'JSON Value: "a" Type: String is not of expected type: float'),
        (b'{"instances": [[true, 2.0]]}', "Type: True is not of expected type: float"),
        (b'{"instances": [[null, 2.0]]}', "Type: Null is not of expected type: float"),
        (b'{"instances": [[1.0, 2.0], [1.0]]}', "Failed to process element: 1 of 'instances' list"),
        (b'{"instances": [{"y": [1.0, 2.0]}]}', "does not have named input: y"),
        (b'{"inputs": {"y": [[1.0, 2.0]]}}', "Missing named input: x in 'inputs' object."),
        (b'{"instances": [[1.0, 2.0, 3.0]]}', ""),  # wrong shape: TF's own wording
        (b'{"instances": [1.0, 2.0]}', ""),
    ],
)
def test_bad_requests_are_400_with_an_error(served, body, message):
    error = error_of(served.post(f"/v1/models/{served.model}:predict", data=body), 400)
    assert message in error
    assert served.predict() is not None  # and the server still answers


# -- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/{m}:predict"),
        ("POST", "/v1/models/{m}"),
        ("POST", "/v1/models/{m}/metadata"),
        ("GET", "/v1/models/{m}/version/1"),
        ("GET", "/v1/models/{m}/versions/one"),
        ("GET", "/v1/models/{m}/versions/1/labels/x"),
        ("GET", "/v1/models/{m}/"),
        ("PUT", "/v1/models/{m}"),
        ("DELETE", "/v1/models/{m}"),
        ("POST", "/v1/models/{m}:Predict"),
    ],
)
def test_malformed_v1_paths_are_400(served, method, path):
    path = path.format(m=served.model)
    response = served.session.request(method, served.url + path, data=b'{"instances": [[1.0, 2.0]]}', timeout=30)
    assert error_of(response, 400) == f"Malformed request: {method} {path}"


def test_missing_model_name_is_400(served):
    assert error_of(served.get("/v1/models"), 400) == "Missing model name in request."


@pytest.mark.parametrize("path", ["/", "/health", "/v1", "/models/m"])
def test_paths_outside_v1_are_html_404(served, path):
    response = served.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


# -- concurrency -------------------------------------------------------------------------------


def test_many_keep_alive_clients_at_once_all_get_their_own_answer(served):
    """16 clients, each on one kept-alive connection, send interleaved requests with their own rows."""
    target = urlsplit(served.url)
    path = f"/v1/models/{served.model}:predict"
    reference = {i: served.predict([[i / 4.0, -i / 8.0]]) for i in range(16)}
    failures: list[str] = []

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        body = f'{{"instances": [[{i / 4.0}, {-i / 8.0}]]}}'
        try:
            conn.connect()
            sock = conn.sock
            for _ in range(25):
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = json.loads(response.read())
                if response.status != 200 or not close(answer["predictions"], reference[i]):
                    failures.append(f"client {i}: {response.status} {answer}")
                if conn.sock is not sock:
                    failures.append(f"client {i}: connection was not kept alive")
        except Exception as e:  # collected, asserted below
            failures.append(f"client {i}: {e!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []


@local_only
def test_rest_responses_are_json_and_metrics_are_off_without_a_monitoring_config(served):
    assert served.get(f"/v1/models/{served.model}").headers["Content-Type"] == "application/json"
    assert served.get("/monitoring/prometheus/metrics").status_code == 404
