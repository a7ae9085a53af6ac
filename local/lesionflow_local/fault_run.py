"""The fault-injection run: hundreds of uploads through the local stack while things go wrong, then an audit.

Valid, awkward and invalid images are uploaded (some keys twice, some with the same bytes, some by multipart
upload), some are sent again by `lesionflow backfill` after S3's own notification, forged notifications name real
keys (claiming them empty, from the future, or of versions that never existed) and objects in another bucket,
unparseable messages are put on the ingest queue, SQS delivers some messages twice, the dispatcher dies halfway
through some batches, and the model endpoint throttles, fails, times out and answers nonsense at the configured rate.
The audit then reads the prediction log (by its status index, never a Scan), the prediction JSON, the executions and
the dead-letter queue, and counts what a user must never see: lost uploads, duplicated records, wrong verdicts, and
any record or prediction for an object outside the stack's bucket.
"""

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from urllib.parse import quote_plus
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import boto3
from boto3.dynamodb.conditions import Key

from lesionflow.records import Status
from lesionflow_local.event_source import DeliveryFaults
from lesionflow_local.fault_plan import FaultInput, FaultRunSettings, inputs
from lesionflow_local.server import LocalStackServer
from lesionflow_local.template import ROOT
from lesionflow_model.faults import PERMANENT, FaultInjector

LOG = ROOT / ".lesionflow" / "fault-run.log"
PREFIX = "fault-run/"
BACKFILLED = "backfilled/"  # under PREFIX: the keys `lesionflow backfill` sends again
FOREIGN_BUCKET = "fault-run-someone-elses-bucket"
# Redeliveries within seconds instead of the template's 180 s visibility timeout: only the clock changes.
FAST_REDELIVERY = {"IngestQueue": {"VisibilityTimeout": 5}}
# The client gives up after 1 s; an injected timeout answers after 1.5 s.
ENDPOINT_TIMEOUT = {"InvokeTimeoutSeconds": "1"}


@dataclass
class FaultRunReport:
    uploads: int
    upload_versions: int
    records: dict[str, int]
    lost: int
    duplicated: int
    wrong_verdicts: list[str]
    injected: dict[str, int]
    failed_by_permanent_fault: int
    failed_by_exhausted_retries: int
    poison_messages_in_dlq: int
    other_messages_in_dlq: int
    prediction_json_missing: int
    executions_running: int
    latest_record_not_newest: int
    rejected_as_overwritten: int
    sent_again: dict[str, int]
    records_for_other_objects: int
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        injected = ", ".join(f"{kind} {count}" for kind, count in sorted(self.injected.items())) or "none"
        records = ", ".join(f"{status} {count}" for status, count in sorted(self.records.items()))
        return [
            f"Fault-injection run: {self.uploads} uploads ({self.upload_versions} upload versions) in {self.seconds:.0f} s",
            f"  injected: {injected}",
            f"  records: {records}",
            f"  FAILED by a permanent endpoint fault: {self.failed_by_permanent_fault}; after exhausted retries: "
            f"{self.failed_by_exhausted_retries}",
            f"  sent again: " + ", ".join(f"{kind} {count}" for kind, count in sorted(self.sent_again.items())),
            f"  REJECTED because a newer version replaced the object before it was read: {self.rejected_as_overwritten}",
            f"  records or predictions for objects outside the stack's bucket: {self.records_for_other_objects}",
            f"  poison messages in the dead-letter queue: {self.poison_messages_in_dlq}; other dead letters: "
            f"{self.other_messages_in_dlq}",
            f"  lost: {self.lost}",
            f"  duplicated: {self.duplicated}",
            f"  wrong verdicts: {len(self.wrong_verdicts)} {self.wrong_verdicts[:3]}; prediction JSON missing: {self.prediction_json_missing}; "
            f"executions still running: {self.executions_running}; latest record not the newest upload: "
            f"{self.latest_record_not_newest}",
            "RESULT: " + ("every upload ended in exactly one terminal record" if self.ok
                          else "PROBLEMS: " + "; ".join(self.problems)),
        ]


@dataclass
class _Upload:
    key: str
    versions: list[FaultInput]
    multipart: bool = False
    forged: bool = False
    etags: list[str] = field(default_factory=list)
    version_ids: list[str] = field(default_factory=list)


