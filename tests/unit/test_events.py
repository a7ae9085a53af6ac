"""Every sample event in events/ replayed through its handler, as `sam local invoke -e events/x.json` would."""

import json
from pathlib import Path

import boto3
import pytest

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "ham-size-dark.jpg"


def event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def uploaded(stack):
    """The sample image at the key the events name, so its ETag matches theirs."""
    key = event("validate")["upload"]["key"]
    boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=SAMPLE.read_bytes())
    return stack


def test_every_function_has_a_sample_event():
    assert sorted(path.stem for path in EVENTS.glob("*.json")) == ["dispatch", "infer", "validate"]


def test_the_dispatch_event_starts_the_execution_the_validate_event_describes(uploaded):
    # When the sample SQS event is dispatched
    response = uploaded.functions["DispatchFunction"].invoke(event("dispatch"))

    # Then it starts one execution whose input is the upload of the validate event
    assert response == {"batchItemFailures": []}
    sfn = boto3.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=uploaded.state_machine_arn)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["upload"] == event("validate")["upload"]


def test_the_validate_event_yields_the_image_facts_of_the_infer_event(uploaded):
    result = uploaded.functions["ValidateFunction"].invoke(event("validate"))
    assert "result" not in result
    assert result["image"] == event("infer")["image"]


def test_the_infer_event_concludes_with_a_succeeded_record(uploaded, endpoint):
    # When the infer event is replayed against the uploaded sample
    result = uploaded.functions["InferFunction"].invoke(event("infer"))

    # Then the record and its DynamoDB form are ready for the Persist states
    assert result["result"]["record"]["status"] == "SUCCEEDED"
    assert result["result"]["item"]["label"] == {"S": result["result"]["record"]["label"]}
