"""lesionflow watch: each record once, late writes caught, and each poll reading only the last few minutes."""

from datetime import UTC, datetime, timedelta

import boto3

from lesionflow.uploads import iso_utc
from lesionflow_cli.predictions import LATE_WRITES, follow
from tests.support import put_record

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FAILED = {"status": "FAILED", "reason": "test"}


def test_watch_emits_each_record_once_catches_late_writes_and_reads_only_recent_minutes(stack):
    # Given a FAILED record from half an hour ago, a watch started an hour back, and, written while the watch runs,
    # one record stamped a minute ago (a late write), one stamped well before the late-write allowance, and then
    # a rerun's verdict replacing the FAILED record
    table = boto3.resource("dynamodb").Table(stack.table)
    put_record(stack.table, "earlier", NOW - timedelta(minutes=30), **FAILED)
    emitted, answers = [], iter([True] * 5)  # asked before each poll and each pause: three polls

    def emit(record: dict) -> None:
        emitted.append(record["image_key"])
        if len(emitted) == 1:
            put_record(stack.table, "late", NOW - timedelta(minutes=1), **FAILED)
            put_record(stack.table, "too-late", NOW - LATE_WRITES - timedelta(minutes=5), **FAILED)
        if len(emitted) == 2:
            put_record(stack.table, "earlier", NOW, uploaded=NOW - timedelta(minutes=30), status="REJECTED",
                       reason="test")

    # When it polls three times (the late record is in the window of the last two)
    follow(table, iso_utc(NOW - timedelta(hours=1)), 0, emit, lambda: next(answers, False), now=lambda: NOW)

    # Then each record is emitted once, the replaced one again with its new verdict; the later polls no longer read
    # back as far as the record stamped before the allowance
    assert emitted == ["uploads/earlier.jpg", "uploads/late.jpg", "uploads/earlier.jpg"]
