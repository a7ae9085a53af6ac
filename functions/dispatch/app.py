"""Dispatch: SQS batch of S3 notifications -> one Step Functions execution per uploaded object version of the
stack's own bucket (``lesionflow.dispatch``)."""

import json
import os
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.dispatch import Claim, DispatchOutcome, Pipeline, dispatch
from lesionflow.errors import InvalidInput, parse
from lesionflow.observability import count, lambda_entry, logger

processor = BatchProcessor(event_type=EventType.SQS)
MAX_RECORDS_PER_MESSAGE = 10
HASH_KEY_CACHE_SECONDS = 3600  # the key never changes (that would rename every upload): one fetch per environment
_METRIC = {
    DispatchOutcome.STARTED: "UploadsDispatched",
    DispatchOutcome.DUPLICATE: "DuplicatesSkipped",
    DispatchOutcome.OUTSIDE_PREFIX: "OutsidePrefixIgnored",
    DispatchOutcome.FOREIGN_BUCKET: "ForeignBucketDropped",
    DispatchOutcome.FOLDER_MARKER: "FolderMarkersIgnored",
    DispatchOutcome.NOT_FOUND: "UploadsNotFound",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    bucket: str = Field(alias="BUCKET_NAME", min_length=3)
    upload_prefix: str = Field(alias="UPLOAD_PREFIX", min_length=1)
    hash_key_secret_arn: str = Field(alias="HASH_KEY_SECRET_ARN", min_length=1)


class NotifiedBucket(BaseModel):
    name: str


class NotifiedObject(BaseModel):
    """Only what names the version. Size, ETag, sequencer and the event's time are not read: S3 is asked instead."""

    key: str
    versionId: str | None = None


class NotifiedEntity(BaseModel):
    bucket: NotifiedBucket
    object: NotifiedObject


class NotificationRecord(BaseModel):
    eventName: str
    s3: NotifiedEntity


class S3Notification(BaseModel):
    """The fields of an S3 event notification the dispatcher uses (Powertools' S3Model also requires fields, such
    as ``userIdentity``, that a backfill's message does not carry and that we never read)."""

    # S3 and `lesionflow backfill` put one record in a message. A message claiming thousands (a 1 MiB message holds
    # about 10,000) would cost a HEAD each and could time the whole batch out: refused, so it ends in the DLQ.
    Records: list[NotificationRecord] = Field(max_length=MAX_RECORDS_PER_MESSAGE)


def claims_in(body: str) -> list[Claim]:
    """The object versions an S3 notification says were created: none for S3's ``s3:TestEvent``; keys decoded
    from URL form."""
    try:
        message = json.loads(body)
    except ValueError:
        raise InvalidInput("not an S3 notification: the body is not JSON") from None
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []
    notification = parse(S3Notification, message, "not an S3 notification")
    return [
        Claim(bucket=record.s3.bucket.name, key=unquote_plus(record.s3.object.key),
              version_id=record.s3.object.versionId)
        for record in notification.Records
        if record.eventName.startswith("ObjectCreated")
    ]


@lambda_entry
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = parse(Settings, os.environ, "DispatchFunction environment")
    pipeline = Pipeline(
        bucket=settings.bucket, upload_prefix=settings.upload_prefix, state_machine_arn=settings.state_machine_arn,
        hash_key=parameters.get_secret(settings.hash_key_secret_arn, max_age=HASH_KEY_CACHE_SECONDS).encode(),
    )

    def handle(record: SQSRecord) -> None:
        count("MessagesReceived")
        for claim in claims_in(record.body):
            count("UploadsReceived")
            outcome, upload = dispatch(claim, pipeline, clients.s3(), clients.stepfunctions())
            names = {"upload_id": upload.upload_id, "object_hash": upload.object_hash} if upload else {}
            logger.info("upload dispatched" if upload else "notification dropped",
                        extra=names | {"outcome": outcome.value})
            count(_METRIC[outcome])

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
