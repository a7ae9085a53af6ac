"""The lesionflow command's own logic: times people type, output formats, finding the stack."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lesionflow_cli import predictions
from lesionflow_cli.stack import CommandError, find_stack

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", "2026-11-16T12:00:00.000Z"), ("12h", "2026-11-23T00:00:00.000Z"), ("30m", "2026-11-23T11:30:00.000Z"),
    ("2w", "2026-11-09T12:00:00.000Z"), ("2026-11-01", "2026-11-01T00:00:00.000Z"),
    ("2026-11-01T08:30:00+02:00", "2026-11-01T06:30:00.000Z"), ("2026-11-01T08:30:00Z", "2026-11-01T08:30:00.000Z"),
])
def test_times_are_relative_or_iso_and_come_out_as_the_log_sorts_them(text, expected):
    assert predictions.parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7 days", "-3d", "2026-13-01"])
def test_a_time_that_is_neither_is_a_clear_error(text):
    with pytest.raises(CommandError, match="not a time"):
        predictions.parse_time(text, now=NOW)


RECORD = {"image_key": "uploads/a,b.jpg", "status": "SUCCEEDED", "label": "mel", "confidence": Decimal("0.8123"),
          "needs_review": False, "created_at": "2026-11-23T10:00:00.000Z", "scores": {"mel": Decimal("0.8123")}}


def test_json_output_is_one_object_a_line_with_plain_numbers():
    line = predictions.render([RECORD, RECORD], "json").splitlines()
    assert len(line) == 2 and '"confidence": 0.8123' in line[0] and '"scores": {"mel": 0.8123}' in line[0]


def test_csv_output_quotes_what_needs_quoting_and_the_table_reads_for_people():
    assert predictions.render([RECORD], "csv").splitlines()[1].startswith('"uploads/a,b.jpg",SUCCEEDED,mel,0.81,')
    table = predictions.render([RECORD], "table").splitlines()
    assert table[0].split()[:3] == ["image_key", "status", "label"] and "0.81" in table[1]
    assert predictions.render([], "table") == "(no records)"


def test_a_local_stack_needs_to_be_running_or_named_by_its_address(monkeypatch, tmp_path):
    monkeypatch.setattr("lesionflow_cli.stack.STATE_FILE", tmp_path / "absent.json")
    with pytest.raises(CommandError, match="no local stack is running"):
        find_stack(None, local=True, endpoint_url=None, region=None, profile=None)
    stack = find_stack(None, local=False, endpoint_url="http://127.0.0.1:4747/", region=None, profile=None)
    assert stack.endpoint_url == "http://127.0.0.1:4747" and stack.table_name.endswith("PredictionTable")
