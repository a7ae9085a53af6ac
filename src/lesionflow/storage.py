"""Reading uploads from S3, pinned to the exact version S3 announced."""

from botocore.exceptions import ClientError

from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.uploads import Upload

# The codes of a GET of a version that is not there. 405: the version asked for is a delete marker (S3 answers
# MethodNotAllowed for a GET of one).
GONE = {"NoSuchKey", "NoSuchVersion", "404", "MethodNotAllowed", "405"}
_CHANGED = {"PreconditionFailed", "412"}


def read_upload(s3, upload: Upload, max_bytes: int) -> bytes:
    """The bytes of exactly the notified version: by version id when versioned, else guarded by the ETag.

    An object deleted or overwritten since the notification is a permanent rejection with the reason, not a retry.
    """
    pin = {"VersionId": upload.version_id} if upload.version_id else {"IfMatch": upload.etag} if upload.etag else {}
    try:
        response = s3.get_object(Bucket=upload.bucket, Key=upload.key, **pin)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in GONE:
            raise ImageRejected(
                "the uploaded object no longer exists (deleted before processing)", RejectionClass.GONE
            ) from error
        if code in _CHANGED:
            raise ImageRejected("the uploaded object was overwritten before processing", RejectionClass.GONE) from error
        raise
    body = response["Body"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ImageRejected(f"the file is larger than the limit of {max_bytes} bytes", RejectionClass.TOO_LARGE)
    return body
