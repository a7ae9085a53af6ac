"""The local stack started as a person starts it, and read back only through AWS APIs."""

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import boto3
from boto3.dynamodb.conditions import Key

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 90


@contextmanager
def started_local_stack(*options: str):
    """`lesionflow local up --json` in a subprocess; its connection details while it runs."""
    process = subprocess.Popen([sys.executable, "-m", "lesionflow_cli", "local", "up", "--json", "--port", "0",
                                *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    assert line, "lesionflow local up exited before printing its connection details"
    try:
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "lesionflow local up did not shut down cleanly on SIGTERM"


def client(stack: dict, service: str):
    """A client of any AWS SDK pointed at the local stack with dummy credentials."""
    return boto3.client(service, endpoint_url=stack["endpoint_url"], region_name=stack["region"],
                        aws_access_key_id="dummy", aws_secret_access_key="dummy")


def upload(aws, stack: dict, key: str, body: bytes) -> None:
    aws("s3").put_object(Bucket=stack["bucket"], Key=key, Body=body)


def records_of(stack: dict, key: str) -> list[dict]:
    table = _table(stack["endpoint_url"], stack["region"], stack["table"])
    return table.query(KeyConditionExpression=Key("image_key").eq(key))["Items"]


@cache
def _table(endpoint_url: str, region: str, name: str):
    """One DynamoDB resource per local stack, not one per poll."""
    return boto3.resource("dynamodb", endpoint_url=endpoint_url, region_name=region,
                          aws_access_key_id="dummy", aws_secret_access_key="dummy").Table(name)


def wait_for(stack: dict, keys: list[str], settle: float = 1.0) -> dict[str, list[dict]]:
    """Every key's records once each has one, plus a moment for any unwanted second record to show up."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not all(records_of(stack, key) for key in keys):
        assert time.monotonic() < deadline, "some uploads never got a record"
        time.sleep(0.25)
    time.sleep(settle)
    return {key: records_of(stack, key) for key in keys}


def queue_drained(aws, url: str) -> bool:
    attributes = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
