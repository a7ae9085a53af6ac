"""Cost per million images, without the SageMaker endpoint: the counts one local run measured, times public prices.

Three designs, priced from the same measurements:
- LesionFlow with a STANDARD workflow (the default): state transitions, as counted in execution histories;
- LesionFlow with an EXPRESS workflow: one request per execution, and its duration at 64 MB, modelled as the Lambda
  time measured plus a fixed allowance per Task entered (the local interpreter's own slowness is not billed);
- the source systems' single Lambda (system B): one S3-triggered function, 1 GET, 1 InvokeEndpoint, 1 PUT; its
  duration is baseline B's preprocessing (measured in ``preprocess``) plus the endpoint call measured here.

Lambda time (GB-seconds, Express's modelled duration, the endpoint call) comes in two versions from the same run:
- alone (the headline): each function's median duration per invocation in the run's timing run, where images went
  through one at a time, so that no handler shared the process's interpreter with another image's work, as on
  Lambda, where every invocation has its own CPU, and as the reference's preprocessing is timed; times its
  invocations per image in the counted run. The dispatcher is the exception: its invocations carry up to 10
  messages in the counted run and 1 in the timing run, so it is priced, conservatively, at its timing-run time per
  invocation for every message (1 per image), as if it never batched. The reference's endpoint call is the timing
  run's median too.
- contended: the counted run's own durations, taken with up to ``end_to_end.WINDOW`` executions in flight in one
  process: every handler then waits for the interpreter lock behind moto's threads, so they are an upper bound.
Every count (requests, invocations, transitions, write units, log bytes, S3 requests) is the counted run's in both.

Everything else is the same for both LesionFlow designs: Lambda requests and GB-seconds at each function's
``MemorySize`` from template.yaml, SQS requests (S3's notification, the poller's receives and batch deletes), S3 GETs,
PUTs and DELETEs (by key prefix, so the model input's hand-over is seen apart), DynamoDB write units (table plus each
index the item lands in), log bytes, X-Ray traces and KMS requests.

Two more cuts of the same counts:
- the hand-over's two paths: inline (the default contract's run: no S3 request) and S3 (a run of a contract whose
  input is too large for the state: one PUT, one GET and one free DELETE more per image);
- what splitting the old Infer function into Preprocess and InvokeModel costs (one more invocation, one more Task
  and Choice) and saves (the endpoint wait at InvokeModel's memory instead of the decoder's; no decode again when
  the endpoint call is retried), at the local endpoint's measured latency and at an assumed real ViT-base's.
"""

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from lesionflow_local.template import ROOT, load

PRICES = Path(__file__).with_name("prices.json")
ASL = ROOT / "statemachine" / "pipeline.asl.json"
MILLION = 1_000_000
# Roles, by logical id (sizes and everything else come from template.yaml and the run):
DECODER = "PreprocessFunction"  # decodes the image: sized for it; the function the old Infer was (decode + wait)
WAITER = "InvokeModelFunction"  # waits on the endpoint
DISPATCHER = "DispatchFunction"  # reads the queue: up to 10 messages an invocation in the counted run, 1 when alone
# The states the split added: the old Infer Task became Preprocess, its verdict Choice and InvokeModel.
SPLIT_STATES = ("Preprocess", "PreprocessVerdict")
MEMORY_CHOICES = (128, 256, 512, 1024)  # InvokeModelMemorySize values priced side by side


def load_prices(path: Path = PRICES) -> dict:
    return json.loads(path.read_text())


