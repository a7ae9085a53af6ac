"""The local SQS event source mapping behaves like Lambda's: batches, partial failures, redrive via SQS."""

import json
import threading

import boto3
import pytest

from lesionflow_local.event_source import DeliveryFaults, SqsEventSource


class Recorder:
    """A function that records its batches and fails the message ids it is told to."""

    def __init__(self, failing: set[str] = frozenset(), crash: bool = False):
        self.batches: list[list[str]] = []
        self.failing, self.crash = failing, crash

    def invoke(self, event: dict):
        bodies = [record["body"] for record in event["Records"]]
        self.batches.append(bodies)
        if self.crash:
            raise RuntimeError("the whole invocation failed")
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"] in self.failing]}


@pytest.fixture
def queues(aws):
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # A one-second visibility timeout, so that a message left in the queue comes back quickly.
    queue = sqs.create_queue(QueueName="ingest", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})})["QueueUrl"]
    return sqs, queue, dlq


def drain(source: SqsEventSource, seconds: float) -> None:
    """Run the event source for a while, then stop it."""
    stop = threading.Event()
    threading.Timer(seconds, stop.set).start()
    source.run(stop)


def count(sqs, url: str) -> int:
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"])


def test_messages_arrive_in_batches_of_at_most_the_batch_size(queues):
    sqs, queue, _ = queues
    for index in range(7):
        sqs.send_message(QueueUrl=queue, MessageBody=f"m{index}")
    function = Recorder()
    drain(SqsEventSource(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:ingest", function, batch_size=3), 2)
    assert all(len(batch) <= 3 for batch in function.batches)
    assert sorted(body for batch in function.batches for body in batch) == [f"m{i}" for i in range(7)]
    assert count(sqs, queue) == 0


def test_only_reported_failures_stay_and_reach_the_dead_letter_queue_after_max_receives(queues):
    # Given a good message and a poison one the function always reports as failed
    sqs, queue, dlq = queues
    sqs.send_message(QueueUrl=queue, MessageBody="good")
    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    function = Recorder(failing={"poison"})

    # When the event source polls until nothing is left
    drain(SqsEventSource(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:ingest", function), 8.5)

    # Then the good one was delivered once, the poison one five times, and it now waits in the dead-letter queue
    delivered = [body for batch in function.batches for body in batch]
    assert (delivered.count("good"), delivered.count("poison")) == (1, 5)
    assert count(sqs, queue) == 0 and count(sqs, dlq) == 1


def test_a_crashed_invocation_returns_the_whole_batch_to_the_queue(queues):
    sqs, queue, _ = queues
    sqs.send_message(QueueUrl=queue, MessageBody="a")
    source = SqsEventSource(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:ingest", Recorder(crash=True))
    drain(source, 2.5)
    # never deleted: it came back after its visibility timeout and was delivered again
    assert len(source.function.batches) >= 2 and all(batch == ["a"] for batch in source.function.batches)
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1


def test_an_injected_duplicate_delivery_sends_each_message_exactly_once_more(queues):
    # Given SQS told to deliver every message twice
    sqs, queue, _ = queues
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    faults = DeliveryFaults(duplicate_rate=1.0)
    source = SqsEventSource(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:ingest", Recorder(), faults=faults)

    # When the event source drains the queue
    drain(source, 2.5)

    # Then each body reached the function exactly twice, and both duplicates were counted
    delivered = sorted(body for batch in source.function.batches for body in batch)
    assert delivered == ["a", "a", "b", "b"] and faults.injected["duplicate_deliveries"] == 2
    assert count(sqs, queue) == 0


def test_an_injected_crash_handles_half_the_batch_then_returns_all_of_it_to_the_queue(queues):
    # Given a dispatcher that dies halfway through every batch of two or more
    sqs, queue, _ = queues
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(4)])
    faults = DeliveryFaults(crash_rate=1.0)
    source = SqsEventSource(sqs, queue, "arn:aws:sqs:us-east-1:123456789012:ingest", Recorder(), faults=faults,
                            batch_size=4, window_seconds=0.5)

    # When it polls once
    drain(source, 0.9)

    # Then the function saw only the first half, and nothing was deleted
    assert source.function.batches[0] == ["m0", "m1"] and faults.injected["dispatcher_crashes"] >= 1
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 4
