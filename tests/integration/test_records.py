"""One record schema: every record the state machine writes, of every status and from every path (a verdict, a
failure in the first state, in InvokeModel, in Persist, or with RecordFailure itself unable to run), validates
against ``PredictionRecord``, in DynamoDB and as the S3 JSON alike."""

import json
from decimal import Decimal

import boto3
import pytest
from moto.s3.exceptions import AccessDeniedByLock
from moto.s3.models import S3Backend

from lesionflow.records import PredictionRecord
from tests.integration.test_state_machine import prediction_json, put_upload, records_of, run
from tests.support import hf_answer, jpeg

KEY = "uploads/clinic 7/Jane Doe.jpg"


def plain(item: dict) -> dict:
    """A DynamoDB item read by boto3's resource (numbers as Decimal) as plain JSON values."""
    return json.loads(json.dumps(item, default=lambda value: float(value) if isinstance(value, Decimal) else value))


def the_one_record(stack, execution_input: dict) -> PredictionRecord:
    """The single record of the key, validated in both places it is written, which must agree."""
    [item] = records_of(stack, KEY)
    known = set(PredictionRecord.model_fields) | set(PredictionRecord.model_computed_fields)
    assert set(item) <= known, set(item) - known  # nothing the model does not name (no leaked model input)
    in_dynamodb = PredictionRecord.model_validate(plain(item))
    in_s3 = PredictionRecord.model_validate(prediction_json(stack, execution_input))
    assert in_s3 == in_dynamodb
    return in_dynamodb


def states_entered(execution: dict) -> list[str]:
    events = boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]
    return [event["stateEnteredEventDetails"]["name"] for event in events if "stateEnteredEventDetails" in event]


def refuse_succeeded_prediction_json(monkeypatch) -> None:
    """S3 refusing the prediction JSON of a verdict with AccessDenied (as a wrong bucket policy would), and
    accepting everything else."""
    put_object = S3Backend.put_object

    def refusing(self, bucket_name, key_name, value, *args, **kwargs):
        if key_name.startswith("predictions/") and b'"SUCCEEDED"' in bytes(value):
            raise AccessDeniedByLock()
        return put_object(self, bucket_name, key_name, value, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", refusing)


def test_a_usable_image_passes_the_four_stages_in_order(stack, lambda_api, endpoint):
    execution_input = put_upload(stack, KEY, jpeg(320, 240))
    endpoint.then(200, hf_answer(melanoma=0.8, melanocytic_Nevi=0.2))
    execution = run(stack, execution_input)
    assert states_entered(execution) == ["Validate", "ValidateVerdict", "Preprocess", "PreprocessVerdict",
                                         "InvokeModel", "Persist", "PersistJson"]
    assert the_one_record(stack, execution_input).status == "SUCCEEDED"


@pytest.mark.parametrize(("data", "reason"), [(b"Patient notes, not an image", "not a supported image"),
                                              (jpeg(300, 200, quality=95)[:len(jpeg(300, 200, quality=95)) // 2], "truncated")],
                         ids=["at Validate", "at Preprocess"])
def test_a_rejected_image_skips_to_persist_with_a_record_of_the_one_schema(stack, lambda_api, endpoint, data, reason):
    execution_input = put_upload(stack, KEY, data)
    execution = run(stack, execution_input)
    assert execution["status"] == "SUCCEEDED" and "InvokeModel" not in states_entered(execution)
    record = the_one_record(stack, execution_input)
    assert record.status == "REJECTED" and reason in record.reason


def test_a_failure_in_the_first_state_ends_in_one_failed_record_of_the_one_schema(stack, lambda_api, monkeypatch):
    # Given a Validate function that cannot run (a setting it cannot parse)
    monkeypatch.setitem(stack.functions["ValidateFunction"].environment, "MAX_IMAGE_BYTES", "lots")
    execution_input = put_upload(stack, KEY, jpeg(320, 240))
    # When the pipeline runs, Then it fails with one FAILED record, built by RecordFailure, with the upload's version
    execution = run(stack, execution_input)
    record = the_one_record(stack, execution_input)
    assert (execution["status"], record.status) == ("FAILED", "FAILED")
    assert "RecordFailure" in states_entered(execution) and "InvalidInput" in record.reason
    assert (record.version_id, record.etag) == (execution_input["upload"]["version_id"],
                                                execution_input["upload"]["etag"])


def test_a_failure_at_invoke_model_ends_in_one_failed_record_of_the_one_schema(stack, lambda_api, endpoint):
    execution_input = put_upload(stack, KEY, jpeg(320, 240))
    endpoint.then(200, b'{"predictions": "oops"}')
    execution = run(stack, execution_input)
    record = the_one_record(stack, execution_input)
    assert (execution["status"], record.status) == ("FAILED", "FAILED") and "ModelResponseInvalid" in record.reason


def test_a_failure_in_persist_replaces_this_runs_own_verdict_with_one_failed_record(
        stack, lambda_api, endpoint, monkeypatch):
    # Given S3 refusing the verdict's prediction JSON after DynamoDB took the SUCCEEDED item
    refuse_succeeded_prediction_json(monkeypatch)
    execution_input = put_upload(stack, KEY, jpeg(320, 240))
    endpoint.then(200, hf_answer(melanoma=0.8, melanocytic_Nevi=0.2))

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then the log does not claim a prediction that has no JSON: this run's own item became its FAILED record, and
    # the execution failed
    record = the_one_record(stack, execution_input)
    assert (execution["status"], record.status) == ("FAILED", "FAILED")
    assert states_entered(execution)[-3:] == ["PersistFailure", "PersistFailureJson", "PipelineFailed"]
    assert record.execution_arn == execution["executionArn"]


def test_when_record_failure_cannot_run_the_state_machine_writes_the_failed_record_of_the_one_schema(
        stack, lambda_api, monkeypatch):
    # Given a failure in the first state, and the RecordFailure function itself gone from Lambda
    monkeypatch.setitem(stack.functions["ValidateFunction"].environment, "MAX_IMAGE_BYTES", "lots")
    monkeypatch.delitem(stack.functions, "RecordFailureFunction")
    execution_input = put_upload(stack, KEY, jpeg(320, 240))

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then the state machine's own fallback wrote the FAILED record, and it is a record of the same schema
    assert "RecordFailureDirectly" in states_entered(execution)
    record = the_one_record(stack, execution_input)
    assert (execution["status"], record.status) == ("FAILED", "FAILED") and "InvalidInput" in record.reason
    assert (record.upload_id, record.version_token) == (execution_input["upload"]["upload_id"],
                                                        execution_input["upload"]["version_token"])
