"""Cost per million images, without the SageMaker endpoint: the counts one local run measured, times public prices.

Three designs, priced from the same measurements:
- LesionFlow with a STANDARD workflow (the default): state transitions, as counted in execution histories;
- LesionFlow with an EXPRESS workflow: one request per execution, and its duration at 64 MB, modelled as the Lambda
  time measured plus a fixed allowance per Task (the local interpreter's own slowness is not billed);
- the source systems' single Lambda (system B): one S3-triggered function, 1 GET, 1 InvokeEndpoint, 1 PUT; its
  duration is baseline B's preprocessing (measured in ``preprocess``) plus the endpoint call measured here.

Everything else is the same for both LesionFlow designs: Lambda requests and GB-seconds at each function's
``MemorySize`` from template.yaml, SQS requests (S3's notification, the poller's receives and batch deletes), S3 GETs
and PUTs, DynamoDB write units (table plus each index the item lands in), log bytes, X-Ray traces and KMS requests.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

PRICES = Path(__file__).with_name("prices.json")
MILLION = 1_000_000
EXPRESS_TASKS = 4  # Validate, Infer, RecordVerdict (DynamoDB), WritePredictionJson (S3)
STAGE_FUNCTIONS = ("ValidateFunction", "InferFunction")


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Line:
    """One billed item: how many units per image, at which unit price."""

    item: str
    price_key: str
    per_image: float
    note: str = ""

    def per_million(self, prices: dict) -> float:
        return self.per_image * prices["prices"][self.price_key]["usd"] * MILLION


def counts(run: dict, assumptions: dict) -> dict:
    """What one image costs in billable units, from one end-to-end run's raw measurements."""
    images = run["records"]
    pipeline = {(r["service"], r["operation"]): r["count"] for r in run["requests"] if r["caller"] == "pipeline"}
    invocations = {name: len(values) / images for name, values in run["handler_ms"].items()}
    gb_seconds = {name: sum(math.ceil(ms) for ms in values) / 1000 * run["memory_mb"][name] / 1024 / images
                  for name, values in run["handler_ms"].items()}
    sqs = {operation: count for (service, operation), count in pipeline.items() if service == "sqs"}
    s3 = {operation: count for (service, operation), count in pipeline.items() if service == "s3"}
    executions = run["executions"]
    transitions = (sum(executions["states_entered"]) + sum(executions["retries"])) / max(1, executions["sampled"])
    wru = sum(math.ceil(item["bytes"] / 1024) + sum(math.ceil(size / 1024) for size in item["index_bytes"].values())
              for item in run["items"]) / images
    platform_logs = sum(len(values) for values in run["handler_ms"].values()) * assumptions[
        "lambda_platform_log_bytes_per_invocation"]
    stage_ms = sum(sum(run["handler_ms"].get(name, [])) for name in STAGE_FUNCTIONS) / images
    return {
        "images": images,
        "transitions": transitions,
        "lambda_invocations": invocations,
        "lambda_gb_seconds": gb_seconds,
        "sqs_requests": {"SendMessage (S3 notification)": 1.0} | {op: n / images for op, n in sorted(sqs.items())},
        "s3_get": s3.get("GetObject", 0) / images,
        "s3_put": s3.get("PutObject", 0) / images,
        "s3_other": sum(n for op, n in s3.items() if op not in ("GetObject", "PutObject")) / images,
        "dynamodb_wru": wru,
        "item_bytes": sum(item["bytes"] for item in run["items"]) / images,
        "whole_record_writes": sum(item["whole_writes"] for item in run["items"]) / images,
        "log_bytes": (run["log_bytes"] + platform_logs) / images,
        "stage_lambda_ms": stage_ms,
        "express_ms": stage_ms + EXPRESS_TASKS * assumptions["express_integration_ms_per_task"],
        "local_execution_ms_p50": _median(executions["duration_ms"]),
        "endpoint_ms_p50": _median(run["endpoint_ms"]),
        "other_requests": {f"{service} {operation}": n / images for (service, operation), n in pipeline.items()
                           if service not in ("sqs", "s3", "lambda", "sagemaker", "dynamodb", "stepfunctions")},
    }


