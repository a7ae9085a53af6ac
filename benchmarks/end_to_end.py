"""End to end on the local stack: uploads in, records out, and everything a bill counts on the way.

One fresh process per run size (``python -m benchmarks.end_to_end --uploads N``): the handlers' logger binds to the
stdout of its first use, moto keeps every object in memory, and the stack's state should not carry from one size to
the next. The run starts ``LocalStackServer`` in-process, as the fault-injection run does, with stdout (the handlers'
logs and EMF metrics) in a log file, and observes it only from outside the product code:

- requests: the server's WSGI application is wrapped, so each request it serves is counted by service and operation,
  and by caller (this benchmark's own clients carry a user-agent mark and are counted apart from the pipeline's);
- Lambda invocations and durations: each handler the local Lambda API loads is wrapped in a timer;
- per-stage latency: the handlers' own EMF metrics (``ValidateLatency``, ``PreprocessLatency``,
  ``InvokeModelLatency``);
- end to end: each record's ``created_at`` minus its ``uploaded_at`` (S3's event time);
- state transitions: ``GetExecutionHistory`` of the executions, counting states entered, as Standard bills them.

S3 requests are counted by key prefix too (uploads, predictions, the model-input hand-over), so that the cost model
can tell the hand-over's requests from the rest. The default run uses the template's default model contract, whose
input travels inline in the state; ``--contract`` runs another (``make bench`` runs ``S3_CONTRACT`` as well, whose
input is too large for the state and is handed over through S3).

One upload goes through first and is not counted, so every function is loaded and warm when counting starts (cold
starts are ``cold_start``'s subject). With ``--timing N`` (``run`` asks for it in its largest run: 40 uploads, 4 in
quick mode), a timing run follows: N uploads one at a time, each waited for to its record before the next is put
(``_drive`` with a window of 1), so that every handler runs with no other image's work in the process, as an
invocation on Lambda has its own CPU and as the reference's time is measured (``cost`` prices Lambda time from it).
It records handler durations and the endpoint's answer times only; its requests are not counted. Then the counted
run: uploads are put 4 at a time, never more than ``WINDOW`` of them without a record yet (see ``_drive``):
throughput is what the stack sustains, and end-to-end latency includes a bounded wait in the queue. Its handler
durations are measured too, but with up to ``WINDOW`` executions in flight every handler shares the one interpreter
lock with moto's threads: they are an upper bound, not what Lambda would bill.
"""

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from datetime import datetime, timezone
from pathlib import Path

import boto3
from boto3.dynamodb.conditions import Key
from botocore.config import Config

from benchmarks.images import upload_bodies
from benchmarks.measure import ROOT, percentile
from lesionflow.records import Status

BENCH_AGENT = "lesionflow-bench"
PREFIX = "bench/"
STAGES = ("Validate", "Preprocess", "InvokeModel")
S3_CONTRACT = "tensor-npy"  # a contract whose input exceeds the inline limit: the hand-over's S3 path, measured
WINDOW = 40  # uploads in flight at most: enough to keep the stack busy, few enough not to thrash it
TIMING_UPLOADS = {False: 40, True: 4}  # the timing run's uploads (one at a time) in the largest run: full, quick
HISTORY_SAMPLE = 200  # executions whose history is read (every one takes the same path in a fault-free run)
LOG_DIR = ROOT / ".lesionflow" / "bench"


class RequestCounter:
    """WSGI middleware counting every request the local stack serves, as (caller, service, operation, key prefix),
    and timing the SageMaker runtime's answers (the endpoint call a single-Lambda design would make too)."""

    def __init__(self):
        self.app = None
        self.active = False
        self.counts: Counter = Counter()
        self.endpoint_seconds: list[float] = []
        self._lock = threading.Lock()

    def wrap(self, app) -> "RequestCounter":
        """Count the requests ``app`` serves (LocalStackServer's ``middleware``)."""
        self.app = app
        return self

    def reset(self) -> list[float]:
        """Forget what was counted; return the endpoint's answer times (s) heard so far."""
        with self._lock:
            heard, self.endpoint_seconds, self.counts = self.endpoint_seconds, [], Counter()
        return heard

    def __call__(self, environ, start_response):
        if not self.active:
            return self.app(environ, start_response)
        caller, service, operation = classify(environ)
        prefix = key_prefix(environ) if service == "s3" else ""
        started = time.perf_counter()
        result = self.app(environ, start_response)
        if service == "sagemaker":
            body = b"".join(result)
            getattr(result, "close", lambda: None)()
            result = [body]
            with self._lock:
                self.endpoint_seconds.append(time.perf_counter() - started)
        with self._lock:
            self.counts[(caller, service, operation, prefix)] += 1
        return result


