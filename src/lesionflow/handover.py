"""Handing the model input from Preprocess to InvokeModel, so that InvokeModel's retries never decode again.

Small inputs travel inline, base64 in the state document: the state machine's data is encrypted with the stack's data
key, and Step Functions caps a state at 256 KiB. The threshold leaves half of that for the rest of the document and
for an error's cause (up to 32 KiB) that a Catch adds beside it. Larger inputs are one S3 object under the hand-over
prefix (never the upload prefix, so it cannot start the pipeline), encrypted with the data key by the bucket's
default, and deleted by InvokeModel once the endpoint has answered; one that a run leaves behind is expired by the
lifecycle rule (a day as the current version, a day as a noncurrent one, each rounded by S3 to the next midnight UTC:
a few days at most). ``make bench`` measures what each contract's input weighs and so which way it
travels.
"""

from base64 import b64decode, b64encode
from hashlib import sha256

from botocore.exceptions import ClientError

from lesionflow.errors import ModelInputMissing
from lesionflow.state import ModelInput
from lesionflow.storage import GONE
from lesionflow.uploads import Upload

INLINE_MAX_BYTES = 96 * 1024  # base64 makes it 128 KiB: half of a state's 256 KiB
# InvokeModel may not list the bucket (that would show it the upload keys), so S3 answers 403 for a missing input
_UNREADABLE = GONE | {"AccessDenied", "403"}


def hand_over(s3, upload: Upload, body: bytes, prefix: str, preprocessing_version: str) -> ModelInput:
    """The model input as InvokeModel will find it: inline when it is at most ``INLINE_MAX_BYTES``, else stored."""
    made = {"size": len(body), "sha256": sha256(body).hexdigest(), "preprocessing_version": preprocessing_version}
    if len(body) <= INLINE_MAX_BYTES:
        return ModelInput(**made, inline=b64encode(body).decode())
    key = f"{prefix}{upload.upload_id}"  # named by the upload id, never by the object key
    response = s3.put_object(Bucket=upload.bucket, Key=key, Body=body)
    return ModelInput(**made, key=key, version_id=response.get("VersionId"))


def take(s3, bucket: str, model_input: ModelInput) -> bytes:
    """The bytes Preprocess handed over, exactly those (checked against their sha256)."""
    if model_input.inline is not None:
        body = b64decode(model_input.inline, validate=True)
    else:
        try:
            body = s3.get_object(Bucket=bucket, Key=model_input.key, **_pinned(model_input))["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in _UNREADABLE:
                raise ModelInputMissing("the preprocessed model input cannot be read: expired, already used, or not "
                                        "readable by InvokeModel") from error
            raise
    if sha256(body).hexdigest() != model_input.sha256:
        raise ModelInputMissing("the preprocessed model input does not match what Preprocess made")
    return body


def discard(s3, bucket: str, model_input: ModelInput) -> str | None:
    """Delete a stored model input for good (its version, not behind a delete marker); nothing to do inline.

    Best effort: the endpoint has answered by now, and a failed delete must not turn that answer into a FAILED
    record (the lifecycle rule removes the object). Returns the error code of a delete that failed, else None.
    """
    if model_input.key is None:
        return None
    try:
        s3.delete_object(Bucket=bucket, Key=model_input.key, **_pinned(model_input))
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def _pinned(model_input: ModelInput) -> dict:
    """The request parameter naming the stored version Preprocess wrote (none on an unversioned bucket)."""
    return {"VersionId": model_input.version_id} if model_input.version_id else {}
