"""Reading the prediction log: the latest record of a key, lists by label, status, review and time, and new records
as they arrive. Every read is a Query on the table's key or one of its indexes, never a Scan."""

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from boto3.dynamodb.conditions import Attr, Key

from lesionflow.records import REVIEW_NEEDED, Status
from lesionflow.uploads import iso_utc
from lesionflow_cli.stack import CommandError

RELATIVE = re.compile(r"^(?P<amount>\d+)(?P<unit>[smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
COLUMNS = ("image_key", "status", "label", "confidence", "needs_review", "created_at", "reason")


def parse_time(text: str, now: datetime | None = None) -> str:
    """``7d``, ``12h``, ``30m`` ago, or an ISO-8601 time (UTC if it names no zone), as the log's created_at sorts."""
    match = RELATIVE.match(text.strip())
    if match:
        moment = (now or datetime.now(UTC)) - timedelta(**{UNITS[match["unit"]]: int(match["amount"])})
        return iso_utc(moment)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"not a time: {text!r} (use ISO-8601 like 2026-11-01T00:00:00Z, or 7d, 12h, 30m)") from None
    return iso_utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@dataclass(frozen=True)
class Filters:
    label: str | None = None
    status: Status | None = None
    needs_review: bool = False
    since: str | None = None
    until: str | None = None


def latest(table, key: str, all_versions: bool = False) -> list[dict]:
    """The newest record of a key (every version's, newest first, with ``all_versions``)."""
    query = {"KeyConditionExpression": Key("image_key").eq(key), "ScanIndexForward": False}
    return list(_pages(table, query if all_versions else query | {"Limit": 1}, limit=None if all_versions else 1))


def listing(table, filters: Filters, limit: int | None, page_size: int = 100) -> list[dict]:
    """Records matching ``filters``, newest first, from the index that serves them (paginated Queries; with no label,
    status or review filter, one Query per status, merged)."""
    window = _window(filters)
    found: list[dict] = []
    for index, partition, condition in _queries(filters):
        query = {"IndexName": index, "KeyConditionExpression": partition & window if window else partition,
                 "ScanIndexForward": False, "Limit": page_size}
        matches = list(_pages(table, query | ({"FilterExpression": condition} if condition else {}), limit))
        found += matches if _holds_whole_records(table, index) else _whole_records(table, matches)
    found.sort(key=lambda record: record["created_at"], reverse=True)
    return found[:limit] if limit else found


def _holds_whole_records(table, index: str) -> bool:
    """Whether an index projects every attribute (the template keeps some to keys and filters, to halve writes)."""
    return any(each["IndexName"] == index and each["Projection"]["ProjectionType"] == "ALL"
               for each in table.global_secondary_indexes or [])


def _whole_records(table, matches: list[dict], batch: int = 100) -> list[dict]:
    """The table's records for index matches, by key: BatchGetItem, 100 keys a call, strongly consistent (a record
    the index already shows is in the table), unprocessed keys retried with backoff."""
    keys = [{"image_key": match["image_key"], "upload_version": match["upload_version"]} for match in matches]
    records: list[dict] = []
    for start in range(0, len(keys), batch):
        request = {table.name: {"Keys": keys[start:start + batch], "ConsistentRead": True}}
        for attempt in range(8):
            answer = table.meta.client.batch_get_item(RequestItems=request)
            records += answer["Responses"].get(table.name, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise CommandError("the prediction table kept throttling reads: try again, or with a smaller --limit")
    return records


def _queries(filters: Filters) -> list[tuple]:
    """(index, partition key condition, filter or None) for each Query that serves ``filters``."""
    label = Attr("label").eq(filters.label) if filters.label else None
    status = Attr("status").eq(filters.status) if filters.status else None
    if filters.needs_review:
        return [("by-review", Key("review").eq(REVIEW_NEEDED), _all(label, status))]
    if filters.label:
        return [("by-label", Key("label").eq(filters.label), status)]
    return [("by-status", Key("status").eq(each), None) for each in ([filters.status] if filters.status else Status)]


# How long after its created_at a record can reach the table: the persist step's retries take two minutes at most.
LATE_WRITES = timedelta(minutes=3)


def follow(table, since: str, interval: float, emit: Callable[[dict], None],
           keep_going: Callable[[], bool], now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Emit each record created after ``since`` once, oldest first, polling the status index every ``interval``.

    After the first poll, each reads only the last ``LATE_WRITES`` (records arrive at most that late), so a long watch
    costs the same per poll as a short one; at high rates DynamoDB Streams would be the way (not built)."""
    seen: set[tuple[str, str, str]] = set()  # a FAILED record later replaced by SUCCEEDED is a new record to show
    window_start = since
    while keep_going():
        fresh = [record for record in listing(table, Filters(since=window_start), limit=None)
                 if _identity(record) not in seen]
        for record in sorted(fresh, key=lambda r: r["created_at"]):
            seen.add(_identity(record))
            emit(record)
        window_start = max(since, iso_utc(now() - LATE_WRITES))
        seen = {identity for identity in seen if identity[2] >= window_start}
        if keep_going():
            time.sleep(interval)


def _identity(record: dict) -> tuple[str, str, str]:
    return record["image_key"], record["upload_version"], record["created_at"]


def _window(filters: Filters):
    if filters.since and filters.until:
        return Key("created_at").between(filters.since, filters.until)
    if filters.since:
        return Key("created_at").gte(filters.since)
    if filters.until:
        return Key("created_at").lte(filters.until)
    return None


def _all(*conditions):
    present = [condition for condition in conditions if condition is not None]
    if not present:
        return None
    combined = present[0]
    for condition in present[1:]:
        combined = combined & condition
    return combined


def _pages(table, query: dict, limit: int | None) -> Iterator[dict]:
    """Items of a Query across pages (LastEvaluatedKey), up to ``limit``."""
    count = 0
    while True:
        page = table.query(**query)
        for item in page["Items"]:
            yield item
            count += 1
            if limit and count >= limit:
                return
        if "LastEvaluatedKey" not in page:
            return
        query = query | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


# ---------------------------------------------------------------------------------------------------- output

def plain(value):
    """DynamoDB's Decimals as the ints and floats people expect."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [plain(inner) for inner in value]
    return value


def render(records: list[dict], fmt: str) -> str:
    """``table`` for people, ``json`` (one object a line) or ``csv`` for scripts."""
    if fmt == "json":
        return "\n".join(json.dumps(plain(record), sort_keys=True) for record in records)
    rows = [[_cell(record.get(column)) for column in COLUMNS] for record in records]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([list(COLUMNS), *rows])
        return out.getvalue().rstrip("\n")
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(COLUMNS[:-1])]
    lines = ["  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths)) + "  reason"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join(lines) if rows else "(no records)"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{float(value):.2f}"
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)