def run_fault_injection(settings: FaultRunSettings) -> FaultRunReport:
    endpoint_faults = FaultInjector(rate=settings.endpoint_fault_rate, delay_seconds=1.5, seed=settings.seed)
    delivery_faults = DeliveryFaults(settings.duplicate_rate, settings.crash_rate, seed=settings.seed)
    started = time.monotonic()
    LOG.parent.mkdir(exist_ok=True)
    with LOG.open("w") as log, redirect_stdout(log), LocalStackServer(
            parameters=ENDPOINT_TIMEOUT, endpoint_faults=endpoint_faults, delivery_faults=delivery_faults,
            overrides=FAST_REDELIVERY) as server:
        aws = _Clients(server)
        uploads = _plan(settings, aws.details["upload_prefix"])
        _upload_all(aws, uploads)
        sent_again = {"backfilled": _backfill(server, uploads), "forged for real keys": _forge(aws, uploads),
                      "forged for another bucket": _forge_foreign(aws, settings.foreign_events)}
        poison = _send_poison(aws, settings.poison_messages)
        records = _wait(aws, uploads, poison, settings.timeout_seconds)
        report = _audit(aws, uploads, records, poison, endpoint_faults.injected | delivery_faults.injected)
        report.sent_again = sent_again
    report.seconds = time.monotonic() - started
    return report


class _Clients:
    def __init__(self, server: LocalStackServer):
        self.details = server.details()
        self.s3, self.sqs, self.sfn = (boto3.client(name, endpoint_url=server.endpoint_url, region_name="us-east-1")
                                       for name in ("s3", "sqs", "stepfunctions"))
        self.table = boto3.resource("dynamodb", endpoint_url=server.endpoint_url,
                                    region_name="us-east-1").Table(self.details["table"])


def _every(share: float) -> int:
    return max(1, round(1 / share)) if share else 0


def _plan(settings: FaultRunSettings, upload_prefix: str) -> list[_Upload]:
    """Upload i gets input i (cycling); every 1/reupload_share-th key is uploaded again, alternately with the same
    bytes and with another valid image; the shares that are uploaded by multipart, backfilled and forged are spread
    the same way, offset so that they overlap the re-uploads only in part."""
    planned = inputs()
    valid = [item for item in planned if item.expected == "SUCCEEDED"]
    every = _every(settings.reupload_share)
    multipart, backfilled, forged = (_every(share) for share in (
        settings.multipart_share, settings.backfill_share, settings.forged_share))
    plan = []
    for index in range(settings.uploads):
        first = planned[index % len(planned)]
        folder = BACKFILLED if backfilled and index % backfilled == 1 else ""
        key = f"{upload_prefix}{PREFIX}{folder}{index:05d}-{first.name}"
        versions = [first]
        if every and index % every == 0:
            versions.append(first if (index // every) % 2 else valid[index % len(valid)])
        plan.append(_Upload(key, versions, multipart=bool(multipart) and index % multipart == 2,
                            forged=bool(forged) and index % forged == 3))
    return plan


def _upload_all(aws: _Clients, uploads: list[_Upload]) -> None:
    """First versions in parallel, then the second versions, so that a second version is always the newer one: a
    second later, since S3 keeps an object's modification time (the prediction log's order) to the second."""
    def put(upload: _Upload, version: int) -> None:
        body = upload.versions[version].body
        stored = _multipart_put(aws, upload.key, body) if upload.multipart else aws.s3.put_object(
            Bucket=aws.details["bucket"], Key=upload.key, Body=body)
        upload.etags.append(stored["ETag"].strip('"'))
        upload.version_ids.append(stored["VersionId"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda upload: put(upload, 0), uploads))
    time.sleep(1.1)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda upload: put(upload, 1), [u for u in uploads if len(u.versions) > 1]))


def _multipart_put(aws: _Clients, key: str, body: bytes) -> dict:
    """One object by multipart upload (one part: S3's 5 MiB minimum applies only to parts before the last)."""
    bucket = aws.details["bucket"]
    upload_id = aws.s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = aws.s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body)
    return aws.s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})


def _backfill(server: LocalStackServer, uploads: list[_Upload]) -> int:
    """`lesionflow backfill` of the backfilled folder, as a user runs it, after S3 has sent its own notifications."""
    from lesionflow_cli.backfill import backfill  # the real command (the CLI package depends on this one, not back)
    from lesionflow_cli.stack import find_stack

    if not any(BACKFILLED in upload.key for upload in uploads):
        return 0
    stack = find_stack(None, local=False, endpoint_url=server.endpoint_url, region=None, profile=None)
    with redirect_stderr(StringIO()):  # its progress line
        return backfill(stack, PREFIX + BACKFILLED).queued


