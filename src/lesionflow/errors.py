"""Every exception the pipeline raises on purpose, in one place.

The class names are part of the state machine's contract: Step Functions matches ``Retry`` and ``Catch`` on the
error name a Lambda raises, so renaming a class here means changing ``statemachine/pipeline.asl.json`` too.
"""


from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class RejectionClass(StrEnum):
    """Why an input was rejected, in a few words fit for a metric dimension and a query."""

    EMPTY = "empty"
    TOO_LARGE = "too-large"
    TOO_SMALL = "too-small"
    FORMAT = "unsupported-format"
    BOMB = "decompression-bomb"
    DAMAGED = "damaged"
    TOO_COMPLEX = "too-complex"
    GONE = "gone-before-processing"


class LesionFlowError(Exception):
    """Base class: an expected failure with a short, human-readable message (no object keys, no image bytes)."""


class ImageRejected(LesionFlowError):
    """The input is not a usable image. Permanent: retrying cannot help, so it becomes a REJECTED record."""

    def __init__(self, reason: str, rejection_class: RejectionClass):
        super().__init__(reason)
        self.rejection_class = rejection_class


class EndpointThrottled(LesionFlowError):
    """The model endpoint refused the request for capacity reasons. Transient: retried with backoff."""


class EndpointUnavailable(LesionFlowError):
    """The model endpoint or its container failed with a 5xx or a timeout. Transient: retried with backoff."""


class ModelNotReady(LesionFlowError):
    """The endpoint exists but its model is still loading or scaling from zero. Transient: retried with backoff."""


class EndpointMissing(LesionFlowError):
    """The model endpoint the pipeline is configured to call does not exist (or is not in service). Permanent: no
    retry can create it; the FAILED record tells a person to run ``lesionflow check``."""


class EndpointAccessDenied(LesionFlowError):
    """The invoke-model function's role may not invoke the endpoint (its ``sagemaker:InvokeEndpoint`` grant names
    ``EndpointName`` in this region, lower case). Permanent: a deploy must fix the grant or the name."""


class StorageUnreachable(LesionFlowError):
    """S3 could not be reached, or did not answer in time, after the SDK's own retries. Transient. Unlike botocore's
    connection and timeout errors, whose messages quote the request's URL, it never holds the object key."""


class ModelInputMissing(LesionFlowError):
    """The model input Preprocess handed over cannot be read back (expired, deleted, or not the bytes it made).
    Permanent for this run: the upload must be processed again."""


class ModelRequestRejected(LesionFlowError):
    """The endpoint rejected the request as invalid (4xx). Permanent for this input and contract."""


class ModelResponseInvalid(LesionFlowError):
    """The endpoint answered, but not in the shape the model contract promises. Permanent."""


class InvalidInput(LesionFlowError):
    """An event, environment or message that does not have the expected shape. Its message names the fields at
    fault, never their values: those may be object keys, or credentials from the environment."""


def parse(model: type[Model], data, what: str) -> Model:
    """``model.model_validate(data)``, failing with an InvalidInput that does not echo ``data``."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        places = sorted({".".join(map(str, problem["loc"])) for problem in error.errors(include_input=False)})
        raise InvalidInput(f"{what}: {error.error_count()} problem(s) at {', '.join(places)}") from None
