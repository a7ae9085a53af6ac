"""Dispatch: SQS batch of S3 notifications -> one Step Functions execution per uploaded object version."""

import json
import os
from datetime import datetime
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lesionflow import clients
from lesionflow.dispatch import DispatchOutcome, start_pipeline
from lesionflow.observability import count, lambda_entry, logger
from lesionflow.uploads import Upload

processor = BatchProcessor(event_type=EventType.SQS)
_METRIC = {
    DispatchOutcome.STARTED: "UploadsDispatched",
    DispatchOutcome.DUPLICATE: "DuplicatesSkipped",
    DispatchOutcome.OUTSIDE_PREFIX: "OutsidePrefixIgnored",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    upload_prefix: str = Field(alias="UPLOAD_PREFIX", min_length=1)


class NotifiedBucket(BaseModel):
    name: str


class NotifiedObject(BaseModel):
    key: str
    size: int = 0
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class NotifiedEntity(BaseModel):
    bucket: NotifiedBucket
    object: NotifiedObject


class NotificationRecord(BaseModel):
    eventName: str
    eventTime: datetime
    s3: NotifiedEntity


class S3Notification(BaseModel):
    """The fields of an S3 event notification the dispatcher uses (Powertools' S3Model also requires fields, such
    as ``userIdentity``, that the local stack's S3 does not send and that we never read)."""

    Records: list[NotificationRecord]


class MalformedNotification(ValueError):
    """A message that is not an S3 notification; redelivered, then dead-lettered."""


def uploads_in(body: str) -> list[Upload]:
    """The uploads an S3 notification announces: none for S3's ``s3:TestEvent``; keys decoded from URL form."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
            return []
        notification = S3Notification.model_validate(message)
    except ValueError as error:
        raise MalformedNotification(_describe(error)) from None
    return [
        Upload(
            bucket=record.s3.bucket.name,
            key=unquote_plus(record.s3.object.key),
            size=record.s3.object.size,
            etag=record.s3.object.eTag,
            version_id=record.s3.object.versionId,
            sequencer=record.s3.object.sequencer,
            event_time=record.eventTime,
        )
        for record in notification.Records
        if record.eventName.startswith("ObjectCreated")
    ]


def _describe(error: ValueError) -> str:
    """Say what is wrong without echoing the message, which may contain an object key."""
    if isinstance(error, ValidationError):
        places = sorted({".".join(map(str, e["loc"])) for e in error.errors(include_input=False)})
        return f"not an S3 notification: {error.error_count()} problem(s) at {', '.join(places)}"
    return "not an S3 notification: the body is not JSON"


@lambda_entry
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = Settings.model_validate(os.environ)

    def dispatch(record: SQSRecord) -> None:
        count("MessagesReceived")
        for upload in uploads_in(record.body):
            count("UploadsReceived")
            outcome = start_pipeline(clients.stepfunctions(), settings.state_machine_arn, settings.upload_prefix, upload)
            logger.info("upload dispatched", extra={"upload_id": upload.upload_id, "object_hash": upload.object_hash,
                                                    "outcome": outcome.value})
            count(_METRIC[outcome])

    return process_partial_response(event=event, record_handler=dispatch, processor=processor, context=context)

