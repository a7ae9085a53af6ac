"""Listing the prediction log by label: the label index holds keys, the whole records come from the table."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3

from lesionflow_cli.predictions import Filters, listing
from tests.support import put_record


def put_labelled(table_name: str, number: int, label: str) -> None:
    put_record(table_name, str(number), datetime(2026, 11, 23, tzinfo=UTC) + timedelta(seconds=number),
               status="SUCCEEDED", label=label, confidence=0.9, scores={label: 0.9})


def test_a_label_listing_longer_than_one_batch_read_returns_every_whole_record_newest_first(stack):
    # Given 150 records of one label (more than BatchGetItem's 100 keys) and one of another
    table = boto3.resource("dynamodb").Table(stack.table)
    for number in range(150):
        put_labelled(stack.table, number, "nv")
    put_labelled(stack.table, 150, "mel")

    # When the label is listed
    found = listing(table, Filters(label="nv"), limit=None)

    # Then every record of that label comes back whole (provenance and scores), newest first
    assert [record["image_key"] for record in found] == [f"uploads/{n}.jpg" for n in reversed(range(150))]
    assert all(record["scores"] == {"nv": Decimal("0.9")} for record in found)
    assert all(record["execution_arn"].endswith(":run") for record in found)