def workflow_functions(template: dict | None = None) -> list[str]:
    """The functions the state machine invokes (its ``DefinitionSubstitutions``' ``GetAtt <function>.Arn``): their
    time is inside an execution, which Express bills; the dispatcher's is not."""
    template = template or load()
    substitutions = template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    return [value["Fn::GetAtt"][0] for value in substitutions.values()
            if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn"]


def template_facts(template: dict | None = None) -> dict:
    """What the cost model takes from template.yaml besides memory sizes (which the local stack resolves)."""
    template = template or load()
    machine = template["Resources"]["PipelineStateMachine"]["Properties"]
    parameters = template["Parameters"]
    return {
        "handover_prefix": template["Mappings"]["Layout"]["Prefix"]["Handover"],
        "upload_prefix": template["Mappings"]["Layout"]["Prefix"]["Uploads"],
        "kms_data_key_reuse_seconds": int(machine["EncryptionConfiguration"]["KmsDataKeyReusePeriodSeconds"]),
        "invoke_timeout_seconds": int(parameters["InvokeTimeoutSeconds"]["Default"]),
        "waiter_memory_default": int(parameters["InvokeModelMemorySize"]["Default"]),
    }


def split_state_types() -> dict[str, str]:
    """The ASL type of each state the split added (Task, Choice)."""
    states = json.loads(ASL.read_text())["States"]
    return {name: states[name]["Type"] for name in SPLIT_STATES}


@dataclass(frozen=True)
class Line:
    """One billed item: how many units per image, at which unit price."""

    item: str
    price_key: str
    per_image: float
    note: str = ""

    def per_million(self, prices: dict) -> float:
        return self.per_image * prices["prices"][self.price_key]["usd"] * MILLION


def lambda_time(run: dict, alone: bool = True) -> dict[str, dict]:
    """Each function's Lambda time per image: ``ms`` (time) and ``billed_ms`` (each invocation rounded up to the
    ms), with ``per_invocation_ms`` and the ``invocations`` per image it is multiplied by, and its ``source``.

    Alone (when the run has a timing run): the timing run's median per invocation times the counted run's
    invocations per image, except the dispatcher's: its time per invocation for every message, 1 per image. A
    function the timing run did not hear (say RecordFailure, if only the counted run failed an image) keeps its
    counted-run time. Contended, or without a timing run: the counted run's durations, summed."""
    images = run["records"]
    timing = (run.get("timing") or {}).get("handler_ms", {}) if alone else {}
    found = {}
    for name, values in run["handler_ms"].items():
        if timing.get(name):
            per_invocation = statistics.median(timing[name])
            calls = 1.0 if name == DISPATCHER else len(values) / images
            found[name] = {"per_invocation_ms": per_invocation, "invocations": calls, "ms": per_invocation * calls,
                           "billed_ms": math.ceil(per_invocation) * calls,
                           "source": "alone, per message" if name == DISPATCHER else "alone"}
        else:
            found[name] = {"per_invocation_ms": sum(values) / len(values), "invocations": len(values) / images,
                           "ms": sum(values) / images, "billed_ms": sum(math.ceil(ms) for ms in values) / images,
                           "source": "contended"}
    return found


def counts(run: dict, assumptions: dict, alone: bool = True) -> dict:
    """What one image costs in billable units, from one end-to-end run's raw measurements: its Lambda time alone
    (the timing run's, see ``lambda_time``) or as the counted run measured it under contention."""
    images = run["records"]
    facts = template_facts()
    handover = facts["handover_prefix"]
    pipeline = [r for r in run["requests"] if r["caller"] == "pipeline"]
    invocations = {name: len(values) / images for name, values in run["handler_ms"].items()}
    timed = lambda_time(run, alone)
    gb_seconds = {name: value["billed_ms"] / 1000 * run["memory_mb"][name] / 1024 for name, value in timed.items()}
    endpoint_calls = len(run["endpoint_ms"]) / images
    timing = run.get("timing") if alone else None
    endpoint_alone = bool(timing and timing["endpoint_ms"])
    endpoint_p50 = statistics.median(timing["endpoint_ms"]) if endpoint_alone else _median(run["endpoint_ms"])
    sqs = {}
    for r in pipeline:
        if r["service"] == "sqs":
            sqs[r["operation"]] = sqs.get(r["operation"], 0) + r["count"]
    s3 = [r for r in pipeline if r["service"] == "s3"]

    def s3_count(operations, prefix=None, exclude=False) -> float:
        return sum(r["count"] for r in s3 if (r["operation"] in operations) != exclude
                   and (prefix is None or r.get("prefix") == prefix)) / images

    executions = run["executions"]
    sampled = max(1, executions["sampled"])
    transitions = (sum(executions["states_entered"]) + sum(executions["retries"])) / sampled
    tasks = executions["state_kinds"].get("TaskStateEntered", 0.0) + sum(executions["retries"]) / sampled
    wru = sum(math.ceil(item["bytes"] / 1024) + sum(math.ceil(size / 1024) for size in item["index_bytes"].values())
              for item in run["items"]) / images
    platform_logs = sum(len(values) for values in run["handler_ms"].values()) * assumptions[
        "lambda_platform_log_bytes_per_invocation"]
    workflow = workflow_functions()
    workflow_ms = sum(timed[name]["ms"] for name in workflow if name in timed)
    endpoint_ms = endpoint_calls * endpoint_p50 if endpoint_alone else sum(run["endpoint_ms"]) / images
    sources = {value["source"] for value in timed.values()}
    return {
        "images": images,
        "contract": run.get("contract"),
        "durations": "alone" if sources & {"alone", "alone, per message"} else "contended",
        "timing_uploads": timing["uploads"] if timing else 0,
        "lambda_time": timed,
        "transitions": transitions,
        "tasks": tasks,
        "state_names": executions.get("state_names", {}),
        "lambda_invocations": invocations,
        "lambda_gb_seconds": gb_seconds,
        "lambda_ms": {name: value["ms"] for name, value in timed.items()},
        "memory_mb": run["memory_mb"],
        "sqs_requests": {"SendMessage (S3 notification)": 1.0} | {op: n / images for op, n in sorted(sqs.items())},
        "s3_get": s3_count(("PutObject", "DeleteObject"), exclude=True),  # GET, HEAD and the rest: the GET tier
        "s3_put": s3_count(("PutObject",)),
        "s3_delete": s3_count(("DeleteObject",)),
        "upload_prefix": facts["upload_prefix"],
        "upload_heads": s3_count(("HeadObject",), facts["upload_prefix"]),  # the dispatcher's, one per notification
        "handover": {"get": s3_count(("PutObject", "DeleteObject"), handover, exclude=True),
                     "put": s3_count(("PutObject",), handover), "delete": s3_count(("DeleteObject",), handover)},
        "dynamodb_wru": wru,
        "item_bytes": sum(item["bytes"] for item in run["items"]) / images,
        "whole_record_writes": sum(item["whole_writes"] for item in run["items"]) / images,
        "log_bytes": (run["log_bytes"] + platform_logs) / images,
        "workflow_lambda_ms": workflow_ms,
        "express_ms": workflow_ms + tasks * assumptions["express_integration_ms_per_task"],
        "local_execution_ms_p50": _median(executions["duration_ms"]),
        "endpoint_ms_p50": endpoint_p50,
        "endpoint_ms_per_image": endpoint_ms,
        "endpoint_latency": "measured alone" if endpoint_alone else "measured under contention",
        "other_requests": {f"{r['service']} {r['operation']}": r["count"] / images for r in pipeline
                           if r["service"] not in ("sqs", "s3", "lambda", "sagemaker", "dynamodb", "stepfunctions")},
    }


def at_latency(c: dict, endpoint_ms: float, label: str) -> dict:
    """The same counts with every endpoint call taking ``endpoint_ms``: InvokeModel's time outside the call (reading
    the hand-over, building the record) stays as measured, its wait changes, and so do Express's duration and the
    reference's."""
    calls = c["lambda_invocations"].get(WAITER, 0.0)
    wait_change = calls * endpoint_ms - c["endpoint_ms_per_image"]  # ms per image
    memory = c["memory_mb"][WAITER]
    return c | {
        "lambda_gb_seconds": c["lambda_gb_seconds"] | {
            WAITER: c["lambda_gb_seconds"][WAITER] + wait_change / 1000 * memory / 1024},
        "lambda_ms": c["lambda_ms"] | {WAITER: c["lambda_ms"][WAITER] + wait_change},
        "workflow_lambda_ms": c["workflow_lambda_ms"] + wait_change,
        "express_ms": c["express_ms"] + wait_change,
        "endpoint_ms_p50": endpoint_ms,
        "endpoint_ms_per_image": calls * endpoint_ms,
        "endpoint_latency": label,
    }


def express_billed_s(express_ms: float) -> float:
    """Express bills duration in 100 ms steps."""
    return math.ceil(express_ms / 100) / 10


def express_gb_seconds(c: dict, assumptions: dict) -> float:
    return express_billed_s(c["express_ms"]) * assumptions["express_memory_mb"] / 1024


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
                       f"{c['express_ms']:.0f} ms modelled ({c['workflow_lambda_ms']:.0f} ms of Lambda + "
                       f"{c['tasks']:.0f} Tasks x {assumptions['express_integration_ms_per_task']} ms), billed "
                       f"{express_billed_s(c['express_ms']):.1f} s at {assumptions['express_memory_mb']} MB")]
    invocations = sum(c["lambda_invocations"].values())
    handover = c["handover"]
    via_s3 = handover["put"] > 0
    lines += [
        Line("Lambda requests", "lambda_arm64_request", invocations,
             ", ".join(f"{_short(n)} {v:.2f}" for n, v in c["lambda_invocations"].items())),
        Line("Lambda duration (GB-s, arm64)", "lambda_arm64_gb_second", sum(c["lambda_gb_seconds"].values()),
             _duration_note(c)),
        Line("SQS requests", "sqs_standard_request", sum(c["sqs_requests"].values()),
             ", ".join(f"{op} {v:.2f}" for op, v in c["sqs_requests"].items())),
        Line("S3 GET requests", "s3_get_request", c["s3_get"],
             f"the upload {c['s3_get'] - handover['get']:.2f} times (Validate, Preprocess)"
             + (f", the handed-over model input {handover['get']:.2f} (InvokeModel)" if via_s3 else "")),
        Line("S3 PUT requests", "s3_put_request", c["s3_put"],
             f"the prediction JSON {c['s3_put'] - handover['put']:.2f}"
             + (f", the model input {handover['put']:.2f} (Preprocess)" if via_s3 else "")),
        Line("S3 DELETE requests (free)", "s3_delete_request", c["s3_delete"],
             f"the model input's version once used {c['s3_delete']:.2f} (InvokeModel)" if via_s3 else
             "none: the model input travelled inline"),
        Line("DynamoDB write units", "dynamodb_on_demand_wru", c["dynamodb_wru"],
             f"record {c['item_bytes']:.0f} B, written whole {c['whole_record_writes']:.2f} times (the table, "
             f"by-status), and its keys to each other index it has a key for"),
        Line("CloudWatch Logs ingestion (GB)", "cloudwatch_logs_ingest_gb", c["log_bytes"] / 2**30,
             f"{c['log_bytes'] / 1024:.1f} KiB per image, Lambda's own lines included"),
        Line("X-Ray traces", "xray_trace_recorded", assumptions["xray_sampled_share"], "default sampling, 5%"),
        Line("KMS requests (estimate)", "kms_request",
             (c["s3_get"] + c["s3_put"]) * assumptions["kms_requests_per_s3_request"],
             "S3 Bucket Key: 1% of S3; the state machine's data key: per reuse period, not per image (see below)"),
    ]
    return lines


