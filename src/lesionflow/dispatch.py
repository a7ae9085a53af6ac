"""Starting one pipeline execution per upload version, exactly once, and only for the stack's own uploads.

A queue message is a claim, not a fact: anyone allowed to send to the ingest queue (``lesionflow backfill``'s users)
could name another bucket, a key outside the upload prefix, a version that never existed, a size of 0 or a time in
the future. So a message is trusted for three things only: the bucket (which must be the stack's), the key (which
must be under the upload prefix) and, optionally, the version id. Everything else about the upload comes from S3
(``storage.describe``), so that S3's notification, a redelivery, a multipart upload's notifications, a backfill and
a replayed or forged message about the same object version all arrive at the same identity.

The execution name is the upload id, so every start for the same version names the same execution: Step Functions
(standard workflows) refuses a second start, and we count that as work already done.
"""

import json
from enum import StrEnum

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from lesionflow.storage import describe
from lesionflow.uploads import Upload


class DispatchOutcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    OUTSIDE_PREFIX = "outside_prefix"
    FOREIGN_BUCKET = "foreign_bucket"
    FOLDER_MARKER = "folder_marker"
    NOT_FOUND = "not_found"


class Claim(BaseModel):
    """What a message says was created: which object, and perhaps which version of it."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    version_id: str | None = None


class Pipeline(BaseModel):
    """The stack a dispatcher starts work for."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    upload_prefix: str
    state_machine_arn: str
    hash_key: bytes


def execution_input(upload: Upload) -> str:
    """The execution input: references only (never image bytes), and identical for every delivery of one version."""
    return json.dumps({"upload": upload.model_dump(mode="json")}, sort_keys=True)


def dispatch(claim: Claim, pipeline: Pipeline, s3, stepfunctions) -> tuple[DispatchOutcome, Upload | None]:
    """Start the state machine for the object version ``claim`` names, if it is one of the stack's own uploads and
    S3 holds it; return what happened and, when S3 holds it, the upload as S3 describes it."""
    if claim.bucket != pipeline.bucket:
        return DispatchOutcome.FOREIGN_BUCKET, None
    if not claim.key.startswith(pipeline.upload_prefix):
        return DispatchOutcome.OUTSIDE_PREFIX, None
    if claim.key.endswith("/"):  # the console's "create folder" (an empty object named like a folder): no upload
        return DispatchOutcome.FOLDER_MARKER, None
    version = describe(s3, claim.bucket, claim.key, claim.version_id)
    if version is None:
        return DispatchOutcome.NOT_FOUND, None
    upload = version.identified(pipeline.hash_key)
    return start_pipeline(stepfunctions, pipeline.state_machine_arn, upload), upload


def start_pipeline(stepfunctions, state_machine_arn: str, upload: Upload) -> DispatchOutcome:
    """Start the state machine for ``upload`` unless it was started already."""
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=upload.upload_id, input=execution_input(upload)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return DispatchOutcome.DUPLICATE
        raise
    return DispatchOutcome.STARTED
