"""A named signature (one input per feature, strings and floats, two outputs), as a declared
schema's export has: REST row and columnar forms, base64 strings, gRPC, and TF Serving's errors.

Runs on the zoo's ``penguins`` model, so against a real TF Serving too (``TF_SERVING_ZOO_URL``).
"""

from __future__ import annotations

import base64
import json
import math

import grpc
import numpy as np
import pytest

from tests.localserving.conftest import close
from tests.localserving.saved_models import PENGUIN_ROWS, SPECIES
from tests.localserving.test_rest import error_of

pytestmark = [pytest.mark.slow, pytest.mark.contract]

PREDICT = "/v1/models/penguins:predict"
FEATURES = ("bill_length_mm", "island", "sex")


@pytest.fixture(scope="module")
def in_process(zoo):
    """What the SavedModel answers for PENGUIN_ROWS in-process (TF's own loader), or None remotely."""
    if zoo.model_dir is None:
        return None
    import tensorflow as tf

    serve = tf.saved_model.load(str(zoo.model_dir / "penguins" / "1")).signatures["serving_default"]
    out = serve(**{name: tf.constant([row[name] for row in PENGUIN_ROWS]) for name in FEATURES})
    return out["probabilities"].numpy().tolist(), [c.decode() for c in out["class"].numpy()]


def post_json(zoo, body: dict):
    """``body`` sent with NaN as the bare token, as TF Serving's parser accepts it."""
    return zoo.post(PREDICT, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def test_row_format_objects_answer_one_object_per_row_with_both_outputs(zoo, in_process):
    answer = post_json(zoo, {"instances": PENGUIN_ROWS})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [set(p) for p in predictions] == [{"probabilities", "class"}] * len(PENGUIN_ROWS)
    for p in predictions:
        assert len(p["probabilities"]) == len(SPECIES) and math.isclose(sum(p["probabilities"]), 1.0, rel_tol=1e-5)
        assert p["class"] == SPECIES[int(np.argmax(p["probabilities"]))]
    if in_process is not None:
        assert close([p["probabilities"] for p in predictions], in_process[0])
        assert [p["class"] for p in predictions] == in_process[1]


def test_columnar_format_answers_each_output_whole(zoo):
    rows = post_json(zoo, {"instances": PENGUIN_ROWS}).json()["predictions"]
    columns = {name: [row[name] for row in PENGUIN_ROWS] for name in FEATURES}
    answer = post_json(zoo, {"inputs": {**columns, "ignored": [1]}})
    assert answer.status_code == 200, answer.text
    outputs = answer.json()["outputs"]
    assert close(outputs["probabilities"], [r["probabilities"] for r in rows])
    assert outputs["class"] == [r["class"] for r in rows]


def test_base64_strings_are_the_same_strings(zoo):
    plain = post_json(zoo, {"instances": PENGUIN_ROWS[:2]}).json()
    encoded = [{**row, "island": {"b64": base64.b64encode(row["island"].encode()).decode()}} for row in PENGUIN_ROWS[:2]]
    answer = post_json(zoo, {"instances": encoded})
    assert answer.status_code == 200, answer.text
    assert answer.json() == plain


ROW = {"island": "Biscoe", "bill_length_mm": 39.1, "sex": "male"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [["Biscoe", 39.1, "male"]]}, "instances is a plain list, but expecting list of objects"),
        ({"instances": [{"island": "Biscoe", "bill_length_mm": 39.1}]},
         "keys must be equal to: bill_length_mm,island,sex"),
        ({"instances": [{**ROW, "beak": 1.0}]},
         "Failed to process element: 0 key: beak of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON object: does not have named input: beak"),
        ({"instances": [ROW, {**ROW, "island": 3}]},
         "Failed to process element: 1 key: island of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON Value: 3 Type: Number is not of expected type: string"),
        ({"instances": [{**ROW, "bill_length_mm": "long"}]},
         'JSON Value: "long" Type: String is not of expected type: float'),
        ({"instances": [{**ROW, "island": {"b64": "!!!"}}]}, "Unable to base64 decode"),
        ({"instances": [{**ROW, "island": {"name": "Biscoe"}}]}, "not formatted correctly for base64 data"),
        ({"instances": [ROW, ["Biscoe", 39.1, "male"]]}, "Expecting object but got list at item 1 of input list"),
        ({"instances": [ROW, {**ROW, "island": ["Biscoe"]}]}, "Expecting shape [] but got: [1]"),
        ({"inputs": {"island": ["Biscoe"], "bill_length_mm": [39.1]}}, "Missing named input: sex in 'inputs' object."),
        ({"inputs": [["Biscoe", 39.1, "male"]]}, "inputs is a plain value/list, but expecting an object"),
    ],
)
def test_bad_named_requests_are_400_with_tf_servings_error(zoo, body, message):
    assert message in error_of(post_json(zoo, body), 400)


def test_grpc_takes_string_tensors_and_answers_the_class_as_bytes(zoo):
    if not zoo.grpc:
        pytest.skip("no gRPC address (set TF_SERVING_ZOO_GRPC)")
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "penguins"
    for name in FEATURES:
        values = [row[name] for row in PENGUIN_ROWS]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.float32 if name == "bill_length_mm"
                                                           else tf.string))
    with grpc.insecure_channel(zoo.grpc) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, 30)
        rest = post_json(zoo, {"instances": PENGUIN_ROWS}).json()["predictions"]
        assert [c.decode() for c in tf.make_ndarray(response.outputs["class"])] == [r["class"] for r in rest]
        assert close(tf.make_ndarray(response.outputs["probabilities"]).tolist(), [r["probabilities"] for r in rest])
        request.inputs["island"].CopyFrom(tf.make_tensor_proto([1.0, 2.0, 3.0], dtype=tf.float32))
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, 30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_metadata_names_each_feature_input(zoo):
    signature = zoo.get("/v1/models/penguins/metadata").json()["metadata"]["signature_def"]["signature_def"]
    inputs = signature["serving_default"]["inputs"]
    assert {name: (inputs[name]["dtype"], [d["size"] for d in inputs[name]["tensor_shape"]["dim"]])
            for name in inputs} == {"island": ("DT_STRING", ["-1"]), "sex": ("DT_STRING", ["-1"]),
                                    "bill_length_mm": ("DT_FLOAT", ["-1"])}
    outputs = signature["serving_default"]["outputs"]
    assert (outputs["class"]["dtype"], outputs["probabilities"]["dtype"]) == ("DT_STRING", "DT_FLOAT")
