"""Upload identity: deterministic, version-specific names that never contain the object key."""

from datetime import UTC, datetime

from hashlib import sha256

import pytest
from pydantic import ValidationError

from lesionflow.uploads import ObjectVersion, Upload

WHEN = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
HASH_KEY = b"a stack's secret hash key"


def upload(hash_key: bytes = HASH_KEY, **changes) -> Upload:
    return ObjectVersion(**{"bucket": "b", "key": "uploads/Jane Doe.jpg", "size": 10, "etag": "e",
                            "last_modified": WHEN} | changes).identified(hash_key)


def test_the_same_version_always_gets_the_same_upload_id():
    assert upload().upload_id == upload().upload_id


def test_another_version_of_the_same_key_gets_another_upload_id_but_the_same_object_hash():
    first, second = upload(version_id="v1"), upload(version_id="v2")
    assert first.upload_id != second.upload_id
    assert first.object_hash == second.object_hash


def test_without_a_version_id_the_etag_and_the_modification_time_tell_uploads_apart():
    assert upload(etag="e1").upload_id != upload(etag="e2").upload_id
    assert upload(last_modified=datetime(2026, 11, 23, 10, 0, 1, tzinfo=UTC)).upload_id != upload().upload_id


def test_with_a_version_id_nothing_but_the_version_names_the_upload():
    # Given the same version described twice with different times and ETags (as a forged message might claim)
    first = upload(version_id="v1", etag="e1", last_modified=WHEN)
    second = upload(version_id="v1", etag="e2", last_modified=datetime(2030, 1, 1, tzinfo=UTC))

    # Then both have the same upload id: only the version id tells versions of a versioned bucket apart
    assert first.upload_id == second.upload_id


def test_an_execution_started_before_identities_came_from_s3_reads_its_event_time_as_it_was():
    # Given the execution input of a run started before this version, which carried the notification's time
    started_before = upload(version_id="v1").model_dump(mode="json") | {"event_time": "2026-11-23T10:00:00.123Z"}
    del started_before["last_modified"]

    # When a current step reads it, Then its sort key is the one it was started with (so a redrive overwrites it)
    assert Upload.model_validate(started_before).sort_key == "2026-11-23T10:00:00.123Z#v:v1"


def test_names_derived_from_an_upload_never_contain_its_key():
    item = upload()
    assert "Jane" not in item.upload_id + item.object_hash
    assert len(item.upload_id) == 64  # fits a Step Functions execution name (80 characters at most)


def test_the_sort_key_orders_uploads_of_a_key_by_time():
    earlier = upload(last_modified=datetime(2026, 11, 23, 9, 59, tzinfo=UTC), etag="ff")
    assert earlier.sort_key < upload().sort_key
    assert upload().sort_key.startswith("2026-11-23T10:00:00.000Z#")


def test_names_are_keyed_so_that_guessing_a_key_and_hashing_it_reveals_nothing():
    # Given someone who guesses the key and the version token and hashes them as an unkeyed name would be made
    item = upload()
    guessed = sha256("\n".join(["b", "uploads/Jane Doe.jpg", item.version_token]).encode()).hexdigest()

    # Then the guess does not match, and another stack's hash key gives other names for the same upload
    assert item.upload_id != guessed
    assert upload(hash_key=b"another stack").upload_id != item.upload_id
    assert upload(hash_key=b"another stack").object_hash != item.object_hash


def test_an_upload_cannot_be_read_back_without_its_names():
    with pytest.raises(ValidationError):
        Upload.model_validate(ObjectVersion(bucket="b", key="k", size=1, last_modified=WHEN).model_dump())