def _duration_note(c: dict) -> str:
    """Where each function's GB-seconds come from (see ``lambda_time``)."""
    parts = []
    for name, value in c["lambda_gb_seconds"].items():
        timed, memory = c["lambda_time"][name], c["memory_mb"][name]
        if timed["source"] == "contended":
            how = f"{timed['ms']:.1f} ms per image" + (" under contention" if c["durations"] == "alone" else "")
        else:
            per = "message (its time per 1-message invocation, as if unbatched)" if name == DISPATCHER else \
                "invocation"
            how = f"{timed['per_invocation_ms']:.1f} ms per {per} x {timed['invocations']:.2f}"
        parts.append(f"{_short(name)} {how} = {value * 1000:.2f} mGB-s ({memory} MB)")
    source = (f"timing run ({c['timing_uploads']} uploads one at a time): median per invocation x invocations per "
              "image; " if c["durations"] == "alone" else "the counted run's durations, under contention; ")
    return source + ", ".join(parts)


def reference_lines(c: dict, assumptions: dict, baseline_b_ms: float) -> list[Line]:
    """System B's single Lambda: preprocessing as B did it plus the same endpoint call, 1 GET, 1 PUT."""
    duration_ms = math.ceil(baseline_b_ms + c["endpoint_ms_p50"])
    memory = assumptions["reference_lambda_memory_mb"]
    return [
        Line("Lambda requests", "lambda_arm64_request", 1.0, "one S3-triggered function"),
        Line("Lambda duration (GB-s, arm64)", "lambda_arm64_gb_second", duration_ms / 1000 * memory / 1024,
             f"{duration_ms} ms (B's preprocessing {baseline_b_ms:.1f} + endpoint call {c['endpoint_ms_p50']:.1f}, "
             f"{c['endpoint_latency']}) at {memory} MB"),
        Line("S3 GET requests", "s3_get_request", 1.0, "the upload"),
        Line("S3 PUT requests", "s3_put_request", 1.0, "the prediction JSON"),
        Line("CloudWatch Logs ingestion (GB)", "cloudwatch_logs_ingest_gb",
             assumptions["lambda_platform_log_bytes_per_invocation"] / 2**30, "Lambda's own lines only"),
    ]


