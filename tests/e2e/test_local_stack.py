"""End to end on the local stack, started as a person starts it (`lesionflow local up --json`) and used only
through AWS APIs at its endpoint: uploads go through S3 -> SQS -> dispatcher -> Step Functions -> model -> log."""

import json
import subprocess
import sys
import time
from urllib.parse import quote_plus

import pytest
from PIL import Image

from tests.e2e.local import ROOT, WAIT_SECONDS, queue_drained, records_of, started_local_stack, upload, wait_for
from tests.support import encode, jpeg, png, s3_notification


@pytest.fixture(scope="module")
def local_stack():
    with started_local_stack() as details:
        yield details


def test_the_connection_details_name_everything_a_client_needs(local_stack):
    assert {"endpoint_url", "region", "bucket", "upload_prefix", "table", "queue_url", "dlq_url",
            "state_machine_arn"} <= set(local_stack)


def test_a_mixed_batch_ends_with_exactly_one_terminal_record_per_upload(aws, local_stack):
    # Given a batch of valid, awkward and invalid uploads
    prefix = f"{local_stack['upload_prefix']}batch/"
    expected = {
        f"{prefix}photo.jpg": ("SUCCEEDED", jpeg(600, 450)),
        f"{prefix}alpha.png": ("SUCCEEDED", png(300, 300, colour=(200, 100, 90, 0), mode="RGBA")),
        f"{prefix}grey.png": ("SUCCEEDED", png(256, 256, colour=90, mode="L")),
        f"{prefix}notes.jpg": ("REJECTED", b"not an image at all"),
        f"{prefix}empty.jpg": ("REJECTED", b""),
        f"{prefix}truncated.jpg": ("REJECTED", jpeg(400, 300, quality=95)[:600]),
        f"{prefix}bitmap.jpg": ("REJECTED", encode(Image.new("RGB", (64, 64), (1, 2, 3)), "BMP")),
    }

    # When they are uploaded
    for key, (_, body) in expected.items():
        upload(aws, local_stack, key, body)
    found = wait_for(local_stack, list(expected))

    # Then each has exactly one record with the expected status, and a reason where it was rejected
    assert {key: [r["status"] for r in records] for key, records in found.items()} == {
        key: [status] for key, (status, _) in expected.items()}
    for key, [record] in found.items():
        if record["status"] == "REJECTED":
            assert record["reason"]
        else:  # the prediction JSON lies where the record says, and names the model honestly
            bucket, prediction_key = record["prediction_uri"].removeprefix("s3://").split("/", 1)
            prediction = json.loads(aws("s3").get_object(Bucket=bucket, Key=prediction_key)["Body"].read())
            assert prediction["image_key"] == key and prediction["label"] == record["label"]
            assert record["model_name"] == local_stack["model"]
            assert "untrained" in record["model_disclaimer"]


@pytest.mark.parametrize("name", ["with space.jpg", "plus+sign.jpg", "100%.jpg", "Jörg Ørsted ünïcødé.jpg"])
def test_keys_with_awkward_characters_come_back_exactly(aws, local_stack, name):
    key = f"{local_stack['upload_prefix']}names/{name}"
    upload(aws, local_stack, key, jpeg(128, 128))
    [record] = wait_for(local_stack, [key])[key]
    assert record["image_key"] == key and record["status"] == "SUCCEEDED"


def test_the_same_notification_delivered_twice_yields_one_record(aws, local_stack):
    # Given an object, and the notification S3 sends for it (naming its version) delivered twice more to the queue
    key = f"{local_stack['upload_prefix']}duplicate/photo.jpg"
    body = jpeg(200, 200)
    upload(aws, local_stack, key, body)
    head = aws("s3").head_object(Bucket=local_stack["bucket"], Key=key)
    notification = json.dumps(s3_notification(local_stack["bucket"], quote_plus(key, safe="/"), len(body),
                                              etag=head["ETag"].strip('"'), version_id=head["VersionId"]))
    for _ in range(2):
        aws("sqs").send_message(QueueUrl=local_stack["queue_url"], MessageBody=notification)

    # When all three are processed
    deadline = time.monotonic() + WAIT_SECONDS
    while not records_of(local_stack, key):
        assert time.monotonic() < deadline
        time.sleep(0.25)
    time.sleep(3)

    # Then the version has exactly one record
    [record] = records_of(local_stack, key)
    assert record["version_token"] == f"v:{head['VersionId']}"


def test_s3s_test_event_in_the_queue_yields_nothing_and_no_dead_letter(aws, local_stack):
    # Given the queue receives S3's test event
    sfn = aws("stepfunctions")
    before = len(sfn.list_executions(stateMachineArn=local_stack["state_machine_arn"])["executions"])
    aws("sqs").send_message(QueueUrl=local_stack["queue_url"], MessageBody=json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-23T10:00:00.000Z",
         "Bucket": local_stack["bucket"], "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkw"}))

    # When the dispatcher has taken it
    deadline = time.monotonic() + WAIT_SECONDS
    while not queue_drained(aws, local_stack["queue_url"]):
        assert time.monotonic() < deadline
        time.sleep(0.25)

    # Then no execution started and nothing went to the dead-letter queue
    assert len(sfn.list_executions(stateMachineArn=local_stack["state_machine_arn"])["executions"]) == before
    assert queue_drained(aws, local_stack["dlq_url"])


def test_lesionflow_invoke_runs_a_handler_with_its_template_environment(aws, local_stack):
    # Given the sample object the sample validate event describes
    event = json.loads((ROOT / "events" / "validate.json").read_text())
    upload(aws, local_stack, event["upload"]["key"], (ROOT / "samples" / "ham-size-dark.jpg").read_bytes())

    # When the validate function is invoked with that event, as `sam local invoke -e` would
    result = subprocess.run([sys.executable, "-m", "lesionflow_cli", "invoke", "validate", "--event",
                             "events/validate.json", "--endpoint-url", local_stack["endpoint_url"]],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)

    # Then it printed the state with the image's facts
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["image"]["format"] == "JPEG"
