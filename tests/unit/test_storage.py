"""Reading the announced version of an upload: what S3 answers for one that is gone becomes a rejection, not a FAILED."""

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.storage import describe, read_upload
from lesionflow.uploads import ObjectVersion

UPLOAD = ObjectVersion(bucket="lesionflow-111122223333-0e1f3f8a1b2c", key="uploads/a.jpg", size=10, etag="e",
                       version_id="3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", last_modified=datetime(2026, 12, 1, tzinfo=UTC),
                       ).identified(b"k" * 32)


@pytest.mark.parametrize(("code", "status"), [
    ("NoSuchKey", 404),  # the key is gone (a caller with s3:ListBucket gets 404, not 403)
    ("NoSuchVersion", 404),  # the announced version was deleted for good
    ("MethodNotAllowed", 405),  # the version asked for is a delete marker
])
def test_an_upload_deleted_before_processing_is_rejected_as_gone(code, status):
    # Given S3 answering the version-pinned GET with the error it documents for that case
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        # When the upload is read, Then it is a permanent rejection saying it is gone
        with pytest.raises(ImageRejected) as rejected:
            read_upload(s3, UPLOAD, 100)
    assert rejected.value.rejection_class == RejectionClass.GONE


def test_access_denied_is_not_taken_for_a_missing_upload():
    # Given a permission mistake (S3 answers 403 to a caller without s3:ListBucket)
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        # Then it is raised as it is, to be recorded FAILED and alarm, not hidden as a rejection
        with pytest.raises(Exception) as raised:
            read_upload(s3, UPLOAD, 100)
    assert not isinstance(raised.value, ImageRejected)


@pytest.mark.parametrize(("version_id", "dropped"), [("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", True), (None, False)])
def test_a_400_for_a_head_is_not_there_only_when_a_version_was_named(version_id, dropped):
    # Given S3 answering a HEAD with a bare 400 (for a version id it cannot parse; without one, some other fault)
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="400", http_status_code=400)
        if dropped:
            # Then a named version is reported as not there
            assert describe(s3, UPLOAD.bucket, UPLOAD.key, version_id) is None
        else:
            # Then without one the error is raised, so the message is retried and seen, never silently dropped
            with pytest.raises(ClientError):
                describe(s3, UPLOAD.bucket, UPLOAD.key, version_id)


@pytest.mark.parametrize(("code", "status"), [("403", 403), ("503", 503), ("412", 412)])
def test_a_head_refused_or_failing_is_raised_not_taken_for_a_missing_version(code, status):
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
        with pytest.raises(ClientError):
            describe(s3, UPLOAD.bucket, UPLOAD.key, UPLOAD.version_id)