_TARGETS = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "AWSStepFunctions": "stepfunctions",
            "secretsmanager": "secretsmanager", "TrentService": "kms"}


def classify(environ) -> tuple[str, str, str]:
    """(caller, service, operation) of one request, from its path, X-Amz-Target and signature scope."""
    caller = "client" if BENCH_AGENT in environ.get("HTTP_USER_AGENT", "") else "pipeline"
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    if path.startswith("/2015-03-31/functions/"):
        return caller, "lambda", "Invoke"
    if path.startswith("/endpoints/"):
        return caller, "sagemaker", "InvokeEndpoint"
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if "." in target:
        prefix, operation = target.split(".", 1)
        return caller, _TARGETS.get(prefix, prefix), operation
    scope = environ.get("HTTP_AUTHORIZATION", "").split("Credential=", 1)[-1].split(",")[0].split("/")
    service = scope[3] if len(scope) > 3 else "unknown"
    if service == "s3":
        has_key = len(path.strip("/").split("/", 1)) > 1
        operation = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            method, method) if has_key else f"{method} (bucket)"
        return caller, "s3", operation
    return caller, service, method


def key_prefix(environ) -> str:
    """The first folder of an S3 request's key (path-style: ``/bucket/folder/...``), with its slash; "" for none."""
    parts = environ.get("PATH_INFO", "").lstrip("/").split("/", 2)
    return f"{parts[1]}/" if len(parts) == 3 else ""


class HandlerTimer:
    """Every Lambda invocation's duration, by function (LocalStackServer's ``on_invoke``)."""

    def __init__(self):
        self.active = False
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def __call__(self, function: str, seconds: float) -> None:
        if self.active:
            self.seconds[function].append(seconds)

    def reset(self) -> dict[str, list[float]]:
        """Forget the durations heard so far, and return them."""
        heard, self.seconds = self.seconds, defaultdict(list)
        return heard


def run_once(uploads: int, timeout: float = 900, contract: str | None = None, timing: int = 0) -> dict:
    """Start a local stack (with the template's ``ModelContract``, or ``contract``), put ``timing`` HAM-size JPEGs
    through it one at a time (the timing run: handler and endpoint times without contention), then ``uploads``
    with up to ``WINDOW`` in flight, and return what was measured."""
    from lesionflow_local.server import LocalStackServer

    timer, counter = HandlerTimer(), RequestCounter()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"end-to-end-{uploads}{'-' + contract if contract else ''}.log"
    bodies = upload_bodies()
    parameters = {"ModelContract": contract} if contract else {}
    with log_path.open("w") as log, redirect_stdout(log):
        with LocalStackServer(middleware=counter.wrap, on_invoke=timer, parameters=parameters) as server:
            details = server.details()
            aws = _clients(server.endpoint_url)
            with ThreadPoolExecutor(1) as pool:
                _put(aws, details, "warmup/", range(1), bodies, pool)
            _wait(aws, details, 1, "warmup/", "2000", timeout=120)
            memory = {name: function.memory_mb for name, function in server.stack.functions.items()}
            used_contract = details["model_contract"]
            timed = _timing_run(aws, details, timing, bodies, timer, counter, timeout) if timing else None
            sys.stdout.flush()
            log_start = log_path.stat().st_size
            since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            counter.active = timer.active = True
            started = time.time()
            records = _drive(aws, details, uploads, bodies, since, timeout, WINDOW, "run/")
            drained = time.time()
            counter.active = timer.active = False
            sys.stdout.flush()
            log_bytes = log_path.stat().st_size - log_start
            executions = _executions(aws, details, started)
    stages = _stage_latencies(log_path, log_start)
    projections = _gsi_projections()
    return {
        "uploads": uploads, "contract": used_contract, "records": len(records),
        "statuses": dict(Counter(r["status"] for r in records)),
        "wall_seconds": drained - started, **_latencies(records),
        "stage_ms": stages, "handler_ms": _ms(timer.seconds),
        "endpoint_ms": [round(value * 1000, 2) for value in counter.endpoint_seconds],
        "requests": [{"caller": c, "service": s, "operation": o, "prefix": p, "count": n}
                     for (c, s, o, p), n in sorted(counter.counts.items())],
        "executions": executions, "memory_mb": memory, "log_bytes": log_bytes,
        "items": [_write_sizes(record, projections) for record in records],
        "log": str(log_path.relative_to(ROOT)),
        "timing": timed,
    }


