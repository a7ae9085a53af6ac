"""Upload identity: deterministic, version-specific names that never contain the object key."""

from datetime import UTC, datetime

from hashlib import sha256

import pytest
from pydantic import ValidationError

from lesionflow.uploads import ObjectVersion, Upload

WHEN = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
HASH_KEY = b"a stack's secret hash key"


def upload(hash_key: bytes = HASH_KEY, **changes) -> Upload:
    return ObjectVersion(**{"bucket": "b", "key": "uploads/Jane Doe.jpg", "size": 10, "etag": "e", "sequencer": "00A1",
                            "event_time": WHEN} | changes).identified(hash_key)


def test_the_same_version_always_gets_the_same_upload_id():
    assert upload().upload_id == upload().upload_id


def test_another_version_of_the_same_key_gets_another_upload_id_but_the_same_object_hash():
    first, second = upload(version_id="v1"), upload(version_id="v2")
    assert first.upload_id != second.upload_id
    assert first.object_hash == second.object_hash


def test_without_a_version_id_the_sequencer_tells_uploads_apart():
    assert upload(sequencer="00A1").upload_id != upload(sequencer="00A2").upload_id


def test_names_derived_from_an_upload_never_contain_its_key():
    item = upload()
    assert "Jane" not in item.upload_id + item.object_hash
    assert len(item.upload_id) == 64  # fits a Step Functions execution name (80 characters at most)


def test_the_sort_key_orders_uploads_of_a_key_by_time():
    earlier = upload(event_time=datetime(2026, 11, 23, 9, 59, tzinfo=UTC), sequencer="00FF")
    assert earlier.sort_key < upload().sort_key
    assert upload().sort_key.startswith("2026-11-23T10:00:00.123Z#")


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
        Upload.model_validate(ObjectVersion(bucket="b", key="k", size=1, event_time=WHEN).model_dump())
