"""The inference container's entry point serves the model in SM_MODEL_DIR through the configured contract."""

import pytest
from werkzeug.test import Client

from lesionflow.contracts import load_contract
from lesionflow.preprocessing import model_input
from lesionflow_model.demo_model import write
from lesionflow_model.serve import application, main
from tests.support import jpeg


@pytest.fixture
def model_dir(tmp_path):
    write(tmp_path / "model.onnx")  # where SageMaker unpacks model.tar.gz
    return tmp_path


@pytest.mark.parametrize("name", ["hf-image-classification", "tensor-npy", "csv-pixels"])
def test_the_container_answers_ping_and_invocations_in_its_contract(model_dir, name):
    # Given the container started as SageMaker starts it, with a contract chosen by its environment
    app = application({"SM_MODEL_DIR": str(model_dir), "LESIONFLOW_CONTRACT": name})
    contract = load_contract(name)

    # When SageMaker checks its health and sends what Infer prepares
    ping = Client(app).get("/ping")
    answer = Client(app).post("/invocations", data=model_input(jpeg(300, 300), "JPEG", contract),
                              content_type=contract.content_type)

    # Then it is healthy and its answer reads through the contract
    assert ping.status_code == 200 and answer.status_code == 200
    assert sum(contract.read_scores(answer.get_data()).values()) == pytest.approx(1.0, abs=1e-4)


def test_the_entry_point_takes_only_the_serve_argument():
    assert main(["serve.py", "train"]) == 2