def designs(c: dict, assumptions: dict, baseline_b_ms: float) -> dict[str, list[Line]]:
    return {
        "LesionFlow STANDARD": lesionflow_lines(c, assumptions, "STANDARD"),
        "LesionFlow EXPRESS": lesionflow_lines(c, assumptions, "EXPRESS"),
        "single Lambda (system B)": reference_lines(c, assumptions, baseline_b_ms),
    }


def totals_of(lines: dict[str, list[Line]], prices: dict) -> dict[str, float]:
    return {name: sum(line.per_million(prices) for line in design) for name, design in lines.items()}


def split(c: dict, prices: dict) -> list[dict]:
    """What the Preprocess / InvokeModel split costs and saves per million images against the same work in one
    function at the decoder's memory (the old Infer), from the same counts: + one invocation, + the added states
    (Standard) or their Task allowance (Express), + the hand-over's S3 requests when it goes through S3, - the
    InvokeModel time (mostly the endpoint wait) at its memory instead of the decoder's."""
    p = {key: value["usd"] * MILLION for key, value in prices["prices"].items()}
    assumptions = prices["assumptions"]
    names, types = c["state_names"], split_state_types()
    added_states = sum(names.get(state, 0.0) for state in SPLIT_STATES)
    added_tasks = sum(names.get(state, 0.0) for state in SPLIT_STATES if types[state] == "Task")
    merged_express = c | {"express_ms": c["express_ms"] - added_tasks * assumptions["express_integration_ms_per_task"]}
    express_step = (express_gb_seconds(c, assumptions) - express_gb_seconds(merged_express, assumptions)) \
        * p["stepfunctions_express_gb_second"]
    handover = c["handover"]
    s3_requests = handover["put"] * p["s3_put_request"] + handover["get"] * p["s3_get_request"] \
        + handover["delete"] * p["s3_delete_request"]
    decoder, waiter = c["memory_mb"][DECODER], c["memory_mb"][WAITER]
    waiter_s = c["lambda_ms"][WAITER] / 1000
    memory_saving = waiter_s * (decoder - waiter) / 1024 * p["lambda_arm64_gb_second"]
    calls = c["lambda_invocations"].get(WAITER, 0.0)
    rows = [
        {"item": "one more Lambda invocation (InvokeModel)", "standard": calls * p["lambda_arm64_request"],
         "express": calls * p["lambda_arm64_request"]},
        {"item": f"{added_states:.0f} more states entered ({', '.join(f'{s} {types[s]}' for s in SPLIT_STATES)}); "
                 f"Express: {added_tasks:.0f} more Task allowance of "
                 f"{assumptions['express_integration_ms_per_task']} ms, billed per 100 ms step",
         "standard": added_states * p["stepfunctions_standard_transition"], "express": express_step},
        {"item": "the hand-over through S3: " + (f"{handover['put']:.0f} PUT, {handover['get']:.0f} GET, "
                                                 f"{handover['delete']:.0f} DELETE (free)"
                                                 if handover["put"] else "none (inline)"),
         "standard": s3_requests, "express": s3_requests},
        {"item": f"InvokeModel's time at {waiter} MB instead of {decoder} MB",
         "detail": f"{waiter_s * 1000:.0f} ms per image, {c['endpoint_ms_per_image']:.0f} of them the endpoint's",
         "standard": -memory_saving, "express": -memory_saving},
    ]
    rows.append({"item": "**net** (positive: the split costs more)", "standard": sum(r["standard"] for r in rows),
                 "express": sum(r["express"] for r in rows)})
    return rows