def _express_billed_s(c: dict) -> float:
    """Express bills duration in 100 ms steps."""
    return math.ceil(c["express_ms"] / 100) / 10


def express_gb_seconds(c: dict, assumptions: dict) -> float:
    return _express_billed_s(c) * assumptions["express_memory_mb"] / 1024


def lesionflow_lines(c: dict, assumptions: dict, workflow: str) -> list[Line]:
    """The billed items of one image through LesionFlow with the given workflow type."""
    lines = []
    if workflow == "STANDARD":
        lines.append(Line("Step Functions state transitions", "stepfunctions_standard_transition", c["transitions"],
                          f"{c['transitions']:.1f} states entered per execution"))
    else:
        lines += [Line("Step Functions Express requests", "stepfunctions_express_request", 1.0),
                  Line("Step Functions Express duration (GB-s)", "stepfunctions_express_gb_second",
                       express_gb_seconds(c, assumptions),
                       f"{c['express_ms']:.0f} ms modelled, billed {_express_billed_s(c):.1f} s at "
                       f"{assumptions['express_memory_mb']} MB")]
    invocations = sum(c["lambda_invocations"].values())
    lines += [
        Line("Lambda requests", "lambda_arm64_request", invocations,
             ", ".join(f"{_short(n)} {v:.2f}" for n, v in c["lambda_invocations"].items())),
        Line("Lambda duration (GB-s, arm64)", "lambda_arm64_gb_second", sum(c["lambda_gb_seconds"].values()),
             ", ".join(f"{_short(n)} {v * 1000:.2f} mGB-s" for n, v in c["lambda_gb_seconds"].items())),
        Line("SQS requests", "sqs_standard_request", sum(c["sqs_requests"].values()),
             ", ".join(f"{op} {v:.2f}" for op, v in c["sqs_requests"].items())),
        Line("S3 GET requests", "s3_get_request", c["s3_get"] + c["s3_other"], "the upload twice (Validate, Infer)"),
        Line("S3 PUT requests", "s3_put_request", c["s3_put"], "the prediction JSON"),
        Line("DynamoDB write units", "dynamodb_on_demand_wru", c["dynamodb_wru"],
             f"record {c['item_bytes']:.0f} B, written whole {c['whole_record_writes']:.2f} times (the table, "
             f"by-status), and its keys to each other index it has a key for"),
        Line("CloudWatch Logs ingestion (GB)", "cloudwatch_logs_ingest_gb", c["log_bytes"] / 2**30,
             f"{c['log_bytes'] / 1024:.1f} KiB per image, Lambda's own lines included"),
        Line("X-Ray traces", "xray_trace_recorded", assumptions["xray_sampled_share"], "default sampling, 5%"),
        Line("KMS requests (estimate)", "kms_request",
             (c["s3_get"] + c["s3_put"]) * assumptions["kms_requests_per_s3_request"], "S3 Bucket Key: 1% of S3"),
    ]
    return lines


def reference_lines(c: dict, assumptions: dict, baseline_b_ms: float) -> list[Line]:
    """System B's single Lambda: preprocessing as B did it plus the same endpoint call, 1 GET, 1 PUT."""
    duration_ms = math.ceil(baseline_b_ms + c["endpoint_ms_p50"])
    memory = assumptions["reference_lambda_memory_mb"]
    return [
        Line("Lambda requests", "lambda_arm64_request", 1.0, "one S3-triggered function"),
        Line("Lambda duration (GB-s, arm64)", "lambda_arm64_gb_second", duration_ms / 1000 * memory / 1024,
             f"{duration_ms} ms (B's preprocessing {baseline_b_ms:.1f} + endpoint call {c['endpoint_ms_p50']:.1f}) "
             f"at {memory} MB"),
        Line("S3 GET requests", "s3_get_request", 1.0, "the upload"),
        Line("S3 PUT requests", "s3_put_request", 1.0, "the prediction JSON"),
        Line("CloudWatch Logs ingestion (GB)", "cloudwatch_logs_ingest_gb",
             assumptions["lambda_platform_log_bytes_per_invocation"] / 2**30, "Lambda's own lines only"),
    ]


