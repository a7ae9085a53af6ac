"""The model server: SageMaker's container contract and runtime API over the ONNX demo model."""

import json

import pytest
from werkzeug.test import Client

from lesionflow.contracts import HAM10000_LABELS, contract_names, load_contract
from lesionflow.preprocessing import model_input
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import MODEL_NAME, write
from lesionflow_model.server import ModelServer
from tests.support import jpeg, png


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return OnnxImageClassifier(write(tmp_path_factory.mktemp("model") / "demo.onnx"))


@pytest.fixture(scope="module")
def server(classifier):
    return ModelServer(classifier)


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
    assert f"model={MODEL_NAME}" in attributes and "version=1" in attributes and "untrained" in attributes


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


@pytest.mark.parametrize("name", contract_names())
def test_the_endpoint_speaks_every_contract_and_the_pipeline_reads_its_answer(classifier, name):
    # Given the endpoint serving the demo model through a contract, and what Infer sends for that contract
    contract = load_contract(name)
    server = ModelServer(classifier, contract=contract)
    body = model_input(jpeg(600, 450, colour=(150, 80, 70)), "JPEG", contract)

    # When it is posted as the contract's content type
    response = Client(server).post("/invocations", data=body, content_type=contract.content_type,
                                   headers={"Accept": contract.accept})

    # Then the answer reads as a probability for every HAM10000 code
    assert response.status_code == 200, response.get_data()
    scores = contract.read_scores(response.get_data())
    assert set(scores) == set(HAM10000_LABELS) and sum(scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_array_contracts_give_the_same_answer_as_the_image_they_encode(classifier):
    # The tensor twins carry the same pixels: the model must see the same picture through either
    photo = jpeg(600, 450, colour=(150, 80, 70))
    answers = {}
    for name in ("tensor-json", "tensor-npy"):
        contract = load_contract(name)
        server = ModelServer(classifier, contract=contract)
        body = model_input(photo, "JPEG", contract)
        answers[name] = contract.read_scores(Client(server).post("/invocations", data=body,
                                                                 content_type=contract.content_type).get_data())
    assert answers["tensor-json"] == pytest.approx(answers["tensor-npy"], abs=1e-3)


def test_an_array_contract_refuses_other_content_types_and_bodies_that_are_not_its_array(classifier):
    server = ModelServer(classifier, contract=load_contract("tensor-npy"))
    assert Client(server).post("/invocations", data=jpeg(), content_type="image/jpeg").status_code == 415
    response = Client(server).post("/invocations", data=b"\x93NUMPY garbage", content_type="application/x-npy")
    assert response.status_code == 400
