"""The dispatch handler: SQS batches of S3 notifications in, one execution per upload version out."""

import json
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.support import s3_notification, sqs_event


@pytest.fixture
def dispatch(stack):
    return stack.functions["DispatchFunction"]


def executions(stack) -> list[dict]:
    sfn = boto3.client("stepfunctions")
    found = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    return [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) | {"name": e["name"]}
            for e in found]


def notification(stack, key: str, **fields) -> str:
    """What S3 puts in the queue for ``key`` (which it URL-encodes)."""
    return json.dumps(s3_notification(stack.bucket, quote_plus(key, safe="/"), size=1234, **fields))


@pytest.mark.parametrize("key", [
    "uploads/plain.jpg", "uploads/with space.jpg", "uploads/a+b.jpg", "uploads/100%25.jpg",
    "uploads/ünïcødé/Jörg Ørsted.png", "uploads/sub/dir/x.jpeg",
])
def test_each_upload_starts_one_execution_with_its_key_decoded(stack, dispatch, key):
    # When the dispatcher gets the notification of an upload
    response = dispatch.invoke(sqs_event(notification(stack, key)))

    # Then one execution runs for it, with the key exactly as uploaded, and nothing is reported failed
    assert response == {"batchItemFailures": []}
    [started] = executions(stack)
    assert started["upload"]["key"] == key
    assert started["name"] == started["upload"]["upload_id"]


def test_a_plus_and_its_encoded_form_are_different_keys(stack, dispatch):
    # Given S3's encoding: a space arrives as '+', a real plus sign as '%2B'
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
    body = notification(stack, "uploads/twice.jpg")

    # When both deliveries are dispatched
    first, second = dispatch.invoke(sqs_event(body)), dispatch.invoke(sqs_event(body))

    # Then both are acknowledged and exactly one execution exists
    assert first == second == {"batchItemFailures": []}
    assert len(executions(stack)) == 1


def test_a_new_version_of_the_same_key_starts_its_own_execution(stack, dispatch):
    dispatch.invoke(sqs_event(notification(stack, "uploads/x.jpg", version_id="v1")))
    dispatch.invoke(sqs_event(notification(stack, "uploads/x.jpg", version_id="v2")))
    assert len(executions(stack)) == 2


def test_only_the_records_that_really_failed_are_reported(stack, dispatch):
    # Given a batch with a good notification between two poison messages
    event = sqs_event("this is not json", notification(stack, "uploads/good.jpg"), '{"Records": [{"bad": 1}]}')

    # When it is dispatched
    response = dispatch.invoke(event)

    # Then the two poison messages are reported for redelivery (and so, in time, the DLQ) and the good one ran
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-2"}]}
    assert [e["upload"]["key"] for e in executions(stack)] == ["uploads/good.jpg"]


def test_a_failure_to_start_is_reported_for_redelivery(stack, dispatch, monkeypatch):
    # Given a state machine the dispatcher cannot start (deleted, or no permission)
    monkeypatch.setitem(dispatch.environment, "STATE_MACHINE_ARN", stack.state_machine_arn + "-gone")
    event = sqs_event(notification(stack, "uploads/a.jpg"), notification(stack, "uploads/b.jpg"), "{}")

    # When a batch is dispatched, then every record is given back to the queue rather than silently dropped
    # (Powertools fails the whole invocation when every record failed, and Lambda returns the batch to SQS)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        dispatch.invoke(event)


def test_logs_and_execution_names_never_contain_the_object_key(stack, dispatch, capsys):
    dispatch.invoke(sqs_event(notification(stack, "uploads/Jane Doe DOB 1970.jpg")))
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
