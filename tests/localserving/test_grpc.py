"""gRPC contract with the stock ``tensorflow_serving.apis`` stubs: Predict, GetModelStatus, metadata."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from tests.localserving.conftest import ROWS, close

pytestmark = [pytest.mark.slow, pytest.mark.contract]


@pytest.fixture(scope="module")
def stubs(served):
    if not served.grpc:
        pytest.skip("no gRPC address (set TF_SERVING_GRPC)")
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(served.grpc)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()


def predict_request(model: str, rows=ROWS, version: int | None = None, signature: str = "serving_default"):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(rows, dtype=np.float32)))
    return request


def test_predict_answers_like_rest_and_names_the_version(served, stubs):
    import tensorflow as tf

    predictions, _ = stubs
    response = predictions.Predict(predict_request(served.model), 30)
    assert close(tf.make_ndarray(response.outputs["probability"]).tolist(), served.predict())
    assert response.model_spec.name == served.model
    assert response.model_spec.version.value == served.latest()
    specific = predictions.Predict(predict_request(served.model, version=served.latest()), 30)
    assert close(tf.make_ndarray(specific.outputs["probability"]).tolist(), served.predict())


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"model": "no_such_model"},
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(no_such_model)",
        ),
        ({"version": 987654}, grpc.StatusCode.NOT_FOUND, "Specific("),
        ({"signature": "nope"}, grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
        ({"rows": [[1.0, 2.0, 3.0]]}, grpc.StatusCode.INVALID_ARGUMENT, ""),
    ],
)
def test_predict_errors_carry_tf_codes(served, stubs, change, code, message):
    predictions, _ = stubs
    args = {"model": served.model, **change}
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(predict_request(**args), 30)
    assert raised.value.code() == code
    assert message in raised.value.details()


def test_get_model_status(served, stubs):
    from tensorflow_serving.apis import get_model_status_pb2

    _, models = stubs
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = served.model
    response = models.GetModelStatus(request, 30)
    first = response.model_version_status[0]
    assert (first.version, first.state) == (served.latest(), get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    assert (first.status.error_code, first.status.error_message) == (0, "")
    request.model_spec.name = "no_such_model"
    with pytest.raises(grpc.RpcError) as raised:
        models.GetModelStatus(request, 30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_get_model_metadata_has_the_signature(served, stubs):
    from tensorflow_serving.apis import get_model_metadata_pb2

    predictions, _ = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = served.model
    request.metadata_field.append("signature_def")
    response = predictions.GetModelMetadata(request, 30)
    definitions = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(definitions)
    assert set(definitions.signature_def["serving_default"].inputs) == {"x"}
    assert response.model_spec.version.value == served.latest()
