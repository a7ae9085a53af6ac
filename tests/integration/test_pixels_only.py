"""Nothing but pixels reaches the model, end to end: uploads carrying each kind of metadata, with a patient's name in
it, go through the real Validate, Preprocess and InvokeModel handlers (on moto's S3) to a scripted endpoint, for every
model contract; what the endpoint receives must hold none of it, and the image must still be classified."""

import json

import pytest

from lesionflow.contracts import contract_names, load_contract
from tests.image_mutants import MARKER, carries, metadata_left_in, metadata_uploads
from tests.support import hf_answer, preprocessed, state_for

ANSWERS = {  # what each contract's model answers: melanoma, in its own shape
    "hf-image-classification": hf_answer(melanoma=0.9, melanocytic_Nevi=0.1),
    "tensor-json": json.dumps([0, 0, 0, 0, 3, 0, 0]).encode(),
    "tensor-npy": json.dumps([0, 0, 0, 0, 3, 0, 0]).encode(),
    "csv-pixels": b"0.05,0.05,0.05,0.05,0.6,0.1,0.1",
}


def test_every_contract_has_an_answer_here():
    assert set(ANSWERS) == set(contract_names())


@pytest.mark.parametrize("contract", sorted(ANSWERS))
def test_the_endpoint_receives_pixels_and_none_of_the_uploads_metadata(stack, endpoint, monkeypatch, contract):
    # Given the pipeline configured with this contract, and uploads whose EXIF, XMP, ICC profile, JPEG comment, PNG
    # tEXt/zTXt/iTXt or eXIf chunk (one kind each, then all at once) holds a patient's name
    for function in ("PreprocessFunction", "InvokeModelFunction"):
        monkeypatch.setitem(stack.functions[function].environment, "MODEL_CONTRACT", contract)
    encoding = load_contract(contract).input.encoding
    leaks, records = {}, {}

    for kind, (image_format, data) in metadata_uploads().items():
        assert carries(data, MARKER), kind
        endpoint.then(200, ANSWERS[contract])

        # When each goes through Validate, Preprocess and InvokeModel
        handed = preprocessed(stack, state_for(stack, f"uploads/pixels-only/{kind}.{image_format.lower()}", data))
        result = stack.functions["InvokeModelFunction"].invoke(handed)

        # (collected, so that one run names every kind that leaks)
        _, _, body = endpoint.requests[-1]
        records[kind] = (result["result"]["record"]["status"], result["result"]["record"].get("label"))
        if left := metadata_left_in(body, encoding):
            leaks[kind] = left

    # Then the endpoint received none of it: not the name, not the EXIF, ICC, XMP or PNG chunk signatures, and (an
    # image encoding) nothing in the decoded image's info that a fresh image would not have
    assert leaks == {}
    # and every upload was still classified, from its pixels
    assert records == {kind: ("SUCCEEDED", "mel") for kind in metadata_uploads()}
    assert len(endpoint.requests) == len(metadata_uploads())
