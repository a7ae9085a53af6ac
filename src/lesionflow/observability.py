"""The Powertools logger, metrics and tracer, created once and shared by every handler.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables the template sets in ``Globals``.
Fields logged are hashes and counts only: object keys may name a patient.
"""

from functools import wraps
from time import perf_counter

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from lesionflow.state import PipelineState

logger = Logger()
metrics = Metrics()
tracer = Tracer()

_VERDICT_METRIC = {"SUCCEEDED": "PredictionsMade", "REJECTED": "ImagesRejected"}


def pipeline_step(name: str):
    """Wrap a state machine task ``step(state, context) -> state`` as a Lambda handler.

    Parses the state document, tags logs with the upload's hashes (correlation id = upload id, which is also the
    execution name), times the step (``<name>Latency``), counts the verdict it reaches or the error it raises
    (``<name>Errors``; Step Functions then retries or records FAILED), and returns the document for the next state.
    """

    def decorate(step):
        @logger.inject_lambda_context
        @metrics.log_metrics(capture_cold_start_metric=True)
        @tracer.capture_lambda_handler(capture_response=False)
        @wraps(step)
        def handler(event: dict, context) -> dict:
            state = PipelineState.model_validate(event)
            logger.set_correlation_id(state.upload.upload_id)
            logger.append_keys(object_hash=state.upload.object_hash)
            started = perf_counter()
            try:
                after = step(state, context)
            except Exception as error:
                logger.warning("step failed", extra={"step": name, "error": type(error).__name__})
                metrics.add_metric(name=f"{name}Errors", unit=MetricUnit.Count, value=1)
                raise
            metrics.add_metric(name=f"{name}Latency", unit=MetricUnit.Milliseconds,
                               value=round((perf_counter() - started) * 1000, 1))
            if after.result is not None and state.result is None:
                status = after.result.record["status"]
                logger.info("upload concluded", extra={"status": status, "step": name})
                metrics.add_metric(name=_VERDICT_METRIC[status], unit=MetricUnit.Count, value=1)
            return after.to_output()

        return handler

    return decorate
