"""RecordFailure: the FAILED record of a run that could not finish, in the same schema as every other record."""

from lesionflow.failures import record_failure
from lesionflow.observability import pipeline_step
from lesionflow.state import FailureNotice, PipelineState


@pipeline_step("RecordFailure", accepts=FailureNotice)
def lambda_handler(notice: FailureNotice, context) -> PipelineState:
    return record_failure(notice)
