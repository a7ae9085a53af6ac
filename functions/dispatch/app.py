"""Dispatch: SQS batch of S3 notifications -> one Step Functions execution per uploaded object version."""

import json
import os
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from lesionflow import clients
from lesionflow.dispatch import DispatchOutcome, start_pipeline
from lesionflow.observability import logger, metrics, tracer
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


def uploads_in(body: str) -> list[Upload]:
    """The uploads an S3 notification announces: none for S3's ``s3:TestEvent``; keys decoded from URL form."""
    message = json.loads(body)
    if message.get("Event") == "s3:TestEvent":
        return []
    return [
        Upload(
            bucket=record.s3.bucket.name,
            key=unquote_plus(record.s3.object.key),
            size=int(record.s3.object.size or 0),
            etag=record.s3.object.eTag,
            version_id=record.s3.object.versionId,
            sequencer=record.s3.object.sequencer,
            event_time=record.eventTime,
        )
        for record in S3Model.model_validate(message).Records
        if record.eventName.startswith("ObjectCreated")
    ]


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    settings = Settings.model_validate(os.environ)

    def dispatch(record: SQSRecord) -> None:
        for upload in uploads_in(record.body):
            outcome = start_pipeline(clients.stepfunctions(), settings.state_machine_arn, settings.upload_prefix, upload)
            logger.info("upload dispatched", extra={"upload_id": upload.upload_id, "object_hash": upload.object_hash,
                                                    "outcome": outcome.value})
            metrics.add_metric(name=_METRIC[outcome], unit=MetricUnit.Count, value=1)

    return process_partial_response(event=event, record_handler=dispatch, processor=processor, context=context)

