"""The stage handlers on their own: pinned reads, limits, preprocessing, the model input's handover and endpoint
errors."""

import json
from base64 import b64decode
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from lesionflow import clients, errors
from lesionflow.handover import INLINE_MAX_BYTES, hand_over
from lesionflow.preprocessing import PREPROCESSING_VERSION
from lesionflow.uploads import Upload
from tests.support import handover_objects, hf_answer, jpeg, state_for

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
    """The state the Preprocess task receives: the upload's facts, as the real Validate handler found them."""
    return stack.functions["ValidateFunction"].invoke(state_for(stack, "uploads/ok.jpg", jpeg(300, 300)))


@pytest.fixture
def preprocessed_state(stack, validated_state):
    """The state the InvokeModel task receives: the model input, as the real Preprocess handler handed it over."""
    return stack.functions["PreprocessFunction"].invoke(validated_state)


def stack_key_arn(stack) -> str:
    rule = boto3.client("s3").get_bucket_encryption(Bucket=stack.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    return rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]


def use_contract(stack, monkeypatch, contract: str) -> None:
    for function in ("PreprocessFunction", "InvokeModelFunction"):
        monkeypatch.setitem(stack.functions[function].environment, "MODEL_CONTRACT", contract)


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
        stack, endpoint, preprocessed_state, status, error_type, body, raised):
    # Given an endpoint that keeps answering this way (the SDK's own retry gets the same answer)
    for _ in range(3):
        endpoint.then(status, body, error_type=error_type)

    # Then the InvokeModel handler raises the matching pipeline error (Step Functions matches on its name)
    with pytest.raises(raised):
        stack.functions["InvokeModelFunction"].invoke(preprocessed_state)


def test_preprocess_rejects_an_upload_deleted_after_validation(stack, endpoint, validated_state):
    # Given an upload whose version was deleted between Validate and Preprocess
    upload = validated_state["upload"]
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=upload["key"], VersionId=upload["version_id"])

    # When the Preprocess handler runs
    record = stack.functions["PreprocessFunction"].invoke(validated_state)["result"]["record"]

    # Then the verdict is REJECTED as gone, with the facts validation found, and the endpoint never heard of it
    assert (record["status"], record["rejection_class"]) == ("REJECTED", "gone-before-processing")
    assert record["input_format"] == "JPEG"
    assert endpoint.requests == []


def test_invoke_model_returns_the_top_label_with_its_confidence_and_provenance(stack, endpoint, preprocessed_state):
    # Given a model sure enough (over the 0.6 review threshold) that names itself as LesionFlow's container does
    endpoint.then(200, hf_answer(vascular_lesions=0.7, melanoma=0.3),
                  headers={"X-Amzn-SageMaker-Custom-Attributes": "model=vit-ham;version=3"})

    # When the InvokeModel handler runs
    record = stack.functions["InvokeModelFunction"].invoke(preprocessed_state)["result"]["record"]

    # Then the record has the top label, needs no review, and says which model, contract and pixels produced it
    assert (record["label"], record["confidence"], record["needs_review"]) == ("vasc", 0.7, False)
    assert "review" not in record
    assert (record["model_name"], record["model_version"], record["model_contract"]) == (
        "vit-ham", "3", "hf-image-classification")
    assert record["preprocessing_version"] == PREPROCESSING_VERSION and record["input_format"] == "JPEG"
    assert len(record["input_sha256"]) == 64 and record["endpoint_name"]


# ------------------------------------------------------------------------------------- the model input's handover
def test_a_small_model_input_travels_inline_and_the_endpoint_receives_exactly_it(stack, endpoint, preprocessed_state):
    # Given the default contract's input (a 224x224 JPEG), under the inline threshold
    handed = preprocessed_state["model_input"]
    assert handed["size"] <= INLINE_MAX_BYTES and "key" not in handed
    endpoint.then(200, hf_answer(melanoma=0.9, melanocytic_Nevi=0.1))

    # When InvokeModel runs
    result = stack.functions["InvokeModelFunction"].invoke(preprocessed_state)

    # Then the endpoint got those very bytes, nothing was stored, and the verdict does not carry them on
    [(_, _, body)] = endpoint.requests
    assert body == b64decode(handed["inline"]) and body[:3] == b"\xff\xd8\xff"
    assert handover_objects(stack.bucket) == []
    assert "model_input" not in result and result["result"]["record"]["status"] == "SUCCEEDED"


def test_a_large_model_input_is_stored_encrypted_under_its_own_prefix_and_deleted_once_used(
        stack, endpoint, validated_state, monkeypatch):
    # Given a contract whose input (3x224x224 uint8, 150,656 bytes) is over the inline threshold
    use_contract(stack, monkeypatch, "tensor-npy")

    # When Preprocess hands it over
    handed = stack.functions["PreprocessFunction"].invoke(validated_state)
    stored = handed["model_input"]

    # Then it is one object named by the upload id under the hand-over prefix, never under uploads/, and it is
    # encrypted with the data key by the bucket's default
    assert "inline" not in stored and stored["size"] > INLINE_MAX_BYTES
    assert stored["key"] == f"model-inputs/{validated_state['upload']['upload_id']}"
    head = boto3.client("s3").head_object(Bucket=stack.bucket, Key=stored["key"], VersionId=stored["version_id"])
    assert head["ContentLength"] == stored["size"]
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", stack_key_arn(stack))

    # When InvokeModel sends it and the endpoint answers
    endpoint.then(200, json.dumps([0.1, 0.2, 0.1, 0.1, 2.0, 0.3, 0.1]).encode())
    result = stack.functions["InvokeModelFunction"].invoke(handed)

    # Then the endpoint got exactly those bytes, and the object is gone for good: no version, no delete marker
    [(_, headers, body)] = endpoint.requests
    assert headers["Content-Type"] == "application/x-npy" and len(body) == stored["size"]
    assert result["result"]["record"]["label"] == "mel"
    assert handover_objects(stack.bucket) == []


