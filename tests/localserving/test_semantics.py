"""Predict as TF Serving runs it: tensors go to the graph unchecked against the SignatureDef's shapes.

The cases are tensorflow_model_server_test.py's own, on models of the same kind (saved_models.py):
``half_plus_n`` declares ``x`` as ``[-1, 1]`` yet takes ``[3]`` and ``[1]``, because its ops do.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.localserving.conftest import close
from tests.localserving.test_rest import error_of

pytestmark = [pytest.mark.slow, pytest.mark.contract]

HALF_PLUS_TWO = "/v1/models/half_plus_n/versions/123"


def test_row_format_vector_to_a_declared_matrix_input_answers_as_the_graph_computes(zoo):
    answer = zoo.post(f"{HALF_PLUS_TWO}:predict", {"instances": [2.0, 3.0, 4.0]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [3.0, 3.5, 4.0]}


def test_columnar_vector_answers_outputs(zoo):
    answer = zoo.post(f"{HALF_PLUS_TWO}:predict", {"inputs": [2.0, 3.0, 4.0]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"outputs": [3.0, 3.5, 4.0]}


def test_declared_shape_and_other_signatures(zoo):
    rows = {"instances": [[1.0], [5.0]]}
    assert zoo.post(f"{HALF_PLUS_TWO}:predict", rows).json() == {"predictions": [[2.5], [4.5]]}
    plus_three = zoo.post(f"{HALF_PLUS_TWO}:predict", {"signature_name": "plus_three", **rows}).json()
    assert plus_three == {"predictions": [[3.5], [5.5]]}
    both = zoo.post(f"{HALF_PLUS_TWO}:predict", {"signature_name": "two_inputs",
                                                 "instances": [{"x": [1.0], "x2": [2.0]}]}).json()
    assert both == {"predictions": [{"y": [2.5], "y3": [4.0]}]}


def test_versions_answer_with_their_own_graph(zoo):
    latest = zoo.post("/v1/models/half_plus_n:predict", {"instances": [2.0]}).json()
    assert latest == {"predictions": [4.0]}  # version 124: 0.5 x + 3


def test_tf2_export_takes_the_same_requests(zoo):
    assert zoo.post("/v1/models/tf2:predict", {"instances": [2.0, 3.0, 4.0]}).json() == {"predictions": [3.0, 3.5, 4.0]}
    assert zoo.post("/v1/models/tf2:predict", {"inputs": [[2.0]]}).json() == {"outputs": [[3.0]]}
    signatures = zoo.get("/v1/models/tf2/metadata").json()["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "__saved_model_init_op"}


def test_a_shape_the_graph_cannot_take_is_400_with_tf_text_and_the_server_goes_on(served):
    error = error_of(served.post(f"/v1/models/{served.model}:predict", {"instances": [[1.0, 2.0, 3.0]]}), 400)
    assert error and "incompatible with the signature" not in error  # TF's words, not a signature check
    assert served.predict() is not None


def test_grpc_vector_of_one_answers_with_the_model_spec(zoo):
    if not zoo.grpc:
        pytest.skip("no gRPC address")
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_n"
    request.model_spec.version.value = 123
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([2.0], dtype=np.float32)))
    with grpc.insecure_channel(zoo.grpc) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 30)
    assert close(tf.make_ndarray(response.outputs["y"]).tolist(), [3.0])
    assert list(response.outputs["y"].float_val) == [3.0]  # typed fields, TF Serving's default encoding
    assert (response.model_spec.name, response.model_spec.signature_name) == ("half_plus_n", "serving_default")
    assert response.model_spec.version.value == 123