def _notification(bucket: str, key: str, **claims) -> str:
    """An ObjectCreated notification in S3's shape, claiming what ``claims`` say about the object."""
    announced = {"key": quote_plus(key, safe="/"), "size": claims.pop("size", 1), "eTag": claims.pop("etag", "0" * 32)}
    if "version_id" in claims:
        announced["versionId"] = claims.pop("version_id")
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
        "eventTime": claims.pop("event_time", "2099-12-31T23:59:59.999Z"),
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "forged", "object": announced,
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}},
    }]})


def _forge(aws: _Clients, uploads: list[_Upload]) -> int:
    """For each forged key: a claim that it is empty (no version), that its latest version is from 2099 and empty,
    and a claim of a version S3 never made. None may add a record, make one look REJECTED, or outdate the real one."""
    bodies = []
    for upload in (u for u in uploads if u.forged):
        bucket = aws.details["bucket"]
        bodies += [_notification(bucket, upload.key, size=0),
                   _notification(bucket, upload.key, size=0, version_id=upload.version_ids[-1]),
                   _notification(bucket, upload.key, version_id="forged-" + upload.version_ids[0][:20])]
    for body in bodies:
        aws.sqs.send_message(QueueUrl=aws.details["queue_url"], MessageBody=body)
    return len(bodies)


def _forge_foreign(aws: _Clients, count: int) -> int:
    """Notifications for images that really exist, under the upload prefix, in a bucket that is not the stack's."""
    if not count:
        return 0
    aws.s3.create_bucket(Bucket=FOREIGN_BUCKET)
    image = next(item for item in inputs() if item.expected == "SUCCEEDED").body
    for index in range(count):
        key = f"{aws.details['upload_prefix']}{PREFIX}foreign-{index:03d}.jpg"
        stored = aws.s3.put_object(Bucket=FOREIGN_BUCKET, Key=key, Body=image)
        aws.sqs.send_message(QueueUrl=aws.details["queue_url"], MessageBody=_notification(
            FOREIGN_BUCKET, key, size=len(image), version_id=stored.get("VersionId", "null")))
    return count


def _send_poison(aws: _Clients, count: int) -> set[str]:
    bodies = {f"poison message {index}: {{not json" for index in range(count)}
    for body in bodies:
        aws.sqs.send_message(QueueUrl=aws.details["queue_url"], MessageBody=body)
    return bodies


def _by_status(aws: _Clients, **options) -> Iterator[dict]:
    """The pages of the by-status index, one status after another (a Query each, paginated, never a Scan)."""
    for status in Status:
        query = {"IndexName": "by-status", "KeyConditionExpression": Key("status").eq(status)} | options
        while True:
            page = aws.table.query(**query)
            yield page
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _records_by_key(aws: _Clients) -> dict[str, list[dict]]:
    """Every record, by object key."""
    found: dict[str, list[dict]] = {}
    for page in _by_status(aws):
        for item in page["Items"]:
            found.setdefault(item["image_key"], []).append(item)
    return found


