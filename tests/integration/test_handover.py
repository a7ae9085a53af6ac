"""The model input's hand-over through the state machine, on both paths, and what each leaves in the execution
history: the inline input (the default contract's 224x224 JPEG) is there, encrypted with the data key; a stored one
is only named there, and is gone from S3 once the endpoint answered."""

import json
from base64 import b64decode

import boto3
import pytest

from tests.integration.test_state_machine import put_upload, records_of, run
from tests.support import handover_objects, hf_answer, jpeg

KEY = "uploads/clinic 7/Jane Doe.jpg"


@pytest.fixture(params=["hf-image-classification", "tensor-npy"])
def stack_parameters(request) -> dict:
    return {"ModelContract": request.param}


def invoke_model_input(execution: dict) -> dict:
    """The document InvokeModel was given, as the execution history keeps it."""
    events = boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]
    [entered] = [event["stateEnteredEventDetails"] for event in events
                 if event.get("stateEnteredEventDetails", {}).get("name") == "InvokeModel"]
    return json.loads(entered["input"])


def test_the_model_input_reaches_the_endpoint_inline_or_stored_and_nothing_stays_behind(
        stack, lambda_api, endpoint, stack_parameters):
    # Given an upload, and an endpoint answering in the contract's shape
    contract = stack_parameters["ModelContract"]
    execution_input = put_upload(stack, KEY, jpeg(640, 480))
    endpoint.then(200, hf_answer(melanoma=0.9, melanocytic_Nevi=0.1) if contract.startswith("hf")
                  else json.dumps([0, 0, 0, 0, 3, 0, 0]).encode())

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then it succeeds, and the endpoint received exactly the input the history names
    assert execution["status"] == "SUCCEEDED"
    assert records_of(stack, KEY)[0]["label"] == "mel"
    handed = invoke_model_input(execution)["model_input"]
    [(_, _, body)] = endpoint.requests
    if contract == "hf-image-classification":  # small: inline, so its pixels are in the (encrypted) history
        assert b64decode(handed["inline"]) == body and "key" not in handed
    else:  # large: stored under the hand-over prefix, only its name in the history, deleted once used
        assert "inline" not in handed and handed["key"].startswith("model-inputs/") and len(body) == handed["size"]
    assert handover_objects(stack.bucket) == []
    # and the hand-over itself names the upload by its id, never by the object key
    assert "Jane" not in json.dumps(handed)
