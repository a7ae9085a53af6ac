"""Starting one pipeline execution per upload version, exactly once.

The execution name is the upload id, so a duplicate delivery of the same notification names the same execution:
Step Functions (standard workflows) refuses a second start, and we count that as work already done.
"""

import json
from enum import StrEnum

from botocore.exceptions import ClientError

from lesionflow.uploads import Upload


class DispatchOutcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    OUTSIDE_PREFIX = "outside_prefix"


def execution_input(upload: Upload) -> str:
    """The execution input: references only (never image bytes), and identical for every delivery of one version."""
    return json.dumps({"upload": upload.model_dump(mode="json")}, sort_keys=True)


def start_pipeline(stepfunctions, state_machine_arn: str, upload_prefix: str, upload: Upload) -> DispatchOutcome:
    """Start the state machine for ``upload`` unless it lies outside the upload prefix or was started already."""
    if not upload.key.startswith(upload_prefix):
        return DispatchOutcome.OUTSIDE_PREFIX
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn, name=upload.upload_id, input=execution_input(upload)
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return DispatchOutcome.DUPLICATE
        raise
    return DispatchOutcome.STARTED
