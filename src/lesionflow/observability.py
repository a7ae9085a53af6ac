"""The Powertools logger and metrics, created once and shared by every handler, and the optional tracer.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables the template sets in ``Globals``.
Fields logged are hashes, counts and error class names only: object keys may name a patient.

Tracing: Lambda and the state machine always send X-Ray segments (``Tracing: Active``), which costs nothing at
start-up. Powertools' ``Tracer`` adds subsegments for every AWS call, but importing it (aws_xray_sdk) multiplies the
cold-start initialisation of this module (see ``make bench``); it is created only when the template's
``TraceAwsCalls`` parameter turns it on (``POWERTOOLS_TRACE_DISABLED=false``).
"""

import os
from functools import wraps
from time import perf_counter

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lesionflow.state import PipelineState

logger = Logger()
metrics = Metrics()


def _traced():
    """``tracer.capture_lambda_handler`` when AWS-call tracing is on; otherwise leave the handler as it is."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").lower() in ("true", "1"):
        return lambda handler: handler
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(capture_response=False)


traced = _traced()


def lambda_entry(handler):
    """The decorators every handler gets, in Powertools' recommended order."""
    return logger.inject_lambda_context(metrics.log_metrics(capture_cold_start_metric=True)(traced(handler)))


def count(name: str, dimension: tuple[str, str] | None = None) -> None:
    """Add 1 to a metric; with a dimension (low-cardinality values only) it is flushed on its own."""
    if dimension is None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions) as one:
        one.add_dimension(name=dimension[0], value=dimension[1])


def pipeline_step(name: str):
    """Wrap a state machine task ``step(state, context) -> state`` as a Lambda handler.

    Parses the state document, tags logs with the upload's hashes (correlation id = upload id, which is also the
    execution name), times the step (``<name>Latency``), counts the verdict it reaches or the error it raises
    (``<name>Errors``; Step Functions then retries or records FAILED), and returns the document for the next state.
    """

    def decorate(step):
        @lambda_entry
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
                count(f"{name}Errors")
                raise
            metrics.add_metric(name=f"{name}Latency", unit=MetricUnit.Milliseconds,
                               value=round((perf_counter() - started) * 1000, 1))
            if after.result is not None and state.result is None:
                _count_verdict(after.result.record, name)
            return after.to_output()

        return handler

    return decorate


def _count_verdict(record: dict, step: str) -> None:
    logger.info("upload concluded", extra={"status": record["status"], "step": step})
    if record["status"] == "REJECTED":
        count("ImagesRejected", ("rejection_class", record["rejection_class"]))
    elif record["status"] == "SUCCEEDED":
        count("PredictionsMade")
        count("PredictionsByLabel", ("label", record["label"]))
        if record.get("low_confidence"):
            count("LowConfidencePredictions")