@pytest.mark.parametrize("contract", ["hf-image-classification", "tensor-npy"])
def test_invoke_model_retries_without_decoding_again(stack, endpoint, validated_state, monkeypatch, contract):
    # Given a model input handed over (inline or stored), and then the upload itself deleted: decoding again
    # would now be impossible
    use_contract(stack, monkeypatch, contract)
    handed = stack.functions["PreprocessFunction"].invoke(validated_state)
    upload = validated_state["upload"]
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=upload["key"], VersionId=upload["version_id"])
    # and an endpoint that is down once (the SDK makes one attempt), then answers
    endpoint.then(503, b'{"message": "down"}', error_type="ServiceUnavailable")
    answer = hf_answer(melanoma=0.9) if contract.startswith("hf") else json.dumps([0, 0, 0, 0, 3, 0, 0]).encode()
    endpoint.then(200, answer)

    # When the state machine's first attempt fails and its retry runs with the same document
    with pytest.raises(errors.EndpointUnavailable):
        stack.functions["InvokeModelFunction"].invoke(handed)
    result = stack.functions["InvokeModelFunction"].invoke(handed)

    # Then the retry classified the same input, from the hand-over alone
    first, second = (body for _, _, body in endpoint.requests)
    assert first == second and result["result"]["record"]["label"] == "mel"


def test_a_stored_input_that_cannot_be_deleted_leaves_the_answer_standing(stack, endpoint, validated_state, monkeypatch):
    # Given a stored model input, and S3 refusing its deletion once the endpoint has answered
    use_contract(stack, monkeypatch, "tensor-npy")
    handed = stack.functions["PreprocessFunction"].invoke(validated_state)
    endpoint.then(200, json.dumps([0, 0, 0, 0, 3, 0, 0]).encode())

    def refuse(**request):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "DeleteObject")

    monkeypatch.setattr(clients.s3(), "delete_object", refuse)

    # When InvokeModel runs, Then the inference already paid for is recorded, and the lifecycle rule is left to
    # remove the input
    result = stack.functions["InvokeModelFunction"].invoke(handed)
    assert result["result"]["record"]["status"] == "SUCCEEDED"
    assert len(handover_objects(stack.bucket)) == 1


def test_a_retry_after_the_input_was_used_fails_as_unreadable_instead_of_classifying_something_else(
        stack, endpoint, validated_state, monkeypatch):
    # Given a stored input InvokeModel already used (its answer lost to the state machine, which retries)
    use_contract(stack, monkeypatch, "tensor-npy")
    handed = stack.functions["PreprocessFunction"].invoke(validated_state)
    endpoint.then(200, json.dumps([0, 0, 0, 0, 3, 0, 0]).encode())
    stack.functions["InvokeModelFunction"].invoke(handed)

    # Then the retry fails with the reason, and the endpoint is not called again (the FAILED record can be redriven)
    with pytest.raises(errors.ModelInputMissing, match="cannot be read"):
        stack.functions["InvokeModelFunction"].invoke(handed)
    assert len(endpoint.requests) == 1


def test_the_largest_inline_input_leaves_room_in_the_state_for_a_failures_cause(stack, validated_state):
    # Given a document with the largest inline input, as a Catch would extend it with an error's longest cause
    upload = Upload.model_validate(validated_state["upload"])
    largest = hand_over(None, upload, b"\xff" * INLINE_MAX_BYTES, "model-inputs/", "1").model_dump(exclude_none=True)
    failed = validated_state | {"model_input": largest, "failure": {"Error": "E" * 256, "Cause": "c" * 32768},
                                "explained": {"reason": "r" * 300}}
    # Then it stays under Step Functions' 256 KiB per state, measured as UTF-8, with a margin for the Lambda result
    # wrapper (States.DataLimitExceeded could not be caught and would leave no record)
    assert len(json.dumps(failed).encode()) + 4096 < 256 * 1024


def test_the_inline_threshold_is_inclusive_and_one_byte_more_is_stored(stack):
    identity = Upload.model_validate(state_for(stack, "uploads/t.jpg", jpeg(64, 64))["upload"])
    s3 = boto3.client("s3")
    assert hand_over(s3, identity, b"x" * INLINE_MAX_BYTES, "model-inputs/", "1").inline is not None
    assert hand_over(s3, identity, b"x" * (INLINE_MAX_BYTES + 1), "model-inputs/", "1").key is not None


def test_a_model_input_that_is_not_what_preprocess_made_fails_instead_of_reaching_the_model(
        stack, endpoint, preprocessed_state):
    # Given a document whose inline input was altered after Preprocess
    forged = preprocessed_state | {"model_input": preprocessed_state["model_input"] | {"inline": "AAAA"}}

    # Then InvokeModel refuses it before any request reaches the endpoint
    with pytest.raises(errors.ModelInputMissing):
        stack.functions["InvokeModelFunction"].invoke(forged)
    assert endpoint.requests == []


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
