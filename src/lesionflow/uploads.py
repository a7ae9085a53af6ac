"""The identity of one upload: which object version the pipeline works on, and the names derived from it.

Object keys may contain a patient's name, so everything that leaves the bucket (execution names, log fields, metric
dimensions, prediction keys) uses the hashes defined here instead of the key. They are HMACs under the
stack's secret hash key: a plain hash of a guessable key ("uploads/jane-doe.jpg") could be reversed by trying names.
"""

import hmac
from datetime import UTC, datetime
from functools import cached_property
from hashlib import sha256

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, field_validator


def iso_utc(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a Z, as Step Functions writes times: such strings sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _mac(hash_key: bytes, *parts: str) -> str:
    return hmac.new(hash_key, "\n".join(parts).encode(), sha256).hexdigest()


class ObjectVersion(BaseModel):
    """One object version under the upload prefix, as S3 itself describes it (``storage.describe``): never as a
    queue message claims it, since anyone allowed to send to the queue could claim anything."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str = Field(description="the object key exactly as uploaded (decoded)")
    size: int = Field(ge=0)
    etag: str | None = None
    version_id: str | None = None
    # Executions started before identities came from S3 carry the notification's time as ``event_time``: read as
    # it was, so that their records (and a redrive of them) keep the sort key they were started with.
    last_modified: datetime = Field(validation_alias=AliasChoices("last_modified", "event_time"), description=(
        "S3's LastModified of this version: the same from a HEAD, a listing, or any number of notifications"))

    @field_validator("last_modified")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    @computed_field
    @cached_property
    def version_token(self) -> str:
        """What tells two uploads of the same key apart: the version id (the bucket is versioned), else the ETag and
        the modification time (a bucket without versioning, or the ``null`` version of one made before)."""
        if self.version_id:
            return f"v:{self.version_id}"
        return f"e:{self.etag}@{self.uploaded_at}"

    @computed_field
    @cached_property
    def uploaded_at(self) -> str:
        """ISO-8601 UTC with milliseconds, so that it sorts as text."""
        return iso_utc(self.last_modified)

    def identified(self, hash_key: bytes) -> "Upload":
        """This version with its names: computed once, by the dispatcher, which alone holds the hash key."""
        return Upload(**self.model_dump(), upload_id=_mac(hash_key, self.bucket, self.key, self.version_token),
                      object_hash=_mac(hash_key, self.bucket, self.key)[:16])


class Upload(ObjectVersion):
    """An object version with the names the pipeline knows it by."""

    upload_id: str = Field(pattern="^[0-9a-f]{64}$", description=(
        "keyed hash of bucket, key and version: the execution name and the name of everything derived from it"))
    object_hash: str = Field(pattern="^[0-9a-f]{16}$", description=(
        "keyed hash of bucket and key alone: correlates all versions of one key in logs without revealing it"))

    @computed_field
    @cached_property
    def sort_key(self) -> str:
        """The prediction log's sort key: S3's modification time first, so the newest upload of a key sorts last.

        S3 gives that time to the second: two versions of one key made within the same second sort by their
        version tokens, not necessarily in upload order."""
        return f"{self.uploaded_at}#{self.version_token}"