def cheap_wins(c: dict, prices: dict) -> list[dict]:
    """Product changes the counts still point at, each priced per million images with the same prices (not
    implemented; the report says which were taken)."""
    p = {key: value["usd"] * MILLION for key, value in prices["prices"].items()}
    item_kb = max(1, math.ceil(c["item_bytes"] / 1024))
    dynamodb_saving = c["whole_record_writes"] * (item_kb - 1) * p["dynamodb_on_demand_wru"]
    wins = [
        {"change": "Validation inside the Infer function too (one read of the upload instead of two; but a rejected "
                   "image would then occupy the 1024 MB function, and every endpoint retry would validate again)",
         "standard": p["s3_get_request"] + p["lambda_arm64_request"] + 2 * p["stepfunctions_standard_transition"],
         "express": p["s3_get_request"] + p["lambda_arm64_request"],
         "saves": "1 GET, 1 invocation, 2 transitions (Task + Choice)"},
        {"change": f"A record under 1 KB (it is {c['item_bytes']:.0f} B = {item_kb} write units, in the table and "
                   f"again in the by-status index; the contract's provenance fields, such as the execution ARN and "
                   f"three 64-character hashes, are most of it)",
         "standard": dynamodb_saving, "express": dynamodb_saving,
         "saves": "1 write unit per whole-record write"},
        {"change": "WorkflowType=EXPRESS for the per-image pipeline (keep exactly-once by the idempotent "
                   "conditional write, as the README says)",
         "standard": c["transitions"] * p["stepfunctions_standard_transition"] - p["stepfunctions_express_request"]
         - express_gb_seconds(c, prices["assumptions"]) * p["stepfunctions_express_gb_second"],
         "express": 0.0, "saves": "transitions become one request plus ~0.1-0.3 s at 64 MB"},
        {"change": "Quieter logs: INFO lines per upload (dispatched, concluded) and one EMF document per metric "
                   "flush; LogLevel WARNING in production keeps the metrics",
         "standard": c["log_bytes"] / 2 / 2**30 * p["cloudwatch_logs_ingest_gb"],
         "express": c["log_bytes"] / 2 / 2**30 * p["cloudwatch_logs_ingest_gb"],
         "saves": "about half the log bytes (estimate)"},
        {"change": "Optional: the prediction JSON in S3 repeats the DynamoDB record; written only on request (or "
                   "batched), it would be the largest line after the workflow's own (a product decision: the README "
                   "promises it)",
         "standard": p["s3_put_request"] + p["stepfunctions_standard_transition"], "express": p["s3_put_request"],
         "saves": "1 S3 PUT and 1 transition per image", "optional": True},
    ]
    return wins


def run(e2e_run: dict, baseline_b_ms: float, prices: dict | None = None) -> dict:
    prices = prices or load_prices()
    assumptions = prices["assumptions"]
    c = counts(e2e_run, assumptions)
    designs = {
        "LesionFlow STANDARD": lesionflow_lines(c, assumptions, "STANDARD"),
        "LesionFlow EXPRESS": lesionflow_lines(c, assumptions, "EXPRESS"),
        "single Lambda (system B)": reference_lines(c, assumptions, baseline_b_ms),
    }
    totals = {name: sum(line.per_million(prices) for line in lines) for name, lines in designs.items()}
    wins = cheap_wins(c, prices)
    express_with_wins = totals["LesionFlow EXPRESS"] - sum(w["express"] for w in wins if not w.get("optional"))
    return {
        "counts": c, "read_on": prices["read_on"], "region": prices["region"],
        "designs": {name: [{"item": line.item, "per_image": line.per_image, "usd_per_million":
                            line.per_million(prices), "note": line.note,
                            "unit_usd": prices["prices"][line.price_key]["usd"]} for line in lines]
                    for name, lines in designs.items()},
        "totals": totals,
        "express_vs_reference": totals["LesionFlow EXPRESS"] / totals["single Lambda (system B)"],
        "standard_vs_reference": totals["LesionFlow STANDARD"] / totals["single Lambda (system B)"],
        "cheap_wins": wins,
        "express_with_wins": express_with_wins,
        "express_with_wins_vs_reference": express_with_wins / totals["single Lambda (system B)"],
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _short(function: str) -> str:
    return function.removesuffix("Function").lower()