def retry_savings(c: dict, prices: dict, timeout_s: int) -> list[dict]:
    """Per million retried endpoint calls: what the failed attempt and its retry cost in one function at the decoder's
    memory (read the upload again, decode again, wait at that memory) against InvokeModel alone (wait at its memory;
    read the hand-over again when it is in S3). The retry's transition and invocation are the same either way."""
    p = {key: value["usd"] * MILLION for key, value in prices["prices"].items()}
    decoder, waiter = c["memory_mb"][DECODER], c["memory_mb"][WAITER]
    per_call = c["lambda_invocations"].get(WAITER, 1.0) or 1.0
    own_ms = (c["lambda_ms"][WAITER] - c["endpoint_ms_per_image"]) / per_call  # InvokeModel outside the call
    decode_ms = c["lambda_ms"][DECODER] / (c["lambda_invocations"].get(DECODER, 1.0) or 1.0)
    rows = []
    for label, wait_ms in (("an error answer, after the endpoint's latency", c["endpoint_ms_p50"]),
                           (f"a timeout (InvokeTimeoutSeconds {timeout_s} s)", timeout_s * 1000)):
        merged = p["s3_get_request"] \
            + (decode_ms + own_ms + wait_ms) / 1000 * decoder / 1024 * p["lambda_arm64_gb_second"]
        alone = (own_ms + wait_ms) / 1000 * waiter / 1024 * p["lambda_arm64_gb_second"] \
            + (p["s3_get_request"] if c["handover"]["get"] else 0.0)
        rows.append({"attempt": label, "wait_ms": wait_ms, "merged": merged, "split": alone, "saved": merged - alone})
    return rows


