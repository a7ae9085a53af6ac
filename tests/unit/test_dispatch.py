"""The dispatch handler: SQS batches of S3 notifications in, one execution per upload version of the stack's own
bucket out, with every fact about the upload read from S3 rather than from the message."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from lesionflow import clients
from tests.support import jpeg, s3_notification, sqs_event


@pytest.fixture
def dispatch(stack):
    return stack.functions["DispatchFunction"]


def executions(stack) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    found = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) | {"name": e["name"]}
            for e in found]


def notification(stack, key: str, data: bytes | None = None, **fields) -> str:
    """Put ``data`` at ``key`` (unless None) and return what S3 puts in the queue for it (the key URL-encoded, the
    version named), with ``fields`` overriding what the message claims."""
    claimed = {"size": 1234}
    if data is not None:
        put = boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=data)
        claimed = {"size": len(data), "etag": put["ETag"].strip('"'), "version_id": put["VersionId"]}
    return json.dumps(s3_notification(stack.bucket, quote_plus(key, safe="/"), **(claimed | fields)))


IMAGE = jpeg()


@pytest.mark.parametrize("key", [
    "uploads/plain.jpg", "uploads/with space.jpg", "uploads/a+b.jpg", "uploads/100%25.jpg",
    "uploads/ünïcødé/Jörg Ørsted.png", "uploads/sub/dir/x.jpeg",
])
def test_each_upload_starts_one_execution_with_its_key_decoded(stack, dispatch, key):
    # When the dispatcher gets the notification of an upload
    response = dispatch.invoke(sqs_event(notification(stack, key, IMAGE)))

    # Then one execution runs for it, with the key exactly as uploaded, and nothing is reported failed
    assert response == {"batchItemFailures": []}
    [started] = executions(stack)
    assert started["upload"]["key"] == key
    assert started["name"] == started["upload"]["upload_id"]


def test_a_plus_and_its_encoded_form_are_different_keys(stack, dispatch):
    # Given S3's encoding: a space arrives as '+', a real plus sign as '%2B'
    s3 = boto3.client("s3")
    for key in ("uploads/a b.jpg", "uploads/a+b.jpg"):
        s3.put_object(Bucket=stack.bucket, Key=key, Body=IMAGE)
    bodies = [json.dumps(s3_notification(stack.bucket, "uploads/a+b.jpg", 1)),
              json.dumps(s3_notification(stack.bucket, "uploads/a%2Bb.jpg", 1, sequencer="02"))]

    # When both are dispatched
    dispatch.invoke(sqs_event(*bodies))

    # Then they are decoded to two different keys
    assert sorted(e["upload"]["key"] for e in executions(stack)) == ["uploads/a b.jpg", "uploads/a+b.jpg"]


def test_s3s_test_event_is_acknowledged_and_starts_nothing(stack, dispatch):
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-23T10:00:00.000Z",
                             "Bucket": stack.bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkw"})
    assert dispatch.invoke(sqs_event(test_event)) == {"batchItemFailures": []}
    assert executions(stack) == []


def test_objects_outside_the_upload_prefix_are_ignored(stack, dispatch):
    assert dispatch.invoke(sqs_event(notification(stack, "predictions/x.json"))) == {"batchItemFailures": []}
    assert executions(stack) == []


def test_the_same_notification_delivered_twice_starts_one_execution(stack, dispatch):
    # Given one notification delivered in two batches (SQS is at-least-once)
    body = notification(stack, "uploads/twice.jpg", IMAGE)

    # When both deliveries are dispatched
    first, second = dispatch.invoke(sqs_event(body)), dispatch.invoke(sqs_event(body))

    # Then both are acknowledged and exactly one execution exists
    assert first == second == {"batchItemFailures": []}
    assert len(executions(stack)) == 1


def test_a_new_version_of_the_same_key_starts_its_own_execution(stack, dispatch):
    dispatch.invoke(sqs_event(notification(stack, "uploads/x.jpg", IMAGE)))
    dispatch.invoke(sqs_event(notification(stack, "uploads/x.jpg", jpeg(colour=(1, 2, 3)))))
    assert len(executions(stack)) == 2


def test_only_the_records_that_really_failed_are_reported(stack, dispatch):
    # Given a batch with a good notification between two poison messages
    event = sqs_event("this is not json", notification(stack, "uploads/good.jpg", IMAGE), '{"Records": [{"bad": 1}]}')

    # When it is dispatched
    response = dispatch.invoke(event)

    # Then the two poison messages are reported for redelivery (and so, in time, the DLQ) and the good one ran
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-2"}]}
    assert [e["upload"]["key"] for e in executions(stack)] == ["uploads/good.jpg"]


def test_a_failure_to_start_is_reported_for_redelivery(stack, dispatch, monkeypatch):
    # Given a state machine the dispatcher cannot start (deleted, or no permission)
    monkeypatch.setitem(dispatch.environment, "STATE_MACHINE_ARN", stack.state_machine_arn + "-gone")
    event = sqs_event(notification(stack, "uploads/a.jpg", IMAGE), notification(stack, "uploads/b.jpg", IMAGE), "{}")

    # When a batch is dispatched, then every record is given back to the queue rather than silently dropped
    # (Powertools fails the whole invocation when every record failed, and Lambda returns the batch to SQS)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        dispatch.invoke(event)


def test_logs_and_execution_names_never_contain_the_object_key(stack, dispatch, capsys):
    dispatch.invoke(sqs_event(notification(stack, "uploads/Jane Doe DOB 1970.jpg", IMAGE)))
    [started] = executions(stack)
    assert "Jane" not in started["name"]
    assert "Jane" not in capsys.readouterr().out


def test_a_malformed_notification_is_described_without_echoing_the_key_it_holds(stack, dispatch, capsys):
    # Given a message that looks almost like a notification and carries a patient's name in its key
    body = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "uploads/Jane Doe.jpg"}}}]})

    # When it fails to dispatch (and so goes back to the queue)
    with pytest.raises(BatchProcessingError) as failure:
        dispatch.invoke(sqs_event(body))

    # Then the error says what is missing, and neither it nor the logs repeat the key
    assert "not an S3 notification" in str(failure.value)
    assert "Jane" not in str(failure.value) and "Jane" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------- nothing in the queue is trusted
def started_upload(stack) -> dict:
    [started] = executions(stack)
    return started["upload"]


def test_a_notification_for_another_bucket_is_dropped_and_counted(stack, dispatch, capsys):
    # Given a notification naming another bucket (S3 sends none such to this queue: someone sent it)
    other = "someone-elses-bucket"
    boto3.client("s3").create_bucket(Bucket=other)
    boto3.client("s3").put_object(Bucket=other, Key="uploads/x.jpg", Body=IMAGE)
    body = json.dumps(s3_notification(other, "uploads/x.jpg", len(IMAGE)))

    # When it is dispatched
    response = dispatch.invoke(sqs_event(body))

    # Then it is acknowledged (a redelivery could not make it ours), nothing starts, and the drop is counted
    assert response == {"batchItemFailures": []}
    assert executions(stack) == []
    assert '"ForeignBucketDropped"' in capsys.readouterr().out


def test_the_size_etag_and_time_come_from_s3_not_from_the_message(stack, dispatch):
    # Given a message for a real upload claiming it is empty, with another ETag and a time in the future
    body = notification(stack, "uploads/real.jpg", IMAGE, size=0, etag="0" * 32,
                        event_time="2099-01-01T00:00:00.000Z")

    # When it is dispatched
    dispatch.invoke(sqs_event(body))

    # Then the execution works on the object as S3 describes it
    head = boto3.client("s3").head_object(Bucket=stack.bucket, Key="uploads/real.jpg")
    upload = started_upload(stack)
    assert (upload["size"], upload["etag"], upload["version_id"]) == (
        len(IMAGE), head["ETag"].strip('"'), head["VersionId"])
    assert upload["uploaded_at"] == head["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("claim", [{"size": -987654}, {"size": "987654 bytes"}, {"size": None},
                                   {"event_time": "yesterday 987654"}, {"event_time": "2026-13-45T98:76:54Z"}])
def test_a_missing_negative_or_malformed_size_or_time_is_not_taken_on_faith(stack, dispatch, capsys, claim):
    # Given a message for a real upload whose size or time is nonsense
    message = json.loads(notification(stack, "uploads/odd.jpg", IMAGE))
    announced = message["Records"][0]
    if "size" in claim:
        announced["s3"]["object"]["size"] = claim["size"]
    else:
        announced["eventTime"] = claim["event_time"]

    # When it is dispatched
    response = dispatch.invoke(sqs_event(json.dumps(message)))

    # Then the upload is processed as S3 describes it, and no log line repeats the claimed value
    assert response == {"batchItemFailures": []}
    assert started_upload(stack)["size"] == len(IMAGE)
    assert "987654" not in capsys.readouterr().out and "98:76:54" not in capsys.readouterr().out


def test_notifications_of_one_version_from_every_source_start_one_execution(stack, dispatch):
    # Given one upload, and what arrives about it: S3's notification, the same version without its id (a backfill
    # of a bucket listed without versions), multipart's two events, and a replay with another time and size
    real = json.loads(notification(stack, "uploads/one.jpg", IMAGE))
    obj = real["Records"][0]["s3"]["object"]
    bodies = [json.dumps(real)]
    for event_name in ("ObjectCreated:Backfill", "ObjectCreated:CompleteMultipartUpload"):
        again = json.loads(json.dumps(real))
        again["Records"][0]["eventName"] = event_name
        bodies.append(json.dumps(again))
    replay = json.loads(json.dumps(real))
    replay["Records"][0]["eventTime"] = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    replay["Records"][0]["s3"]["object"] |= {"size": 0, "sequencer": "FF" * 9}
    bodies.append(json.dumps(replay))
    unversioned = json.loads(json.dumps(real))
    del unversioned["Records"][0]["s3"]["object"]["versionId"]
    bodies.append(json.dumps(unversioned))

    # When each is dispatched, in separate batches
    for body in bodies:
        dispatch.invoke(sqs_event(body))

    # Then exactly one execution exists, for S3's version
    assert started_upload(stack)["version_id"] == obj["versionId"]


@pytest.mark.parametrize("version", ["a-version-that-never-existed", "", "not/valid"])
def test_a_claim_of_a_version_s3_does_not_hold_is_dropped_and_counted(stack, dispatch, capsys, version):
    # Given a real key, and a message naming a version of it that S3 does not hold
    body = notification(stack, "uploads/held.jpg", IMAGE, version_id=version or "null")

    # When it is dispatched
    response = dispatch.invoke(sqs_event(body))

    # Then nothing starts for it (it could only have added a record to a real key), and the drop is counted
    assert response == {"batchItemFailures": []}
    assert executions(stack) == []
    assert '"UploadsNotFound"' in capsys.readouterr().out


def test_a_claim_of_a_key_that_is_not_there_starts_nothing(stack, dispatch):
    response = dispatch.invoke(sqs_event(notification(stack, "uploads/never-uploaded.jpg")))
    assert response == {"batchItemFailures": []}
    assert executions(stack) == []


def test_a_replayed_notification_of_an_older_version_keeps_its_own_older_sort_key(stack, dispatch):
    # Given two versions of one key, the older one's notification replayed after the newer one ran
    older = notification(stack, "uploads/twice.jpg", IMAGE)
    newer = notification(stack, "uploads/twice.jpg", jpeg(colour=(9, 9, 9)))
    dispatch.invoke(sqs_event(newer))
    replayed = json.loads(older)
    replayed["Records"][0]["eventTime"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    # When the replay is dispatched
    dispatch.invoke(sqs_event(json.dumps(replayed)))

    # Then its execution is for the older version at S3's time for it, which is not after the newer one's
    runs = {e["upload"]["version_id"]: e["upload"] for e in executions(stack)}
    old_id = json.loads(older)["Records"][0]["s3"]["object"]["versionId"]
    new_id = json.loads(newer)["Records"][0]["s3"]["object"]["versionId"]
    head = boto3.client("s3").head_object(Bucket=stack.bucket, Key="uploads/twice.jpg", VersionId=old_id)
    assert runs[old_id]["uploaded_at"] == head["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert runs[old_id]["uploaded_at"] <= runs[new_id]["uploaded_at"]


def test_a_message_claiming_more_uploads_than_s3_ever_sends_is_refused(stack, dispatch):
    # Given one message carrying 11 records for real uploads (S3 and backfill send one a message)
    records = []
    for index in range(11):
        records += json.loads(notification(stack, f"uploads/many-{index}.jpg", IMAGE))["Records"]

    # When it is dispatched, Then it is given back to the queue (and so ends in the DLQ) before any HEAD or start
    with pytest.raises(BatchProcessingError, match="not an S3 notification"):
        dispatch.invoke(sqs_event(json.dumps({"Records": records})))
    assert executions(stack) == []


@pytest.mark.parametrize("key", ["uploads/", "uploads/clinic 7/"])
def test_a_folder_marker_is_not_an_upload(stack, dispatch, capsys, key):
    # Given the empty object the S3 console creates for "Create folder"
    response = dispatch.invoke(sqs_event(notification(stack, key, b"")))

    # Then it is acknowledged and counted, and no record will say an upload was empty
    assert response == {"batchItemFailures": []}
    assert executions(stack) == []
    assert '"FolderMarkersIgnored"' in capsys.readouterr().out


def test_when_s3_cannot_be_reached_the_message_is_retried_and_the_key_never_logged(stack, dispatch, capsys):
    # Given S3 unreachable (the dispatcher's HEAD fails to connect) and a key naming a patient
    body = notification(stack, "uploads/Jane Doe DOB 1970.jpg", IMAGE)
    dispatch.environment["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"
    clients.s3.cache_clear()
    try:
        # When it is dispatched, Then the whole batch goes back to the queue...
        with pytest.raises(BatchProcessingError) as failure:
            dispatch.invoke(sqs_event(body))
    finally:
        del dispatch.environment["AWS_ENDPOINT_URL_S3"]
        clients.s3.cache_clear()

    # ...saying what failed, without the URL botocore's own error quotes (it holds the key)
    assert "StorageUnreachable" in str(failure.value) and "EndpointConnectionError" in str(failure.value)
    assert "Jane" not in str(failure.value) and "Jane" not in capsys.readouterr().out
    assert executions(stack) == []
