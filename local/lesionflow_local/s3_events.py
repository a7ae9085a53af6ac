"""S3's event notifications as real S3 sends them: moto 5's leave out two fields of the object.

AWS's event message structure gives every ``ObjectCreated`` record ``s3.object.versionId`` when the bucket is
versioned (LesionFlow's always is) and ``s3.object.sequencer``, a hexadecimal value that orders the events of one key.
moto sends neither, so a pipeline tried only locally would never see the shape it meets on AWS. ``install`` adds
them to every notification moto's S3 sends, in-process or in the local server.
"""

import itertools
import threading
import time

from moto.s3 import notifications

_original = notifications._get_s3_event
_lock = threading.Lock()
# S3 documents only that sequencers of one key compare (as hex strings, after padding) in event order: a process-wide
# counter from the clock gives that, and never repeats.
_sequence = itertools.count(time.time_ns())


def _sequencer() -> str:
    with _lock:
        return f"{next(_sequence):018X}"


def _get_s3_event(event_name: str, bucket, key, notification_id: str) -> dict:
    event = _original(event_name, bucket, key, notification_id)
    for record in event["Records"]:
        announced = record["s3"]["object"]
        if bucket.is_versioned and key.version_id:
            announced["versionId"] = key.version_id
        announced["sequencer"] = _sequencer()
    return event


def install() -> None:
    """Make moto's S3 notifications carry ``versionId`` and ``sequencer`` (idempotent)."""
    notifications._get_s3_event = _get_s3_event
