"""Listing the prediction log by label: the label index holds keys, the whole records come from the table."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3

from lesionflow.records import PredictionRecord
from lesionflow.uploads import ObjectVersion
from lesionflow_cli.predictions import Filters, listing
from lesionflow_local.stack import LOCAL_HASH_KEY


def put_record(table, number: int, label: str) -> None:
    uploaded = datetime(2026, 11, 23, tzinfo=UTC) + timedelta(seconds=number)
    upload = ObjectVersion(bucket="b", key=f"uploads/{number}.jpg", size=1, etag=f"e{number}",
                           event_time=uploaded).identified(LOCAL_HASH_KEY.encode())
    record = PredictionRecord.for_upload(upload, "arn:aws:states:us-east-1:123456789012:execution:sm:run",
                                         status="SUCCEEDED", label=label, confidence=0.9, scores={label: 0.9})
    item = record.model_copy(update={"created_at": uploaded.isoformat()}).to_item()
    boto3.client("dynamodb").put_item(TableName=table.name, Item=item)


def test_a_label_listing_longer_than_one_batch_read_returns_every_whole_record_newest_first(stack):
    # Given 150 records of one label (more than BatchGetItem's 100 keys) and one of another
    table = boto3.resource("dynamodb").Table(stack.table)
    for number in range(150):
        put_record(table, number, "nv")
    put_record(table, 150, "mel")

    # When the label is listed
    found = listing(table, Filters(label="nv"), limit=None)

    # Then every record of that label comes back whole (provenance and scores), newest first
    assert [record["image_key"] for record in found] == [f"uploads/{n}.jpg" for n in reversed(range(150))]
    assert all(record["scores"] == {"nv": Decimal("0.9")} for record in found)
    assert all(record["execution_arn"].endswith(":run") for record in found)
