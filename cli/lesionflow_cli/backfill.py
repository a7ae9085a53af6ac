"""Backfill: objects already in the bucket (a dataset copied in before the stack existed) through the same queue
and state machine as new uploads, by sending the notification S3 would have sent for each.

Idempotent: a notification names its object version, the dispatcher names the execution after it, so a second
backfill (or S3's own notification of the same version) finds the execution already started and starts nothing.
Listing is one paginated ListObjectVersions; sending is batched 10 to a request and parallel: a million objects are
about 100,000 SendMessageBatch calls, minutes with a few workers. Beyond that, see the README (S3 Inventory).
"""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from urllib.parse import quote_plus

from lesionflow.uploads import iso_utc
from lesionflow_cli.stack import CommandError, Stack
from lesionflow_cli.uploads import Progress


@dataclass(frozen=True)
class BackfillResult:
    listed: int
    queued: int


def backfill(stack: Stack, prefix: str, workers: int = 4) -> BackfillResult:
    prefix = prefix if prefix.startswith(stack.upload_prefix) else stack.upload_prefix + prefix.lstrip("/")
    objects = list(_latest_versions(stack, prefix))
    if not objects:
        raise CommandError(f"no objects under s3://{stack.bucket}/{prefix}")
    sqs = stack.client("sqs")
    progress = Progress("queued", len(objects))

    def send(batch: list[dict]) -> int:
        entries = [{"Id": str(index), "MessageBody": json.dumps(notification(stack, item))}
                   for index, item in enumerate(batch)]
        failed = sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=entries).get("Failed", [])
        if failed:
            raise CommandError(f"the ingest queue refused {len(failed)} message(s): {failed[0].get('Code')}")
        progress.advance(len(batch))
        return len(batch)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        queued = sum(pool.map(send, _batches(objects, 10)))
    progress.done()
    return BackfillResult(listed=len(objects), queued=queued)


def notification(stack: Stack, version: dict) -> dict:
    """The ObjectCreated notification S3 sends to the queue for this object version (key URL-encoded, as S3 does)."""
    announced = {"key": quote_plus(version["Key"], safe="/"), "size": version["Size"],
                 "eTag": version["ETag"].strip('"')}
    if version.get("VersionId") and version["VersionId"] != "null":
        announced["versionId"] = version["VersionId"]
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": stack.region,
        "eventTime": iso_utc(version["LastModified"]), "eventName": "ObjectCreated:Backfill",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "lesionflow-backfill",
               "bucket": {"name": stack.bucket, "arn": f"arn:aws:s3:::{stack.bucket}"}, "object": announced},
    }]}


def _latest_versions(stack: Stack, prefix: str):
    pages = stack.client("s3").get_paginator("list_object_versions").paginate(Bucket=stack.bucket, Prefix=prefix)
    for page in pages:
        yield from (version for version in page.get("Versions", []) if version["IsLatest"])


def _batches(items: list, size: int):
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
