"""Reading uploads from S3: what a version is (from S3 itself), and its bytes, pinned to exactly that version."""

from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from lesionflow.errors import ImageRejected, RejectionClass, StorageUnreachable
from lesionflow.uploads import ObjectVersion, Upload

# The codes of a GET of a version that is not there. 405: the version asked for is a delete marker (S3 answers
# MethodNotAllowed for a GET of one).
GONE = {"NoSuchKey", "NoSuchVersion", "404", "MethodNotAllowed", "405"}
_CHANGED = {"PreconditionFailed", "412"}
# A HEAD has no body, so its errors are bare status codes. 400 for a HEAD naming a version: an id S3 cannot parse
# (a forged one); without a version id a 400 is some other fault, and raised.
_UNPARSEABLE_VERSION = {"400", "InvalidArgument"}


@contextmanager
def _key_kept_out():
    """botocore's connection and timeout errors quote the request's URL, and so the object key: replace them."""
    try:
        yield
    except BotoCoreError as error:
        raise StorageUnreachable(f"S3 did not answer ({type(error).__name__})") from None


def describe(s3, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion | None:
    """The version S3 holds under ``key`` (``version_id``'s, else the current one) as S3 itself describes it, or None
    when there is no such version: a message names an object, only S3 says what it is.

    The version id S3 calls ``null`` (an object stored before versioning was enabled) is kept as no version id, as a
    listing reports it.
    """
    try:
        with _key_kept_out():
            head = s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in GONE or (version_id and code in _UNPARSEABLE_VERSION):
            return None
        raise
    version = head.get("VersionId")
    return ObjectVersion(bucket=bucket, key=key, size=head["ContentLength"], etag=head["ETag"].strip('"'),
                         version_id=None if version in (None, "null") else version, last_modified=head["LastModified"])


def read_upload(s3, upload: Upload, max_bytes: int) -> bytes:
    """The bytes of exactly the notified version: by version id when versioned, else guarded by the ETag.

    An object deleted or overwritten since the notification is a permanent rejection with the reason, not a retry.
    """
    pin = {"VersionId": upload.version_id} if upload.version_id else {"IfMatch": upload.etag} if upload.etag else {}
    try:
        with _key_kept_out():
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
    with _key_kept_out():
        body = response["Body"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ImageRejected(f"the file is larger than the limit of {max_bytes} bytes", RejectionClass.TOO_LARGE)
    return body
