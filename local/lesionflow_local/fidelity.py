"""Where moto 5 departs from what AWS documents in a way the pipeline depends on, put right for the local stack.

- **S3's event notifications.** AWS's event message structure gives every ``ObjectCreated`` record
  ``s3.object.versionId`` when the bucket is versioned (LesionFlow's always is) and ``s3.object.sequencer``, a
  hexadecimal value that orders the events of one key. moto sends neither, so a pipeline tried only locally would
  never see the shape it meets on AWS.
- **Step Functions' context object.** AWS documents ``$$.Execution.StartTime`` as an ISO-8601 string
  (``2019-03-26T20:14:13.192Z``); moto's is a Python datetime, which its own DynamoDB integration cannot serialise.

``install`` puts both right, in-process or in the local server (idempotent).
"""

import itertools
import threading
import time
from datetime import UTC

from moto.s3 import notifications
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from lesionflow.uploads import iso_utc

_original_s3_event = notifications._get_s3_event
_original_environment = ExecutionWorker._get_evaluation_environment
_lock = threading.Lock()
# S3 documents only that sequencers of one key compare (as hex strings, after padding) in event order: a process-wide
# counter from the clock gives that, and never repeats.
_sequence = itertools.count(time.time_ns())


def _sequencer() -> str:
    with _lock:
        return f"{next(_sequence):018X}"


def _get_s3_event(event_name: str, bucket, key, notification_id: str) -> dict:
    event = _original_s3_event(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        announced = record["s3"]["object"]
        if bucket.is_versioned and key.version_id:
            announced["versionId"] = key.version_id
        announced["sequencer"] = _sequencer()
    return event


def _get_evaluation_environment(self):
    environment = _original_environment(self)
    execution = environment.states.context_object.context_object_data["Execution"]
    started = execution["StartTime"]
    if not isinstance(started, str):
        execution["StartTime"] = iso_utc(started if started.tzinfo else started.replace(tzinfo=UTC))
    return environment


def install() -> None:
    """Make moto's S3 notifications carry ``versionId`` and ``sequencer``, and its ``$$.Execution.StartTime`` a
    string, as AWS's do."""
    notifications._get_s3_event = _get_s3_event
    ExecutionWorker._get_evaluation_environment = _get_evaluation_environment
