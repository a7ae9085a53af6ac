"""The Validate and Infer handlers on their own: pinned reads, limits, preprocessing and endpoint errors."""

import json
from pathlib import Path

import boto3
import pytest

from lesionflow import clients, errors
from tests.support import hf_answer, jpeg, state_for

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_validate_reads_exactly_the_notified_version_even_after_an_overwrite(stack):
    # Given a valid image, then the same key overwritten with text before validation runs
    state = state_for(stack, "uploads/x.jpg", jpeg(64, 64))
    boto3.client("s3").put_object(Bucket=stack.bucket, Key="uploads/x.jpg", Body=b"overwritten")

    # When the first version is validated
    result = stack.functions["ValidateFunction"].invoke(state)

    # Then the notified version's bytes were checked and accepted
    assert result["image"]["format"] == "JPEG"


def test_validate_rejects_an_object_deleted_before_processing(stack):
    state = state_for(stack, "uploads/gone.jpg", jpeg(64, 64))
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key="uploads/gone.jpg",
                                     VersionId=state["upload"]["version_id"])
    result = stack.functions["ValidateFunction"].invoke(state)
    assert result["result"]["record"]["reason"] == "the uploaded object no longer exists (deleted before processing)"


def test_without_a_version_id_an_overwrite_is_detected_by_the_etag(stack):
    state = state_for(stack, "uploads/unversioned.jpg", jpeg(64, 64), version_id=None)
    boto3.client("s3").put_object(Bucket=stack.bucket, Key="uploads/unversioned.jpg", Body=jpeg(65, 65))
    result = stack.functions["ValidateFunction"].invoke(state)
    assert result["result"]["record"]["reason"] == "the uploaded object was overwritten before processing"


def test_validate_rejects_an_oversized_upload_from_the_event_without_downloading(stack, monkeypatch):
    # Given an upload the notification says is over the byte limit, and an S3 that would fail any download
    state = state_for(stack, "uploads/big.jpg", jpeg(64, 64), size=30_000_000)
    monkeypatch.setitem(stack.functions["ValidateFunction"].environment, "MAX_IMAGE_BYTES", "20000000")
    monkeypatch.setattr(clients.s3(), "get_object", lambda *a, **k: pytest.fail("downloaded"))

    # Then it is rejected from the announced size alone
    result = stack.functions["ValidateFunction"].invoke(state)
    assert "more than the limit of 20000000" in result["result"]["record"]["reason"]


def test_a_rejection_record_carries_provenance_and_no_prediction(stack):
    result = stack.functions["ValidateFunction"].invoke(state_for(stack, "uploads/t.png", b"\x89PNG but not really"))
    record = result["result"]["record"]
    assert record["status"] == "REJECTED"
    assert record["execution_arn"].endswith(":run") and record["bucket"] == stack.bucket
    assert "label" not in record and "scores" not in record
    assert result["result"]["item"]["status"] == {"S": "REJECTED"}


@pytest.fixture
def validated_state(stack):
    """The state the Infer task receives: the upload's facts, as the real Validate handler found them."""
    return stack.functions["ValidateFunction"].invoke(state_for(stack, "uploads/ok.jpg", jpeg(300, 300)))


@pytest.mark.parametrize(("status", "error_type", "body", "raised"), [
    (429, "ThrottlingException", b'{"message": "Rate exceeded"}', errors.EndpointThrottled),
    (429, "ModelNotReadyException", b'{"message": "not ready"}', errors.ModelNotReady),
    (503, "ServiceUnavailable", b'{"message": "down"}', errors.EndpointUnavailable),
    (424, "ModelError", b'{"message": "boom", "OriginalStatusCode": 500}', errors.EndpointUnavailable),
    (424, "ModelError", b'{"message": "bad", "OriginalStatusCode": 400}', errors.ModelRequestRejected),
    (200, None, b"<html>oops</html>", errors.ModelResponseInvalid),
    (200, None, json.dumps([{"label": "unicorn", "score": 0.9}]).encode(), errors.ModelResponseInvalid),
], ids=["throttled", "not-ready", "unavailable", "container-5xx", "container-4xx", "malformed", "unknown-label"])
def test_endpoint_failures_raise_the_errors_the_state_machine_retries_or_records(
        stack, endpoint, validated_state, status, error_type, body, raised):
    # Given an endpoint that keeps answering this way (the SDK's own retry gets the same answer)
    for _ in range(3):
        endpoint.then(status, body, error_type=error_type)

    # Then the Infer handler raises the matching pipeline error (Step Functions matches on its name)
    with pytest.raises(raised):
        stack.functions["InferFunction"].invoke(validated_state)


def test_infer_rejects_an_upload_deleted_after_validation_without_calling_the_model(stack, endpoint, validated_state):
    # Given an upload whose version was deleted between Validate and Infer
    upload = validated_state["upload"]
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=upload["key"], VersionId=upload["version_id"])

    # When the Infer handler runs
    record = stack.functions["InferFunction"].invoke(validated_state)["result"]["record"]

    # Then the verdict is REJECTED as gone, with the facts validation found, and the endpoint never heard of it
    assert (record["status"], record["rejection_class"]) == ("REJECTED", "gone-before-processing")
    assert record["input_format"] == "JPEG"
    assert endpoint.requests == []


def test_infer_returns_the_top_label_with_its_confidence_and_provenance(stack, endpoint, validated_state):
    # Given a model sure enough (over the 0.6 review threshold) that names itself as LesionFlow's container does
    endpoint.then(200, hf_answer(vascular_lesions=0.7, melanoma=0.3),
                  headers={"X-Amzn-SageMaker-Custom-Attributes": "model=vit-ham;version=3"})

    # When the Infer handler runs
    record = stack.functions["InferFunction"].invoke(validated_state)["result"]["record"]

    # Then the record has the top label, needs no review, and says which model, contract and pixels produced it
    assert (record["label"], record["confidence"], record["needs_review"]) == ("vasc", 0.7, False)
    assert "review" not in record
    assert (record["model_name"], record["model_version"], record["model_contract"]) == (
        "vit-ham", "3", "hf-image-classification")
    assert record["preprocessing_version"] == "1" and record["input_format"] == "JPEG"
    assert len(record["input_sha256"]) == 64 and record["endpoint_name"]


def test_a_misconfigured_function_names_the_variable_without_echoing_the_environment(stack, monkeypatch):
    # Given a malformed setting, and a secret elsewhere in the environment
    monkeypatch.setitem(stack.functions["ValidateFunction"].environment, "MAX_IMAGE_BYTES", "lots")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SECRET-TOKEN-VALUE")

    # Then the error says which variable, and repeats no value
    with pytest.raises(errors.InvalidInput, match="MAX_IMAGE_BYTES") as failure:
        stack.functions["ValidateFunction"].invoke(state_for(stack, "uploads/x.jpg", jpeg(64, 64)))
    assert "SECRET" not in str(failure.value) and "lots" not in str(failure.value)


def test_a_malformed_state_document_is_refused_without_echoing_the_key(stack):
    with pytest.raises(errors.InvalidInput, match="upload.size") as failure:
        stack.functions["ValidateFunction"].invoke({"upload": {"bucket": "b", "key": "uploads/Jane Doe.jpg"}})
    assert "Jane" not in str(failure.value)
