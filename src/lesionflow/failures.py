"""The RecordFailure step: the FAILED record of a run that could not finish, built by the one record model."""

from lesionflow.state import FailureNotice, PipelineState


def record_failure(notice: FailureNotice) -> PipelineState:
    """The state concluded FAILED with the reason the state machine gives (the error's name, never its cause)."""
    state = notice.state()
    return state.concluded(state.record(status="FAILED", reason=notice.reason))
