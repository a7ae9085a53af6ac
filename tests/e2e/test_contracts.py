"""The pipeline end to end once per model contract: the local stack and its endpoint both speak the contract."""

import pytest

from lesionflow.contracts import HAM10000_LABELS, contract_names
from tests.e2e.local import started_local_stack, upload, wait_for
from tests.support import jpeg, png


@pytest.fixture(scope="module", params=contract_names())
def local_stack(request):
    with started_local_stack("--contract", request.param) as details:
        yield details


def test_every_contract_classifies_valid_images_and_rejects_bad_ones(aws, local_stack):
    # Given a stack whose pipeline and endpoint speak one contract
    contract = local_stack["model_contract"]
    prefix = f"{local_stack['upload_prefix']}contract-{contract}/"
    uploads = {f"{prefix}photo.jpg": jpeg(600, 450, colour=(150, 80, 70)),
               f"{prefix}grey.png": png(300, 300, colour=90, mode="L"),
               f"{prefix}notes.jpg": b"not an image"}

    # When images are uploaded
    for key, body in uploads.items():
        upload(aws, local_stack, key, body)
    found = wait_for(local_stack, list(uploads))

    # Then valid ones succeed through this contract, with provenance and the decision-support note...
    for key in (f"{prefix}photo.jpg", f"{prefix}grey.png"):
        [record] = found[key]
        assert record["status"] == "SUCCEEDED", record
        assert record["model_contract"] == contract and record["model_name"] == local_stack["model"]
        assert set(record["scores"]) == set(HAM10000_LABELS)
        assert abs(sum(float(score) for score in record["scores"].values()) - 1) < 1e-3
        assert record["model_version"] == "1" and record["input_sha256"] and record["preprocessing_version"]
        assert "not a diagnosis" in record["note"] and isinstance(record["needs_review"], bool)
    # ...and the bad one is rejected before the model is asked
    [rejected] = found[f"{prefix}notes.jpg"]
    assert rejected["status"] == "REJECTED" and rejected["reason"]