def _timing_run(aws, details: dict, uploads: int, bodies: list[bytes], timer: HandlerTimer, counter: RequestCounter,
                timeout: float) -> dict:
    """``uploads`` images one at a time, each to its record before the next (``_drive`` with a window of 1), with
    every invocation's duration and the endpoint's answer times recorded; then the stack is let settle (no
    execution running) and both hooks are reset, so nothing of it is counted in the run that follows."""
    since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    counter.active = timer.active = True
    started = time.time()
    records = _drive(aws, details, uploads, bodies, since, timeout, 1, "timing/")
    wall = time.time() - started
    _settle(aws, details)
    counter.active = timer.active = False
    endpoint, handlers = counter.reset(), timer.reset()
    return {"uploads": uploads, "window": 1, "records": len(records),
            "statuses": dict(Counter(r["status"] for r in records)), "wall_seconds": wall,
            "handler_ms": _ms(handlers), "endpoint_ms": [round(value * 1000, 2) for value in endpoint]}


def _settle(aws, details: dict, timeout: float = 60) -> None:
    """Wait until no execution is running (a record is written a step before its execution ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = aws["sfn"].list_executions(stateMachineArn=details["state_machine_arn"], statusFilter="RUNNING")
        if not running["executions"]:
            return
        time.sleep(0.5)


def _clients(endpoint_url: str):
    config = Config(user_agent_extra=BENCH_AGENT, max_pool_connections=8)
    kwargs = {"endpoint_url": endpoint_url, "region_name": "us-east-1", "config": config}
    return {"s3": boto3.client("s3", **kwargs), "sfn": boto3.client("stepfunctions", **kwargs),
            "dynamodb": boto3.resource("dynamodb", **kwargs)}


def _put(aws, details: dict, folder: str, indexes: range, bodies: list[bytes], pool: ThreadPoolExecutor) -> None:
    """Upload ``<folder><index>.jpg`` for each index, cycling through the bodies, 4 at a time."""
    def put(index: int):
        aws["s3"].put_object(Bucket=details["bucket"], Key=f"{details['upload_prefix']}{PREFIX}{folder}{index:05d}.jpg",
                             Body=bodies[index % len(bodies)])
    list(pool.map(put, indexes))


def _drive(aws, details: dict, uploads: int, bodies: list[bytes], since: str, timeout: float, window: int,
           folder: str) -> list[dict]:
    """Upload ``uploads`` images under ``folder`` keeping at most ``window`` of them without a record (a closed
    loop), and return their records. A window of 1 is the timing run: one image in the stack at a time.

    An unbounded burst measures the local stack's thread contention instead: every upload becomes an execution
    thread in moto's interpreter, and hundreds of them competing for one interpreter lock slow the one handler that
    may run at a time (1,000 at once ran at half the rate of 100). A bounded window keeps the work per image what it
    is, so the rate shows whether anything grows with the number of uploads; Lambda and Step Functions would bound
    it the same way with the dispatcher's MaximumConcurrency."""
    table = aws["dynamodb"].Table(details["table"])
    prefix = f"{details['upload_prefix']}{PREFIX}{folder}"
    seen: dict[str, str] = {}  # key -> created_at
    sent, polls = 0, 0
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(4) as pool:
        while len(seen) < uploads and time.monotonic() < deadline:
            room = min(window - (sent - len(seen)), uploads - sent)
            if room > 0:
                _put(aws, details, folder, range(sent, sent + room), bodies, pool)
                sent += room
            time.sleep(1)
            polls += 1
            # Keys only, and only the latest, except every 10th poll: a record is written a moment after its
            # created_at, and moto serialises every item it returns at some cost to the pipeline it shares a CPU with.
            newest = max(seen.values(), default=since)
            watermark = since if polls % 10 == 0 else max(since, _earlier(newest, 10))
            seen |= {item["image_key"]: item["created_at"]
                     for item in _records(table, prefix, watermark, keys_only=True)}
    return _records(table, prefix, since)


