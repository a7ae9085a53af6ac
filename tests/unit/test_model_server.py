"""The model server: SageMaker's container contract and runtime API over the ONNX demo model."""

import json

import pytest
from werkzeug.test import Client

from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import MODEL_NAME, write
from lesionflow_model.server import ModelServer
from tests.support import jpeg, png


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    return ModelServer(OnnxImageClassifier(write(tmp_path_factory.mktemp("model") / "demo.onnx")))


def test_ping_answers_when_the_model_is_loaded(server):
    assert Client(server).get("/ping").status_code == 200


@pytest.mark.parametrize("path", ["/invocations", "/endpoints/any-name/invocations"])
def test_an_image_gets_a_probability_for_every_label_best_first_and_the_models_name(server, path):
    # When a JPEG is posted to either contract
    response = Client(server).post(path, data=jpeg(300, 200), content_type="image/jpeg")

    # Then the answer is Hugging Face's label/score list over all seven labels, summing to one
    answer = json.loads(response.get_data())
    assert response.status_code == 200 and len(answer) == 7
    assert [a["score"] for a in answer] == sorted((a["score"] for a in answer), reverse=True)
    assert sum(a["score"] for a in answer) == pytest.approx(1.0, abs=1e-5)
    # and the model names itself and says it is untrained
    attributes = response.headers["X-Amzn-SageMaker-Custom-Attributes"]
    assert f"model={MODEL_NAME}" in attributes and "untrained" in attributes


def test_the_same_image_always_gets_the_same_scores(server):
    body = png(128, 128, colour=(150, 80, 70))
    first, second = (Client(server).post("/invocations", data=body, content_type="image/png").get_data()
                     for _ in range(2))
    assert first == second


def test_the_container_refuses_unsupported_content_types_and_undecodable_bodies(server):
    assert Client(server).post("/invocations", data=b"1,2,3", content_type="text/csv").status_code == 415
    assert Client(server).post("/invocations", data=b"garbage", content_type="image/jpeg").status_code == 400


def test_the_runtime_api_wraps_a_container_error_as_sagemakers_model_error(server):
    response = Client(server).post("/endpoints/x/invocations", data=b"garbage", content_type="image/jpeg")
    assert response.status_code == 424
    assert response.headers["x-amzn-ErrorType"] == "ModelError"
    assert json.loads(response.get_data())["OriginalStatusCode"] == 400


def test_the_demo_model_is_generated_byte_identically(tmp_path):
    assert write(tmp_path / "a.onnx").read_bytes() == write(tmp_path / "b.onnx").read_bytes()
