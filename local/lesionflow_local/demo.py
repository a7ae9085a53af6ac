"""``make demo``: the sample images through a fresh local stack, results read back from the prediction log."""

import json
import statistics
import sys
import textwrap
import time
from contextlib import redirect_stdout
from datetime import datetime
from pathlib import Path

import boto3
from boto3.dynamodb.conditions import Key

from lesionflow_local.server import LocalStackServer
from lesionflow_local.template import ROOT

SAMPLES = ROOT / "samples"
LOG = ROOT / ".lesionflow" / "demo.log"
DEMO_PREFIX = "demo/"


def run_demo(model: Path | None, timeout: float) -> int:
    out = sys.stdout
    LOG.parent.mkdir(exist_ok=True)
    with LOG.open("w") as log, redirect_stdout(log), LocalStackServer(model_path=model) as server:
        details = server.details()
        keys = upload_samples(server.endpoint_url, details)
        print(f"Uploaded {len(keys)} sample images to s3://{details['bucket']}/{details['upload_prefix']}{DEMO_PREFIX}"
              f" on a local stack at {server.endpoint_url}; waiting for their records...", file=out, flush=True)
        records = wait_for_records(server.endpoint_url, details["table"], keys, timeout)
    print(report(records, keys, details), file=out)
    finished = len(records) == len(keys) and all(r["status"] != "FAILED" for r in records.values())
    return 0 if finished else 1


def upload_samples(endpoint_url: str, details: dict) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=details["region"])
    keys = []
    for path in sorted(SAMPLES.iterdir()):
        key = f"{details['upload_prefix']}{DEMO_PREFIX}{path.name}"
        s3.put_object(Bucket=details["bucket"], Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


def wait_for_records(endpoint_url: str, table_name: str, keys: list[str], timeout: float) -> dict[str, dict]:
    """The latest record of each key, once every key has one (or when time runs out)."""
    table = boto3.resource("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1").Table(table_name)
    records: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(records) < len(keys) and time.monotonic() < deadline:
        for key in set(keys) - set(records):
            found = table.query(KeyConditionExpression=Key("image_key").eq(key), ScanIndexForward=False, Limit=1)
            if found["Items"]:
                records[key] = found["Items"][0]
        time.sleep(0.2)
    return records


def report(records: dict[str, dict], keys: list[str], details: dict) -> str:
    rows = [("key", "status", "label", "confidence", "latency", "reason")]
    for key in keys:
        record = records.get(key)
        if record is None:
            rows.append((key, "(no record)", "", "", "", "timed out waiting"))
            continue
        confidence = f"{float(record['confidence']):.2f}" if "confidence" in record else ""
        rows.append((key, record["status"], record.get("label", ""), confidence, _latency(record),
                     record.get("reason", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths)) + "  " + row[5] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * 6)
    succeeded = [records[key] for key in keys if records.get(key, {}).get("status") == "SUCCEEDED"]
    names = sorted({f"{r.get('model_name') or r['endpoint_name']}" for r in succeeded})
    disclaimers = sorted({r["model_disclaimer"] for r in succeeded if r.get("model_disclaimer")})
    lines += ["", f"Read back from the DynamoDB prediction log (table {details['table']});",
              f"the prediction JSON of each upload is at its prediction_uri, under "
              f"s3://{details['bucket']}/{details['prediction_prefix']}, e.g.",
              f"  {succeeded[0]['prediction_uri']}" if succeeded else "  (no prediction succeeded)",
              "", f"Model: {', '.join(names) or 'none'} on local endpoint {details['endpoint_name']}."]
    lines += [f"NOTE: {text}." for text in disclaimers]
    lines += sorted({record["note"] for record in succeeded if record.get("note")})
    lines += ["", "Metrics of this run (EMF, as CloudWatch would receive them):"]
    lines += textwrap.wrap(metrics_summary(LOG), width=116, initial_indent="  ", subsequent_indent="  ")
    lines += [f"Handler logs and metrics: {LOG.relative_to(ROOT)}"]
    return "\n".join(lines)


def metrics_summary(log: Path) -> str:
    """Sum every EMF metric the handlers printed, by name and dimension value (latencies as a median)."""
    totals: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = [name for group in directive["Dimensions"] for name in group
                          if name not in ("service", "function_name")]
            for metric in directive["Metrics"]:
                label = metric["Name"] + "".join(f"[{document[name]}]" for name in dimensions)
                values = document[metric["Name"]]
                totals.setdefault(label, []).extend(values if isinstance(values, list) else [values])
    parts = [f"{label} {statistics.median(values):.0f} ms" if label.endswith("Latency")
             else f"{label} {sum(values):g}" for label, values in sorted(totals.items())]
    return " | ".join(parts) or "(none)"


def _latency(record: dict) -> str:
    """From S3's event time to the record's creation: the whole pipeline, queue included."""
    seconds = (_parse(record["created_at"]) - _parse(record["uploaded_at"])).total_seconds()
    return f"{seconds:.1f}s"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