def memory_choices(c: dict, prices: dict, default_mb: int) -> list[dict]:
    """InvokeModel's GB-seconds per million images at each of ``MEMORY_CHOICES`` MB, its measured time unchanged
    (it waits; it hardly computes)."""
    p = prices["prices"]["lambda_arm64_gb_second"]["usd"] * MILLION
    seconds = c["lambda_ms"][WAITER] / 1000
    return [{"memory_mb": mb, "default": mb == default_mb, "usd_per_million": seconds * mb / 1024 * p}
            for mb in MEMORY_CHOICES]


def kms_state_machine_month(prices: dict, reuse_seconds: int) -> dict:
    """The state machine's KMS calls: a data key per reuse period (not per execution), for a month of steady use."""
    calls = 30 * 24 * 3600 / reuse_seconds
    return {"reuse_seconds": reuse_seconds, "calls_per_month": calls,
            "usd_per_month": calls * prices["prices"]["kms_request"]["usd"]}


def dispatch_head(c: dict, prices: dict) -> dict:
    """The dispatcher's HEAD of each notified upload (its identity from S3, never from the message), per million
    images: the HeadObject requests the run counted on upload keys, at S3's GET-tier price (HEAD is billed as a GET),
    beside the dispatcher's measured time per image, which includes them."""
    heads = c["upload_heads"]
    return {"heads_per_image": heads, "prefix": c["upload_prefix"],
            "usd_per_million": heads * prices["prices"]["s3_get_request"]["usd"] * MILLION,
            "dispatch_ms_per_image": c["lambda_ms"].get(DISPATCHER, 0.0)}


