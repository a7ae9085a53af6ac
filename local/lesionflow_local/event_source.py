"""Lambda's SQS event source mapping, locally: poll the ingest queue and invoke the dispatcher with batches.

As in AWS: up to ``BatchSize`` messages gathered for at most ``MaximumBatchingWindowInSeconds``; messages the
function reports in ``batchItemFailures`` (or all of them, if it raises) stay in the queue and come back after the
visibility timeout; SQS itself moves a message to the dead-letter queue after ``maxReceiveCount`` receives.

``DeliveryFaults`` add what SQS and Lambda do on a bad day, for the fault-injection run: a message delivered twice
(standard queues deliver at least once) and a dispatcher that dies halfway through a batch.
"""

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from lesionflow_local.lambdas import LocalFunction

log = logging.getLogger("lesionflow.local")


@dataclass
class DeliveryFaults:
    duplicate_rate: float = 0.0  # share of messages SQS delivers a second time (as a second, identical message)
    crash_rate: float = 0.0  # share of batches whose dispatcher dies after handling the first half
    seed: int = 0
    injected: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self._random = random.Random(self.seed)
        self._duplicated: set[str] = set()

    def duplicate(self, message: dict) -> bool:
        """Whether to deliver this message again; never the same body twice, so each duplicate is one extra copy."""
        if message["Body"] in self._duplicated or self._random.random() >= self.duplicate_rate:
            return False
        self._duplicated.add(message["Body"])
        self.injected["duplicate_deliveries"] += 1
        return True

    def crash(self, batch_size: int) -> bool:
        if batch_size < 2 or self._random.random() >= self.crash_rate:
            return False
        self.injected["dispatcher_crashes"] += 1
        return True


class DispatcherCrashed(RuntimeError):
    """Injected: the dispatcher died after handling part of its batch."""


@dataclass
class SqsEventSource:
    sqs: object
    queue_url: str
    queue_arn: str
    function: LocalFunction
    batch_size: int = 10
    window_seconds: float = 0.0
    report_batch_item_failures: bool = True
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; an error of the queue itself is logged and retried, never fatal."""
        while not stop.is_set():
            try:
                messages = self._gather(stop)
                if messages:
                    self._deliver(messages)
            except Exception:  # noqa: BLE001 - like Lambda's poller, keep polling whatever happened
                log.exception("polling the ingest queue failed; retrying in a second")
                stop.wait(1)

    def _gather(self, stop: threading.Event) -> list[dict]:
        messages: list[dict] = []
        deadline = time.monotonic() + self.window_seconds
        while len(messages) < self.batch_size and not stop.is_set():
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=1 if not messages else 0, AttributeNames=["All"], MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages += received
            for message in received:
                if self.faults.duplicate(message):
                    self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=message["Body"])
            if not received and (messages or time.monotonic() >= deadline):
                break
        return messages

    def _deliver(self, messages: list[dict]) -> None:
        try:
            response = self._invoke([self._record(message) for message in messages])
        except Exception:  # noqa: BLE001 - as in Lambda: the whole batch returns to the queue
            log.exception("the dispatcher failed a whole batch of %d; SQS will redeliver it", len(messages))
            return
        failed = set()
        if self.report_batch_item_failures and isinstance(response, dict):
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done[start:start + 10])
            ])

    def _invoke(self, records: list[dict]):
        if self.faults.crash(len(records)):
            self.function.invoke({"Records": records[: len(records) // 2]})
            raise DispatcherCrashed("injected: the dispatcher died halfway through its batch")
        return self.function.invoke({"Records": records})

    def _record(self, message: dict) -> dict:
        """One message in the shape Lambda's SQS event uses."""
        return {
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                                         "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
                                  for name, value in message.get("MessageAttributes", {}).items()},
            "md5OfBody": message["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn,
            "awsRegion": self.queue_arn.split(":")[3],
        }
