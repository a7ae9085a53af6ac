"""The Powertools logger and metrics, created once and shared by every handler.

Service name, namespace and log level come from the ``POWERTOOLS_*`` variables the template sets in ``Globals``.
Fields logged are hashes, counts and error class names only: object keys may name a patient.

Tracing is X-Ray's own (``Tracing: Active`` on every function and on the state machine), not Powertools' ``Tracer``:
the Tracer's botocore patching records S3 request parameters, object keys included, in trace subsegments, and
importing aws_xray_sdk multiplies this module's cold-start initialisation (``make bench`` measures it).
"""

from functools import wraps
from time import perf_counter

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pydantic import BaseModel

from lesionflow.errors import parse
from lesionflow.state import PipelineState

logger = Logger()
metrics = Metrics()


def lambda_entry(handler):
    """The decorators every handler gets, in Powertools' recommended order. Keys appended for one invocation (an
    upload's hashes) are cleared before the next, so no log line carries another upload's names."""
    return logger.inject_lambda_context(metrics.log_metrics(capture_cold_start_metric=True)(handler), clear_state=True)


def count(name: str, dimension: tuple[str, str] | None = None) -> None:
    """Add 1 to a metric; with a dimension (low-cardinality values only) it is flushed on its own."""
    if dimension is None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, default_dimensions=metrics.default_dimensions) as one:
        one.add_dimension(name=dimension[0], value=dimension[1])


def pipeline_step(name: str, accepts: type[BaseModel] = PipelineState):
    """Wrap a state machine task ``step(state, context) -> state`` as a Lambda handler.

    Parses the state document (or another input with an ``upload``, as ``accepts`` says), tags logs with the upload's hashes (correlation id = upload id, which is also the
    execution name), times the step (``<name>Latency``), counts the verdict it reaches or the error it raises
    (``<name>Errors``; Step Functions then retries or records FAILED), and returns the document for the next state.
    """

    def decorate(step):
        @lambda_entry
        @wraps(step)
        def handler(event: dict, context) -> dict:
            state = parse(accepts, event, f"{name} input is not the pipeline state document")
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
            if after.result is not None and getattr(state, "result", None) is None:
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
        if record.get("needs_review"):
            count("PredictionsNeedingReview")