def cheap_wins(c: dict, prices: dict) -> list[dict]:
    """Product changes the counts still point at, each priced per million images with the same prices (not
    implemented; the report says which were taken)."""
    p = {key: value["usd"] * MILLION for key, value in prices["prices"].items()}
    item_kb = max(1, math.ceil(c["item_bytes"] / 1024))
    dynamodb_saving = c["whole_record_writes"] * (item_kb - 1) * p["dynamodb_on_demand_wru"]
    wins = [
        {"change": "Validation inside Preprocess (one read of the upload instead of two; but a rejected image would "
                   f"then occupy the {c['memory_mb'][DECODER]} MB function, and the console would lose the Validate "
                   "stage)",
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
         "express": 0.0, "saves": f"transitions become one request plus {express_billed_s(c['express_ms']):.1f} s "
                                   f"at {prices['assumptions']['express_memory_mb']} MB"},
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


def _as_data(lines: dict[str, list[Line]], prices: dict) -> dict:
    return {name: [{"item": line.item, "per_image": line.per_image, "usd_per_million": line.per_million(prices),
                    "note": line.note, "unit_usd": prices["prices"][line.price_key]["usd"]} for line in design]
            for name, design in lines.items()}


def run(e2e_run: dict, baseline_b_ms: float, prices: dict | None = None, s3_run: dict | None = None) -> dict:
    """Price the default contract's run (inline hand-over) and, if given, a run whose hand-over went through S3:
    with Lambda time alone (the headline; every cut below uses it) and, beside it, as the counted run's contention
    made it (``contended``: the totals and ratios only)."""
    prices = prices or load_prices()
    assumptions = prices["assumptions"]
    facts = template_facts()
    c = counts(e2e_run, assumptions)
    lines = designs(c, assumptions, baseline_b_ms)
    totals = totals_of(lines, prices)
    reference = "single Lambda (system B)"
    contended = counts(e2e_run, assumptions, alone=False)
    contended_lines = designs(contended, assumptions, baseline_b_ms)
    contended_totals = totals_of(contended_lines, prices)
    assumed = at_latency(c, assumptions["endpoint_ms_assumed"], "assumed ViT-base")
    latencies = {}
    for label, counted in (("measured", c), ("assumed", assumed)):
        scenario = totals_of(designs(counted, assumptions, baseline_b_ms), prices)
        latencies[label] = {"endpoint_ms": counted["endpoint_ms_p50"], "totals": scenario,
                            "express_vs_reference": scenario["LesionFlow EXPRESS"] / scenario[reference],
                            "standard_vs_reference": scenario["LesionFlow STANDARD"] / scenario[reference],
                            "split": split(counted, prices),
                            "retries": retry_savings(counted, prices, facts["invoke_timeout_seconds"]),
                            "memory": memory_choices(counted, prices, facts["waiter_memory_default"])}
    wins = cheap_wins(c, prices)
    express_with_wins = totals["LesionFlow EXPRESS"] - sum(w["express"] for w in wins if not w.get("optional"))
    result = {
        "counts": c, "read_on": prices["read_on"], "region": prices["region"], "template": facts,
        "designs": _as_data(lines, prices),
        "totals": totals,
        "express_vs_reference": totals["LesionFlow EXPRESS"] / totals[reference],
        "standard_vs_reference": totals["LesionFlow STANDARD"] / totals[reference],
        "durations": c["durations"],
        "contended": {"counts": contended, "designs": _as_data(contended_lines, prices), "totals": contended_totals,
                      "express_vs_reference": contended_totals["LesionFlow EXPRESS"] / contended_totals[reference],
                      "standard_vs_reference": contended_totals["LesionFlow STANDARD"] / contended_totals[reference]},
        "latencies": latencies,
        "kms_state_machine": kms_state_machine_month(prices, facts["kms_data_key_reuse_seconds"]),
        "dispatch_head": dispatch_head(c, prices),
        "cheap_wins": wins,
        "express_with_wins": express_with_wins,
        "express_with_wins_vs_reference": express_with_wins / totals[reference],
    }
    if s3_run:
        s3 = counts(s3_run, assumptions)
        s3_lines = designs(s3, assumptions, baseline_b_ms)
        result["s3_path"] = {"counts": s3, "designs": _as_data(s3_lines, prices),
                             "totals": totals_of(s3_lines, prices), "split": split(s3, prices)}
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def _short(function: str) -> str:
    return function.removesuffix("Function").lower()
