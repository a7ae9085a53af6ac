"""A missing model endpoint is named as such: SageMaker's answer to an InvokeEndpoint of a name that does not exist
becomes EndpointMissing (permanent), and the local endpoint answers an unknown name exactly as SageMaker does."""

import json

import boto3
import pytest
from botocore.stub import Stubber

from lesionflow.contracts import load_contract
from lesionflow.errors import EndpointAccessDenied, EndpointMissing, ModelNotReady, ModelRequestRejected
from lesionflow.inference import invoke_endpoint
from lesionflow.preprocessing import model_input
from lesionflow_local.lambdas import serve
from lesionflow_local.template import ROOT
from lesionflow_model.classifier import OnnxImageClassifier
from lesionflow_model.demo_model import write
from lesionflow_model.server import ModelServer
from tests.support import jpeg

CONTRACT = load_contract("hf-image-classification")
NOT_FOUND = "Endpoint lesionflow-vit of account 123456789012 not found."


def runtime():
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def invoke_with_error(code: str, message: str, status: int):
    """InvokeEndpoint of ``lesionflow-vit`` through a client whose only answer is this error."""
    client = runtime()
    with Stubber(client) as stubber:
        stubber.add_client_error("invoke_endpoint", service_error_code=code, service_message=message,
                                 http_status_code=status)
        invoke_endpoint(client, "lesionflow-vit", CONTRACT, b"jpeg bytes")


@pytest.mark.parametrize("code", ["ValidationError", "ValidationException"])
def test_an_endpoint_that_does_not_exist_becomes_endpoint_missing_naming_it(code):
    # Given SageMaker answers that the endpoint is not found (400, its runtime's ValidationError)
    # When the pipeline invokes it, Then it raises EndpointMissing, whose message names the endpoint
    with pytest.raises(EndpointMissing, match="the model endpoint lesionflow-vit does not exist"):
        invoke_with_error(code, NOT_FOUND, 400)


def test_another_validation_error_is_a_rejected_request_without_sagemakers_words():
    # Given SageMaker refuses the request itself as invalid (not a missing endpoint)
    # When the pipeline invokes it, Then it is ModelRequestRejected (permanent), naming the code but not the message
    with pytest.raises(ModelRequestRejected) as raised:
        invoke_with_error("ValidationError", "Request body too large: 7340032 bytes", 400)
    assert "ValidationError" in str(raised.value) and "7340032" not in str(raised.value)


def test_a_role_that_may_not_invoke_the_endpoint_is_named_as_such_without_sagemakers_words():
    # Given SageMaker refuses the caller (its message names the role's ARN)
    message = "User: arn:aws:sts::123456789012:assumed-role/infer/x is not authorized to perform: sagemaker:InvokeEndpoint"
    # When the pipeline invokes it, Then the error says which endpoint may not be invoked, and not who asked
    with pytest.raises(EndpointAccessDenied, match="may not invoke the model endpoint lesionflow-vit") as raised:
        invoke_with_error("AccessDeniedException", message, 400)
    assert "assumed-role" not in str(raised.value)


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("ModelNotReadyException", 429, ModelNotReady),  # the code decides first, whatever the message says
    ("ModelError", 424, ModelRequestRejected),
])
def test_a_not_found_message_under_another_code_is_not_a_missing_endpoint(code, status, expected):
    with pytest.raises(expected):
        invoke_with_error(code, NOT_FOUND, status)


def test_the_state_machine_does_not_retry_a_missing_endpoint():
    # Given the deployed state machine definition
    definition = json.loads((ROOT / "statemachine" / "pipeline.asl.json").read_text())

    # Then no Retry of the InvokeModel step names EndpointMissing (or catches every error): it is permanent
    retried = {name for retry in definition["States"]["InvokeModel"]["Retry"] for name in retry["ErrorEquals"]}
    assert "EndpointMissing" not in retried and "States.ALL" not in retried


@pytest.fixture(scope="module")
def local_endpoint(tmp_path_factory):
    """The real local endpoint, serving the demo model as ``lesionflow-local``, on loopback."""
    classifier = OnnxImageClassifier(write(tmp_path_factory.mktemp("model") / "demo.onnx"))
    http = serve(ModelServer(classifier, endpoint_name="lesionflow-local", account="123456789012"))
    yield boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{http.server_port}",
                       aws_access_key_id="local", aws_secret_access_key="local")
    http.shutdown()


def test_the_local_endpoint_answers_an_unknown_name_as_sagemaker_does(local_endpoint):
    # When a name the local endpoint does not serve is invoked through botocore
    with pytest.raises(local_endpoint.exceptions.ValidationError) as raised:
        local_endpoint.invoke_endpoint(EndpointName="lesionflow-gone", ContentType="image/jpeg", Body=jpeg())

    # Then botocore reads SageMaker's error: its modelled ValidationError, 400, "Endpoint X of account Y not found."
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationError" and error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == "Endpoint lesionflow-gone of account 123456789012 not found."


def test_the_pipeline_names_the_missing_local_endpoint_and_reads_the_one_it_serves(local_endpoint):
    body = model_input(jpeg(600, 450), "JPEG", CONTRACT)
    with pytest.raises(EndpointMissing, match="lesionflow-gone"):
        invoke_endpoint(local_endpoint, "lesionflow-gone", CONTRACT, body)
    answer = invoke_endpoint(local_endpoint, "lesionflow-local", CONTRACT, body)
    assert sum(CONTRACT.read_scores(answer.body).values()) == pytest.approx(1.0, abs=1e-4)
