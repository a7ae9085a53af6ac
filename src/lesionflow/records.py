"""The prediction record: the public contract written to S3 (JSON) and to the DynamoDB prediction log.

Table keys: ``image_key`` (partition) and ``upload_version`` (sort, ``<uploaded_at>#<version token>``), so the newest
upload of a key sorts last. ``label``/``created_at`` and ``status``/``created_at`` are the two index keys.
"""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from boto3.dynamodb.types import TypeSerializer
from pydantic import BaseModel, Field, computed_field

from lesionflow.uploads import Upload, iso_utc

_serializer = TypeSerializer()


REVIEW_NEEDED = "NEEDED"  # the by-review index's only key value
# ISO-8601 UTC. Python writes milliseconds and a Z (uploads.iso_utc), as Step Functions documents its own times
# (``$$.State.EnteredTime``, which the state machine's fallback FAILED record uses); moto's Step Functions writes
# microseconds and +00:00 instead, also accepted.
UTC_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$"


class Status(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"


class PredictionRecord(BaseModel):
    image_key: str
    upload_version: str
    status: Status
    created_at: str = Field(pattern=UTC_TIMESTAMP)
    label: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    scores: dict[str, float] | None = None
    needs_review: bool | None = Field(default=None, description="top score under the review threshold")
    note: str | None = Field(default=None, description="what a prediction is and is not")
    reason: str | None = None
    rejection_class: str | None = None
    prediction_uri: str | None = None
    # provenance: which bytes, which run, which model
    bucket: str
    version_id: str | None = None
    etag: str | None = None
    version_token: str
    upload_id: str
    object_hash: str
    uploaded_at: str = Field(pattern=UTC_TIMESTAMP)
    execution_arn: str
    execution_started_at: str | None = Field(default=None, pattern=UTC_TIMESTAMP, description=(
        "the run's start: with execution_arn it names the run (a Standard execution's name may come back after 90 days)"))
    endpoint_name: str | None = None
    model_variant: str | None = None
    model_name: str | None = Field(default=None, description="as the model server names it, when it does")
    model_version: str | None = None
    model_disclaimer: str | None = Field(default=None, description="e.g. that an offline demo model is untrained")
    model_contract: str | None = None
    preprocessing_version: str | None = None
    input_sha256: str | None = None
    input_format: str | None = None

    @classmethod
    def for_upload(cls, upload: Upload, execution_arn: str, execution_started_at: str | None = None,
                   **fields) -> "PredictionRecord":
        """A record with the upload's identity and provenance filled in, stamped now."""
        return cls(
            image_key=upload.key,
            upload_version=upload.sort_key,
            created_at=utc_now(),
            bucket=upload.bucket,
            version_id=upload.version_id,
            etag=upload.etag,
            version_token=upload.version_token,
            upload_id=upload.upload_id,
            object_hash=upload.object_hash,
            uploaded_at=upload.uploaded_at,
            execution_arn=execution_arn,
            execution_started_at=execution_started_at,
            **fields,
        )

    @computed_field(description="NEEDED when needs_review: the key of the sparse by-review index")
    @property
    def review(self) -> str | None:
        return REVIEW_NEEDED if self.needs_review else None

    def to_item(self) -> dict:
        """The DynamoDB item in attribute-value form, as the state machine's PutItem integration needs it."""
        plain = self.model_dump(mode="json", exclude_none=True)
        return {name: _serializer.serialize(_decimals(value)) for name, value in plain.items()}


def utc_now() -> str:
    return iso_utc(datetime.now(UTC))


def _decimals(value):
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _decimals(inner) for key, inner in value.items()}
    return value