def _dead_letters(aws: _Clients) -> list[str]:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.details["dlq_url"], AttributeNames=["All"])["Attributes"]
    bodies = []
    for _ in range(int(attributes["ApproximateNumberOfMessages"]) // 10 + 2):
        messages = aws.sqs.receive_message(QueueUrl=aws.details["dlq_url"], MaxNumberOfMessages=10,
                                           VisibilityTimeout=600).get("Messages", [])
        bodies += [message["Body"] for message in messages]
    return bodies


def _wait(aws: _Clients, uploads: list[_Upload], poison: set[str], timeout: float) -> dict[str, list[dict]]:
    """Until every upload version has a record and the poison is in the dead-letter queue (or time is up)."""
    expected = sum(len(upload.versions) for upload in uploads)
    deadline = time.monotonic() + timeout
    while True:
        # counted, not read: moto builds every item it returns, on the CPU the pipeline under test shares
        recorded = sum(page["Count"] for page in _by_status(aws, Select="COUNT"))
        dlq = int(aws.sqs.get_queue_attributes(QueueUrl=aws.details["dlq_url"], AttributeNames=[
            "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
        if recorded >= expected and dlq >= len(poison) or time.monotonic() > deadline:
            time.sleep(3)  # let any late duplicate show itself
            return _records_by_key(aws)
        time.sleep(3)


def _audit(aws: _Clients, uploads: list[_Upload], records: dict[str, list[dict]], poison: set[str],
           injected: Counter) -> FaultRunReport:
    lost = duplicated = json_missing = not_newest = overwritten = 0
    wrong: list[str] = []
    statuses: Counter = Counter()
    planned = {upload.key for upload in uploads}
    other_objects = sum(len(found) for key, found in records.items() if key not in planned)
    other_objects += sum(record["bucket"] != aws.details["bucket"] for found in records.values() for record in found)
    other_objects += _written_in_foreign_bucket(aws)
    for upload in uploads:
        found = records.get(upload.key, [])
        lost += max(0, len(upload.versions) - len(found))
        duplicated += max(0, len(found) - len(upload.versions))
        for record in found:
            statuses[record["status"]] += 1
            json_missing += not _prediction_json_exists(aws, record)
            overwritten += _overwritten(record, upload.versions)
        wrong += [f"{upload.key}: {record['status']}" for record in found
                  if not _plausible(record, upload.versions)]
        if len(upload.versions) > 1 and upload.versions[0].body != upload.versions[1].body and found:
            latest = max(found, key=lambda record: record["upload_version"])  # the table's sort key: newest last
            not_newest += latest.get("etag") != upload.etags[-1]
    dead = _dead_letters(aws)
    failed_reasons = [r["reason"] for found in records.values() for r in found if r["status"] == "FAILED"]
    permanent_failures = sum("ModelResponseInvalid" in reason for reason in failed_reasons)
    running = _running_executions(aws)
    report = FaultRunReport(
        uploads=len(uploads), upload_versions=sum(len(u.versions) for u in uploads), records=dict(statuses),
        lost=lost, duplicated=duplicated, wrong_verdicts=wrong, injected=dict(injected),
        failed_by_permanent_fault=permanent_failures,
        failed_by_exhausted_retries=len(failed_reasons) - permanent_failures,
        poison_messages_in_dlq=len(poison & set(dead)), other_messages_in_dlq=len(set(dead) - poison),
        prediction_json_missing=json_missing, executions_running=running, latest_record_not_newest=not_newest,
        rejected_as_overwritten=overwritten, sent_again={}, records_for_other_objects=other_objects, seconds=0.0,
    )
    permanent_injected = sum(count for kind, count in injected.items() if kind in PERMANENT)
    checks = {
        "uploads lost": lost, "records duplicated": duplicated, "wrong verdicts": len(wrong),
        "prediction JSON missing": json_missing, "executions still running": running,
        "latest record is not the newest upload": not_newest,
        "records or predictions for objects outside the stack's bucket": other_objects,
        "REJECTED as overwritten although every notification names its version": overwritten,
        "poison messages not in the dead-letter queue": len(poison) - report.poison_messages_in_dlq,
        "notifications in the dead-letter queue": report.other_messages_in_dlq,
        "FAILED records without a permanent fault to explain them": abs(permanent_failures - permanent_injected),
    }
    report.problems = [f"{name}: {count}" for name, count in checks.items() if count]
    return report


def _written_in_foreign_bucket(aws: _Clients) -> int:
    """Objects in the other bucket that are not the images put there: the pipeline must never write any."""
    try:
        everything = aws.s3.list_objects_v2(Bucket=FOREIGN_BUCKET).get("Contents", [])
    except aws.s3.exceptions.NoSuchBucket:
        return 0
    return sum(not item["Key"].startswith(aws.details["upload_prefix"]) for item in everything)


def _overwritten(record: dict, versions: list[FaultInput]) -> bool:
    """Rejected because a newer version replaced it before it was read: only possible when a notification names no
    version (the local S3, like real S3, names it in every one, so the run expects none)."""
    return (record["status"] == "REJECTED" and record.get("rejection_class") == "gone-before-processing"
            and len({version.body for version in versions}) > 1)


def _plausible(record: dict, versions: list[FaultInput]) -> bool:
    """A REJECTED verdict for invalid input; SUCCEEDED or (endpoint faults) FAILED for a valid image."""
    expected = {version.expected for version in versions}
    if record["status"] == "FAILED":
        return "SUCCEEDED" in expected
    if _overwritten(record, versions):
        return True
    return record["status"] in expected and (record["status"] != "REJECTED" or bool(record.get("reason")))


def _prediction_json_exists(aws: _Clients, record: dict) -> bool:
    """Every verdict's JSON lies at ``<prediction prefix><upload_id>.json`` (only SUCCEEDED records name it)."""
    key = f"{aws.details['prediction_prefix']}{record['upload_id']}.json"
    try:
        body = aws.s3.get_object(Bucket=record["bucket"], Key=key)["Body"].read()
        return json.loads(body)["status"] == record["status"]
    except aws.s3.exceptions.NoSuchKey:
        return False


def _running_executions(aws: _Clients) -> int:
    pages = aws.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=aws.details["state_machine_arn"], statusFilter="RUNNING")
    return sum(len(page["executions"]) for page in pages)


def print_report(report: FaultRunReport, as_json: bool) -> None:
    print(json.dumps(asdict(report) | {"ok": report.ok}) if as_json else "\n".join(report.lines()))
