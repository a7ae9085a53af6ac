"""Every sample event in events/ replayed through its handler, as `sam local invoke -e events/x.json` would."""

import json
from pathlib import Path

import boto3
import pytest

from lesionflow.records import PredictionRecord
from lesionflow_local.template import load, resources_of_type

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


def test_every_function_has_a_sample_event_named_after_its_folder():
    functions = resources_of_type(load(), "AWS::Serverless::Function").values()
    folders = {function["Properties"]["CodeUri"].strip("/").rsplit("/", 1)[-1] for function in functions}
    assert sorted(path.stem for path in EVENTS.glob("*.json")) == sorted(folders)


def test_the_dispatch_event_starts_the_execution_the_validate_event_describes(uploaded):
    # When the sample SQS event is dispatched
    response = uploaded.functions["DispatchFunction"].invoke(event("dispatch"))

    # Then it starts one execution for the object the validate event describes, as S3 describes it: its version
    # and modification time are S3's, which no sample event can know in advance
    assert response == {"batchItemFailures": []}
    sfn = boto3.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=uploaded.state_machine_arn)["executions"]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["upload"]
    sample = event("validate")["upload"]
    assert {name: started[name] for name in ("bucket", "key", "size", "etag", "object_hash")} == {
        name: sample[name] for name in ("bucket", "key", "size", "etag", "object_hash")}
    head = boto3.client("s3").head_object(Bucket=uploaded.bucket, Key=sample["key"])
    assert started["version_id"] == head["VersionId"]


def test_the_validate_event_yields_the_image_facts_of_the_preprocess_event(uploaded):
    result = uploaded.functions["ValidateFunction"].invoke(event("validate"))
    assert "result" not in result
    assert result["image"] == event("preprocess")["image"]


def test_the_preprocess_event_hands_over_the_model_input_of_the_invoke_model_event(uploaded):
    result = uploaded.functions["PreprocessFunction"].invoke(event("preprocess"))
    assert "result" not in result
    assert result["model_input"] == event("invoke_model")["model_input"]


def test_the_invoke_model_event_concludes_with_a_succeeded_record(uploaded, endpoint):
    # When the invoke-model event is replayed
    result = uploaded.functions["InvokeModelFunction"].invoke(event("invoke_model"))

    # Then the record and its DynamoDB form are ready for the Persist states, and the input is not carried on
    assert result["result"]["record"]["status"] == "SUCCEEDED"
    assert result["result"]["item"]["label"] == {"S": result["result"]["record"]["label"]}
    assert "model_input" not in result


def test_the_record_failure_event_concludes_with_a_failed_record_of_the_one_schema(stack):
    result = stack.functions["RecordFailureFunction"].invoke(event("record_failure"))
    record = PredictionRecord.model_validate(result["result"]["record"])
    assert (record.status, record.reason) == ("FAILED", event("record_failure")["reason"])
    assert record.upload_id == event("record_failure")["upload"]["upload_id"]
