"""The Infer step: preprocess the validated upload as the contract says, send it to the SageMaker endpoint and read
its answer by the contract."""

from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError
from pydantic import BaseModel

from lesionflow.contracts import ModelContract
from lesionflow.errors import (
    EndpointThrottled,
    EndpointUnavailable,
    ImageRejected,
    ModelNotReady,
    ModelRequestRejected,
    ModelResponseInvalid,
)
from lesionflow.preprocessing import PREPROCESSING_VERSION, model_input
from lesionflow.state import PipelineState
from lesionflow.storage import read_upload

DECISION_SUPPORT_NOTE = "Decision support, not a diagnosis: a clinician must confirm any finding."
_THROTTLED = {"ThrottlingException", "TooManyRequestsException"}
_UNAVAILABLE = {"ServiceUnavailable", "InternalFailure", "InternalServerError", "InternalDependencyException"}


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
        translated = _translate(error)
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


def _translate(error: ClientError) -> Exception | None:
    """The transient or permanent pipeline error for a SageMaker failure; None for anything unexpected."""
    code = error.response["Error"]["Code"]
    status = error.response.get("OriginalStatusCode") or error.response["ResponseMetadata"].get("HTTPStatusCode", 0)
    if code == "ModelNotReadyException":  # also a 429: look at the code first
        return ModelNotReady("the endpoint's model is not ready yet")
    if code in _THROTTLED or status == 429:
        return EndpointThrottled("the endpoint is throttling requests")
    if code in _UNAVAILABLE or status >= 500:
        return EndpointUnavailable(f"the endpoint failed ({code}, status {status})")
    if code == "ModelError":
        return ModelRequestRejected(f"the model container refused the request (status {status})")
    return None


def infer(state: PipelineState, s3, sagemaker, endpoint_name: str, contract: ModelContract,
          review_threshold: float) -> PipelineState:
    """Return the state concluded with a SUCCEEDED record: top label, its confidence and every label's score;
    ``needs_review`` when the top score is under the threshold (or the model gives no probabilities), so that a
    person looks at it. An image that cannot be decoded after all is concluded REJECTED, without calling the model."""
    if state.image is None:
        raise ValueError("infer needs the facts of a validated image")
    try:  # read again pinned to the version validation saw; only its header was checked, so decoding can still fail
        body = model_input(read_upload(s3, state.upload, state.image.size), state.image.format, contract)
    except ImageRejected as rejection:
        return state.rejected(rejection)
    answer = invoke_endpoint(sagemaker, endpoint_name, contract, body)
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
        preprocessing_version=PREPROCESSING_VERSION,
    )
    return state.concluded(record)
