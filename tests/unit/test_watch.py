"""lesionflow watch: each record once, late writes caught, and each poll reading only the last few minutes."""

from datetime import UTC, datetime, timedelta

import boto3

from lesionflow.records import PredictionRecord
from lesionflow.uploads import ObjectVersion, iso_utc
from lesionflow_cli.predictions import LATE_WRITES, follow
from lesionflow_local.stack import LOCAL_HASH_KEY

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def put_record(table_name: str, name: str, created: datetime) -> None:
    upload = ObjectVersion(bucket="b", key=f"uploads/{name}.jpg", size=1, etag=name,
                           event_time=created).identified(LOCAL_HASH_KEY.encode())
    record = PredictionRecord.for_upload(upload, "arn:aws:states:us-east-1:123456789012:execution:sm:run",
                                         status="REJECTED", reason="test")
    item = record.model_copy(update={"created_at": iso_utc(created)}).to_item()
    boto3.client("dynamodb").put_item(TableName=table_name, Item=item)


def test_watch_emits_each_record_once_catches_late_writes_and_reads_only_recent_minutes(stack):
    # Given a record from half an hour ago, a watch started an hour back, and, written while the watch runs, one
    # record stamped a minute ago (a late write) and one stamped well before the late-write allowance
    table = boto3.resource("dynamodb").Table(stack.table)
    put_record(stack.table, "earlier", NOW - timedelta(minutes=30))
    emitted, polls = [], iter(range(3))

    def emit(record: dict) -> None:
        emitted.append(record["image_key"])
        if record["image_key"] == "uploads/earlier.jpg":
            put_record(stack.table, "late", NOW - timedelta(minutes=1))
            put_record(stack.table, "too-late", NOW - LATE_WRITES - timedelta(minutes=5))

    # When it polls twice
    follow(table, iso_utc(NOW - timedelta(hours=1)), 0, emit, lambda: next(polls, None) is not None, now=lambda: NOW)

    # Then the earlier record and the late one are emitted once each; the later polls no longer read back as far
    # as the record stamped before the allowance
    assert emitted == ["uploads/earlier.jpg", "uploads/late.jpg"]
