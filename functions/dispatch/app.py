"""Dispatch: SQS batch of S3 notifications -> one Step Functions execution per uploaded object version."""

import json
import os
from datetime import datetime
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.dispatch import DispatchOutcome, start_pipeline
from lesionflow.errors import InvalidInput, parse
from lesionflow.observability import count, lambda_entry, logger
from lesionflow.uploads import ObjectVersion

processor = BatchProcessor(event_type=EventType.SQS)
HASH_KEY_CACHE_SECONDS = 3600  # the key never changes (that would rename every upload): one fetch per environment
_METRIC = {
    DispatchOutcome.STARTED: "UploadsDispatched",
    DispatchOutcome.DUPLICATE: "DuplicatesSkipped",
    DispatchOutcome.OUTSIDE_PREFIX: "OutsidePrefixIgnored",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    upload_prefix: str = Field(alias="UPLOAD_PREFIX", min_length=1)
    hash_key_secret_arn: str = Field(alias="HASH_KEY_SECRET_ARN", min_length=1)


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


def uploads_in(body: str) -> list[ObjectVersion]:
    """The uploads an S3 notification announces: none for S3's ``s3:TestEvent``; keys decoded from URL form."""
    try:
        message = json.loads(body)
    except ValueError:
        raise InvalidInput("not an S3 notification: the body is not JSON") from None
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    notification = parse(S3Notification, message, "not an S3 notification")
    return [
        ObjectVersion(
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


@lambda_entry
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = parse(Settings, os.environ, "DispatchFunction environment")
    hash_key = parameters.get_secret(settings.hash_key_secret_arn, max_age=HASH_KEY_CACHE_SECONDS).encode()

    def dispatch(record: SQSRecord) -> None:
        count("MessagesReceived")
        for version in uploads_in(record.body):
            upload = version.identified(hash_key)
            count("UploadsReceived")
            outcome = start_pipeline(clients.stepfunctions(), settings.state_machine_arn, settings.upload_prefix, upload)
            logger.info("upload dispatched", extra={"upload_id": upload.upload_id, "object_hash": upload.object_hash,
                                                    "outcome": outcome.value})
            count(_METRIC[outcome])

    return process_partial_response(event=event, record_handler=dispatch, processor=processor, context=context)

