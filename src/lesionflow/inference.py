"""The InvokeModel step: send the preprocessed input to the SageMaker endpoint and read its answer by the contract."""

import re

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError
from pydantic import BaseModel

from lesionflow.contracts import ModelContract
from lesionflow.errors import (
    EndpointAccessDenied,
    EndpointMissing,
    EndpointThrottled,
    EndpointUnavailable,
    ModelNotReady,
    ModelRequestRejected,
    ModelResponseInvalid,
)
from lesionflow.handover import discard, take
from lesionflow.observability import count, logger
from lesionflow.state import PipelineState

DECISION_SUPPORT_NOTE = "Decision support, not a diagnosis: a clinician must confirm any finding."
_THROTTLED = {"ThrottlingException", "TooManyRequestsException"}
_UNAVAILABLE = {"ServiceUnavailable", "InternalFailure", "InternalServerError", "InternalDependencyException"}
# The runtime API models one ValidationError (400) for every invalid request; ValidationException is the spelling of
# SageMaker's other APIs, accepted in case the runtime ever answers with it.
_VALIDATION = {"ValidationError", "ValidationException"}
# The runtime gives a missing endpoint no error code of its own, so after the code and the 400 only its message tells
# it from another invalid request: "Endpoint <name> of account <account> not found." (as real SageMaker answers in
# AWS's own issue threads, aws/amazon-sagemaker-examples#293 and #559). No distinct runtime message is documented for
# an endpoint that exists but is not InService: `lesionflow check` finds those with DescribeEndpoint.
_ENDPOINT_NOT_FOUND = re.compile(r"\bEndpoint \S+ of account \S+ not found\b", re.IGNORECASE)


class EndpointAnswer(BaseModel):
    """The model's answer and what the endpoint said about who gave it."""

    body: bytes
    variant: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_disclaimer: str | None = None


def invoke_endpoint(sagemaker, endpoint_name: str, contract: ModelContract, body: bytes) -> EndpointAnswer:
    """One InvokeEndpoint call, its failures translated to the errors the state machine retries or records."""
    try:
        response = sagemaker.invoke_endpoint(
            EndpointName=endpoint_name, ContentType=contract.content_type, Accept=contract.accept, Body=body
        )
    except (ReadTimeoutError, ConnectionError) as error:
        raise EndpointUnavailable(f"the endpoint did not answer in time ({type(error).__name__})") from error
    except ClientError as error:
        translated = _translate(error, endpoint_name)
        if translated is None:
            raise
        raise translated from error
    attributes = _custom_attributes(response.get("CustomAttributes", ""))
    return EndpointAnswer(
        body=response["Body"].read(),
        variant=response.get("InvokedProductionVariant"),
        model_name=attributes.get("model"),
        model_version=attributes.get("version"),
        model_disclaimer=attributes.get("disclaimer"),
    )


def _custom_attributes(header: str) -> dict[str, str]:
    """``key=value;key=value`` as a model container may send in X-Amzn-SageMaker-Custom-Attributes."""
    pairs = (part.split("=", 1) for part in header.split(";") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def _translate(error: ClientError, endpoint_name: str) -> Exception | None:
    """The transient or permanent pipeline error for a SageMaker failure; None for anything unexpected."""
    code = error.response["Error"]["Code"]
    status = error.response.get("OriginalStatusCode") or error.response["ResponseMetadata"].get("HTTPStatusCode", 0)
    if code in _VALIDATION and status == 400:
        if _ENDPOINT_NOT_FOUND.search(error.response["Error"].get("Message", "")):
            return EndpointMissing(f"the model endpoint {endpoint_name} does not exist or is not in service")
        # Any other ValidationError is SageMaker refusing this request as invalid (too large a body, a content type
        # the endpoint does not take): permanent for this input and contract, as ModelRequestRejected says. Its
        # message is not repeated: the record needs the kind of failure, not SageMaker's words about the request.
        return ModelRequestRejected(f"SageMaker refused the request as invalid ({code}, status {status})")
    if code == "ModelNotReadyException":  # also a 429: look at the code first
        return ModelNotReady("the endpoint's model is not ready yet")
    if code in _THROTTLED or status == 429:
        return EndpointThrottled("the endpoint is throttling requests")
    if code in _UNAVAILABLE or status >= 500:
        return EndpointUnavailable(f"the endpoint failed ({code}, status {status})")
    if code == "ModelError":
        return ModelRequestRejected(f"the model container refused the request (status {status})")
    if code in {"AccessDeniedException", "AccessDenied"}:  # its message names the role and the endpoint's ARN
        return EndpointAccessDenied(f"the caller may not invoke the model endpoint {endpoint_name} ({code})")
    return None


def invoke_model(state: PipelineState, s3, sagemaker, endpoint_name: str, contract: ModelContract,
                 review_threshold: float) -> PipelineState:
    """Return the state concluded with a SUCCEEDED record: top label, its confidence and every label's score;
    ``needs_review`` when the top score is under the threshold (or the model gives no probabilities), so that a
    person looks at it. A stored model input is deleted once the endpoint has answered (best effort); until then it
    stays for the state machine's retries."""
    if state.model_input is None:
        raise ValueError("invoke_model needs the model input Preprocess handed over")
    made = state.model_input
    body = take(s3, state.upload.bucket, made)
    answer = invoke_endpoint(sagemaker, endpoint_name, contract, body)
    if (refused := discard(s3, state.upload.bucket, made)) is not None:
        count("ModelInputsLeftForLifecycle")
        logger.warning("stored model input not deleted; the lifecycle rule expires it", extra={"error": refused})
    scores = contract.read_scores(answer.body)
    label = max(scores, key=scores.__getitem__)
    needs_review = scores[label] < review_threshold or not contract.response.gives_confidence
    record = state.record(
        status="SUCCEEDED",
        label=label,
        confidence=scores[label],
        needs_review=needs_review,
        note=DECISION_SUPPORT_NOTE,
        scores=scores,
        prediction_uri=state.prediction_uri,
        endpoint_name=endpoint_name,
        model_variant=answer.variant,
        model_name=answer.model_name,
        model_version=answer.model_version,
        model_disclaimer=answer.model_disclaimer,
        model_contract=contract.name,
        preprocessing_version=made.preprocessing_version,
    )
    return state.concluded(record)
