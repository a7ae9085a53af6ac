"""The deployed state machine definition, executed by moto's Step Functions against the real handlers."""

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from lesionflow_cli.predictions import Filters, listing
from tests.support import hf_answer, jpeg, upload_input

WAIT_SECONDS = 60


def put_upload(stack, key: str, data: bytes, last_modified: datetime | None = None) -> dict:
    """Put an object and return the execution input the dispatcher would start for it."""
    response = boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=data)
    return upload_input(stack.bucket, key, data, etag=response["ETag"].strip('"'), version_id=response["VersionId"],
                        last_modified=last_modified)


def run(stack, execution_input: dict, name: str | None = None) -> dict:
    sfn = boto3.client("stepfunctions")
    name = name or execution_input["upload"]["upload_id"]
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn, name=name,
                              input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + WAIT_SECONDS
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.1)
    return execution


def records_of(stack, key: str) -> list[dict]:
    table = boto3.resource("dynamodb").Table(stack.table)
    return table.query(KeyConditionExpression=Key("image_key").eq(key))["Items"]


def prediction_json(stack, execution_input: dict) -> dict:
    key = f"{stack.prediction_prefix}{execution_input['upload']['upload_id']}.json"
    return json.loads(boto3.client("s3").get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def test_a_valid_image_ends_in_one_succeeded_record_in_dynamodb_and_s3(stack, lambda_api, endpoint):
    # Given a photo uploaded under a key with a patient's name in it
    key = "uploads/clinic 7/Jane Doe+mole.jpg"
    execution_input = put_upload(stack, key, jpeg(640, 480))
    endpoint.then(200, hf_answer(melanoma=0.81, melanocytic_Nevi=0.12, basal_cell_carcinoma=0.04,
                                 actinic_keratoses=0.02, dermatofibroma=0.01))

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then it succeeds with one SUCCEEDED record carrying label, confidence, all scores and provenance
    assert execution["status"] == "SUCCEEDED"
    [record] = records_of(stack, key)
    assert record["status"] == "SUCCEEDED"
    assert (record["label"], float(record["confidence"])) == ("mel", 0.81)
    assert set(record["scores"]) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert float(record["scores"]["bkl"]) == 0.0  # the endpoint left it out (Hugging Face's top_k)
    assert record["execution_arn"] == execution["executionArn"]
    assert record["version_id"] == execution_input["upload"]["version_id"]
    assert record["endpoint_name"] == "lesionflow-vit"
    assert record["model_contract"] == "hf-image-classification"
    assert len(record["input_sha256"]) == 64
    assert record["prediction_uri"] == f"s3://{stack.bucket}/predictions/{execution_input['upload']['upload_id']}.json"
    # and the same record as JSON under predictions/, named by hash, not by the key
    assert prediction_json(stack, execution_input)["label"] == "mel"
    assert "Jane" not in execution["executionArn"] and "Jane" not in record["prediction_uri"]
    # and the endpoint received a 224x224 JPEG as the contract says
    [(path, headers, body)] = endpoint.requests
    assert path == "/endpoints/lesionflow-vit/invocations"
    assert headers["Content-Type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"


def test_a_file_that_is_not_an_image_ends_rejected_and_the_execution_succeeds(stack, lambda_api, endpoint):
    # Given a text file uploaded under an image's name
    key = "uploads/notes.jpg"
    execution_input = put_upload(stack, key, b"Patient notes, not an image")

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then the execution succeeds with a REJECTED record and a reason, and the model is never called
    assert execution["status"] == "SUCCEEDED"
    [record] = records_of(stack, key)
    assert record["status"] == "REJECTED"
    assert "not a supported image" in record["reason"]
    assert prediction_json(stack, execution_input)["status"] == "REJECTED"
    assert endpoint.requests == []


def test_a_truncated_jpeg_is_rejected_by_preprocessing(stack, lambda_api, endpoint):
    # Given a JPEG whose header is intact but whose data stops half way
    key = "uploads/truncated.jpg"
    whole = jpeg(300, 200, quality=95)
    execution_input = put_upload(stack, key, whole[: len(whole) // 2])

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then it ends REJECTED (a permanent verdict), not FAILED, before anything reaches the model
    assert execution["status"] == "SUCCEEDED"
    [record] = records_of(stack, key)
    assert record["status"] == "REJECTED" and "truncated" in record["reason"]
    assert endpoint.requests == []


def test_a_malformed_model_answer_ends_failed_and_fails_the_execution(stack, lambda_api, endpoint):
    # Given an endpoint that answers with something that is not the contract's label/score list
    key = "uploads/ok.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))
    endpoint.then(200, b'{"predictions": "oops"}')

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then a FAILED record with a short reason is written, and the execution fails so alarms see it
    assert execution["status"] == "FAILED"
    [record] = records_of(stack, key)
    assert record["status"] == "FAILED"
    assert "ModelResponseInvalid" in record["reason"]
    assert prediction_json(stack, execution_input)["status"] == "FAILED"
    assert len(endpoint.requests) == 1  # a permanent error is not retried


def test_a_failure_in_validate_is_recorded_and_fails_the_execution_before_any_name_was_derived(
        stack, lambda_api, endpoint, monkeypatch):
    # Given a Validate function that cannot start (a malformed setting), so the run fails in its first state
    monkeypatch.setitem(stack.functions["ValidateFunction"].environment, "MAX_IMAGE_BYTES", "lots")
    key = "uploads/early.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then the failure path still writes the FAILED record and its JSON under the upload id, then fails the run
    assert execution["status"] == "FAILED"
    [record] = records_of(stack, key)
    assert record["status"] == "FAILED" and "InvalidInput" in record["reason"]
    assert prediction_json(stack, execution_input)["upload_id"] == execution_input["upload"]["upload_id"]
    assert endpoint.requests == []


def test_endpoint_throttling_is_retried_and_then_succeeds(stack, lambda_api, endpoint):
    # Given an endpoint that throttles the first request
    key = "uploads/busy.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))
    endpoint.then(429, b'{"message": "slow down"}', error_type="ThrottlingException")

    # When the pipeline runs
    execution = run(stack, execution_input)

    # Then the Infer task was retried and the record is SUCCEEDED
    assert execution["status"] == "SUCCEEDED"
    assert len(endpoint.requests) == 2
    [record] = records_of(stack, key)
    assert record["status"] == "SUCCEEDED"


def test_a_second_run_for_the_same_version_never_adds_or_downgrades_a_record(stack, lambda_api, endpoint):
    # Given an upload whose first run succeeded
    key = "uploads/twice.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))
    assert run(stack, execution_input)["status"] == "SUCCEEDED"
    first = records_of(stack, key)

    # When the same version runs again (as an Express workflow or a reprocessing may) and this time the model fails
    endpoint.then(200, b"not json")
    second = run(stack, execution_input, name="second-run")

    # Then there is still exactly one record, the first SUCCEEDED one, and the late run ends quietly
    assert second["status"] == "SUCCEEDED"
    assert records_of(stack, key) == first
    assert prediction_json(stack, execution_input)["status"] == "SUCCEEDED"


def test_a_run_named_as_one_that_ended_over_90_days_ago_never_overwrites_its_verdict(stack, lambda_api, endpoint):
    # Given an upload whose SUCCEEDED verdict was written, long ago, by an execution of the name this run will take
    # (Step Functions lets a Standard execution's name be used again 90 days after it ended: the new run then has the
    # very same ARN)
    key = "uploads/returning.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))
    assert run(stack, execution_input)["status"] == "SUCCEEDED"
    [verdict] = records_of(stack, key)
    name = "returning-after-90-days"
    long_ago = verdict | {"execution_arn": f"{stack.execution_prefix}:{name}",
                          "execution_started_at": "2026-08-01T09:00:00.000Z"}
    boto3.resource("dynamodb").Table(stack.table).put_item(Item=long_ago)

    # When the same version runs again under that name, and this time the model fails
    endpoint.then(200, b"not json")
    again = run(stack, execution_input, name=name)

    # Then the run has the old one's ARN, and still the old verdict stands: a run is its ARN and its start time
    assert again["executionArn"] == long_ago["execution_arn"]
    assert records_of(stack, key) == [long_ago]


def test_a_failed_record_is_replaced_when_a_later_run_of_the_same_version_succeeds(stack, lambda_api, endpoint):
    # Given an upload whose first run failed
    key = "uploads/retry.jpg"
    execution_input = put_upload(stack, key, jpeg(256, 256))
    endpoint.then(200, b"not json")
    assert run(stack, execution_input)["status"] == "FAILED"

    # When it is reprocessed (a new execution for the same version) and the model answers
    run(stack, execution_input, name="reprocess-1")

    # Then the one record is now SUCCEEDED
    [record] = records_of(stack, key)
    assert record["status"] == "SUCCEEDED"


def test_the_prediction_log_serves_its_three_access_patterns_with_queries(stack, lambda_api, endpoint):
    # Given two uploads of one key, the newer processed before the older, and a rejected upload elsewhere
    key = "uploads/same-name.jpg"
    older = put_upload(stack, key, jpeg(256, 256, colour=(10, 10, 10)), last_modified=datetime(2026, 11, 1, tzinfo=UTC))
    newer = put_upload(stack, key, jpeg(256, 256, colour=(200, 200, 200)), last_modified=datetime(2026, 11, 2, tzinfo=UTC))
    endpoint.then(200, hf_answer(melanoma=0.9, melanocytic_Nevi=0.1)).then(200, hf_answer(melanocytic_Nevi=0.7, melanoma=0.3))
    run(stack, newer)
    run(stack, older)
    run(stack, put_upload(stack, "uploads/empty.png", b""))
    table = boto3.resource("dynamodb").Table(stack.table)

    # When the log is queried for the latest record of the key
    latest = table.query(KeyConditionExpression=Key("image_key").eq(key), ScanIndexForward=False, Limit=1)["Items"]

    # Then it is the newer upload, whatever order the two ran in
    assert [item["version_id"] for item in latest] == [newer["upload"]["version_id"]]
    assert latest[0]["label"] == "mel"
    # and a label or a status over a time range is one Query on an index (the label index holds keys and status
    # only, so the lesionflow command reads the matches' whole records from the table by key)
    window = Key("created_at").between("2026-01-01T00:00:00Z", "2999-01-01T00:00:00Z")
    [indexed] = table.query(IndexName="by-label", KeyConditionExpression=Key("label").eq("nv") & window)["Items"]
    assert "scores" not in indexed and indexed["status"] == "SUCCEEDED"
    by_label = listing(table, Filters(label="nv", since="2026-01-01T00:00:00Z", until="2999-01-01T00:00:00Z"), None)
    assert [item["version_id"] for item in by_label] == [older["upload"]["version_id"]]
    assert by_label[0]["scores"]["nv"] == Decimal("0.7")
    by_status = table.query(IndexName="by-status", KeyConditionExpression=Key("status").eq("REJECTED") & window)
    assert [item["image_key"] for item in by_status["Items"]] == ["uploads/empty.png"]
    assert by_status["Items"][0]["reason"] == "the file is empty (0 bytes)"


@pytest.mark.parametrize("stack_parameters", [{"WorkflowType": "STANDARD"}, {"WorkflowType": "EXPRESS"}],
                         ids=["standard", "express"])
def test_both_workflow_types_run_the_same_definition(stack, lambda_api, endpoint, stack_parameters):
    # Given the stack provisioned with WorkflowType set
    execution_input = put_upload(stack, "uploads/type.jpg", jpeg(256, 256))

    # When an upload runs
    execution = run(stack, execution_input)

    # Then the state machine has that type and records a SUCCEEDED verdict either way
    described = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)
    assert described["type"] == stack_parameters["WorkflowType"]
    assert execution["status"] == "SUCCEEDED"
    assert records_of(stack, "uploads/type.jpg")[0]["status"] == "SUCCEEDED"


def test_predictions_that_need_review_are_listed_by_the_review_index(stack, lambda_api, endpoint):
    # Given an unsure prediction and a sure one
    unsure = put_upload(stack, "uploads/unsure.jpg", jpeg(256, 256, colour=(10, 10, 10)))
    sure = put_upload(stack, "uploads/sure.jpg", jpeg(256, 256, colour=(200, 200, 200)))
    endpoint.then(200, hf_answer(melanoma=0.5, melanocytic_Nevi=0.5)).then(200, hf_answer(melanocytic_Nevi=0.95))
    run(stack, unsure)
    run(stack, sure)

    # When the review queue is listed (by the review index, then the whole records by key)
    waiting = listing(boto3.resource("dynamodb").Table(stack.table), Filters(needs_review=True), None)

    # Then only the unsure one is in it, whole
    assert [item["image_key"] for item in waiting] == ["uploads/unsure.jpg"]
    assert waiting[0]["needs_review"] is True and waiting[0]["scores"]