def _earlier(stamp: str, seconds: float) -> str:
    return datetime.fromtimestamp(_time(stamp) - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _records(table, prefix: str, since: str, keys_only: bool = False) -> list[dict]:
    """Records of keys under ``prefix`` created since ``since``, through the ``by-status`` index (Query, never
    Scan); with ``keys_only``, just their key and creation time."""
    found = []
    for status in Status:
        query = {"IndexName": "by-status",
                 "KeyConditionExpression": Key("status").eq(status) & Key("created_at").gte(since)}
        if keys_only:
            query["ProjectionExpression"] = "image_key, created_at"
        while True:
            page = table.query(**query)
            found += [item for item in page["Items"] if item["image_key"].startswith(prefix)]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def _wait(aws, details: dict, expected: int, folder: str, since: str, timeout: float) -> list[dict]:
    """The records of a folder's keys, once there are ``expected`` of them or the time is up."""
    table = aws["dynamodb"].Table(details["table"])
    prefix = f"{details['upload_prefix']}{PREFIX}{folder}"
    deadline = time.monotonic() + timeout
    while True:
        found = _records(table, prefix, since)
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _executions(aws, details: dict, since: float) -> dict:
    """States entered (and retries) per execution from a sample of histories, and every execution's duration."""
    listed = [execution for page in aws["sfn"].get_paginator("list_executions").paginate(
        stateMachineArn=details["state_machine_arn"]) for execution in page["executions"]
        if execution["startDate"].timestamp() >= since]
    step = max(1, math.ceil(len(listed) / HISTORY_SAMPLE))
    sample = listed[::step]
    entered, retries, kinds, names = [], [], Counter(), Counter()
    for execution in sample:
        events = aws["sfn"].get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        states = [event["type"] for event in events if event["type"].endswith("StateEntered")]
        kinds.update(states)
        names.update(event["stateEnteredEventDetails"]["name"] for event in events
                     if event["type"].endswith("StateEntered") and "stateEnteredEventDetails" in event)
        scheduled = sum(event["type"] in ("TaskScheduled", "LambdaFunctionScheduled") for event in events)
        entered.append(len(states))
        retries.append(max(0, scheduled - sum(state == "TaskStateEntered" for state in states)))
    durations = [(e["stopDate"] - e["startDate"]).total_seconds() * 1000 for e in listed if e.get("stopDate")]
    return {"count": len(listed), "sampled": len(sample), "states_entered": entered, "retries": retries,
            "state_kinds": {kind: count / max(1, len(sample)) for kind, count in kinds.items()},
            "state_names": {name: count / max(1, len(sample)) for name, count in names.items()},
            "statuses": dict(Counter(e["status"] for e in listed)), "duration_ms": durations}


def _stage_latencies(log_path: Path, offset: int) -> dict[str, list[float]]:
    """The handlers' ``<Step>Latency`` EMF values (ms) written after ``offset`` in the log."""
    found: dict[str, list[float]] = {stage: [] for stage in STAGES}
    with log_path.open() as log:
        log.seek(offset)
        for line in log:
            if not line.startswith('{"_aws"'):
                continue
            document = json.loads(line)
            for stage in STAGES:
                value = document.get(f"{stage}Latency")
                if value is not None:
                    found[stage] += value if isinstance(value, list) else [value]
    return found


def _latencies(records: list[dict]) -> dict:
    """End to end per record (S3 event time to the record's creation) and the span of the whole run."""
    created = [_time(r["created_at"]) for r in records]
    uploaded = [_time(r["uploaded_at"]) for r in records]
    span = (max(created) - min(uploaded)) if records else 0.0
    return {"end_to_end_ms": [round((c - u) * 1000, 1) for c, u in zip(created, uploaded)],
            "span_seconds": span, "images_per_second": len(records) / span if span else 0.0}


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _ms(seconds: dict[str, list[float]]) -> dict[str, list[float]]:
    return {name: [round(value * 1000, 2) for value in values] for name, values in seconds.items()}


def _write_sizes(item: dict, projections: dict[str, tuple[str, list[str] | None]]) -> dict:
    """What writing the record costs, as DynamoDB sizes it (approximately): the item's bytes in the table and in each
    index it has a partition key for (the whole item, or only the attributes the index projects)."""
    def size(names) -> int:
        return sum(len(name.encode()) + _value_size(item[name]) for name in names if name in item)

    landed = {index: projected for index, (partition, projected) in projections.items() if partition in item}
    return {"bytes": size(item), "whole_writes": 1 + sum(projected is None for projected in landed.values()),
            "index_bytes": {index: size(item if projected is None else projected)
                            for index, projected in landed.items()}}


def _value_size(value) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        digits = len(str(value).replace("-", "").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, (list, set, tuple)):
        return 3 + sum(1 + _value_size(v) for v in value)
    return len(str(value))


def _gsi_projections() -> dict[str, tuple[str, list[str] | None]]:
    """Each global secondary index of the prediction table: its partition key and the attributes it holds (None: all
    of them), from the template."""
    from lesionflow_local.template import load
    table = load()["Resources"]["PredictionTable"]["Properties"]
    keys = [key["AttributeName"] for key in table["KeySchema"]]
    projections = {}
    for index in table["GlobalSecondaryIndexes"]:
        own = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}
        projection = index["Projection"]
        projections[index["IndexName"]] = (own["HASH"], None if projection["ProjectionType"] == "ALL" else
                                           keys + list(own.values()) + projection.get("NonKeyAttributes", []))
    return projections


def summarise(result: dict) -> dict:
    """p50/p95 of the raw lists of one run, for the report."""
    def p(values):
        return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)} if values else None
    return {
        "uploads": result["uploads"], "contract": result.get("contract"), "records": result["records"],
        "statuses": result["statuses"],
        "wall_seconds": result["wall_seconds"], "span_seconds": result["span_seconds"],
        "images_per_second": result["images_per_second"], "end_to_end_ms": p(result["end_to_end_ms"]),
        "stage_ms": {stage: p(values) for stage, values in result["stage_ms"].items()},
        "handler_ms": {name: p(values) for name, values in result["handler_ms"].items()},
        "endpoint_ms": p(result["endpoint_ms"]),
        "execution_ms": p(result["executions"]["duration_ms"]),
        "timing": {"uploads": timing["uploads"], "records": timing["records"], "wall_seconds": timing["wall_seconds"],
                   "handler_ms": {name: p(values) for name, values in timing["handler_ms"].items()},
                   "endpoint_ms": p(timing["endpoint_ms"])} if (timing := result.get("timing")) else None,
    }


def run(quick: bool = False, sizes: tuple[int, ...] | None = None, contract: str | None = None,
        timing: int | None = None) -> list[dict]:
    """One fresh process per size (with the template's model contract, or ``contract``); each writes its
    measurements as JSON. The largest (last) size's process does a timing run of ``timing`` uploads first (default
    ``TIMING_UPLOADS``): the one the cost model prices."""
    import subprocess
    sizes = sizes or ((10, 30) if quick else (100, 300, 1000))
    timing = TIMING_UPLOADS[quick] if timing is None else timing
    results = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for index, uploads in enumerate(sizes):
        timed = timing if index == len(sizes) - 1 else 0
        print(f"  {uploads} uploads{f' ({contract})' if contract else ''}"
              f"{f', after a timing run of {timed} one at a time' if timed else ''} ...", flush=True)
        out = LOG_DIR / f"end-to-end-{uploads}{'-' + contract if contract else ''}.json"
        subprocess.run([sys.executable, "-m", "benchmarks.end_to_end", "--uploads", str(uploads), "--out", str(out),
                        "--timing", str(timed)]
                       + (["--contract", contract] if contract else []), check=True, cwd=ROOT)
        results.append(json.loads(out.read_text()))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--contract", default=None, help="a ModelContract other than the template's default")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timing", type=int, default=0,
                        help="uploads of the timing run (one at a time, before the counted run); 0: none")
    arguments = parser.parse_args()
    result = run_once(arguments.uploads, contract=arguments.contract, timing=arguments.timing)
    arguments.out.write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
