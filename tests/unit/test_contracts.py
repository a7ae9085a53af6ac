"""Model contracts as data: what each built-in contract sends, and how it reads a model's answer."""

import json
from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from lesionflow.arrays import decode_array
from lesionflow.contracts import HAM10000_LABELS, ModelContract, contract_names, load_contract
from lesionflow_local.template import load
from lesionflow.errors import ModelResponseInvalid
from lesionflow.preprocessing import model_input
from tests.support import hf_answer, jpeg

CONTRACT = load_contract("hf-image-classification")


def test_the_seed_vits_label_names_map_to_ham10000_codes():
    # Given the seed ViT's own label names
    names = ["actinic_keratoses", "basal_cell_carcinoma", "benign_keratosis-like_lesions", "dermatofibroma",
             "melanoma", "melanocytic_Nevi", "vascular_lesions"]

    # Then each maps to its code
    assert [CONTRACT.label_code(name) for name in names] == list(HAM10000_LABELS)


def test_codes_map_to_themselves_whatever_their_case():
    assert CONTRACT.label_code("NV") == "nv"


def test_generic_label_ids_are_refused_unless_the_contract_states_the_class_order():
    # A guessed order would silently mislabel every prediction of a model trained with another one
    with pytest.raises(ModelResponseInvalid, match="does not know"):
        CONTRACT.label_code("LABEL_4")
    ordered = CONTRACT.model_copy(update={"class_order": ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")})
    assert ordered.label_code("LABEL_1") == "mel"
    with pytest.raises(ModelResponseInvalid):
        ordered.label_code("LABEL_9")


def test_scores_cover_every_code_and_labels_the_model_left_out_score_zero():
    scores = CONTRACT.read_scores(hf_answer(melanoma=0.7, melanocytic_Nevi=0.3))
    assert scores == {"akiec": 0.0, "bcc": 0.0, "bkl": 0.0, "df": 0.0, "mel": 0.7, "nv": 0.3, "vasc": 0.0}


@pytest.mark.parametrize("body", [
    b"not json", b'{"label": "mel"}', b"[]", b'[{"label": "mel"}]', b'[{"score": 0.5}]',
    json.dumps([{"label": "mel", "score": 1.5}]).encode(), b'[{"label": "mel", "score": NaN}]',
], ids=["not-json", "object", "empty", "no-score", "no-label", "above-one", "nan"])
def test_malformed_or_wrong_shaped_answers_are_invalid_responses(body):
    with pytest.raises(ModelResponseInvalid):
        CONTRACT.read_scores(body)


def test_a_contract_is_data_and_an_unknown_name_is_a_clear_error():
    assert isinstance(CONTRACT, ModelContract) and CONTRACT.content_type == "image/jpeg"
    with pytest.raises(ValueError, match="no model contract named"):
        load_contract("no-such-contract")


def test_the_three_seed_contracts_and_the_efficient_twin_are_built_in():
    assert contract_names() == ["csv-pixels", "hf-image-classification", "tensor-json", "tensor-npy"]


@pytest.mark.parametrize(("name", "shape", "dtype"), [
    ("tensor-json", (3, 224, 224), np.float64), ("tensor-npy", (3, 224, 224), np.uint8),
    ("csv-pixels", (28 * 28 * 3,), np.float64)])
def test_each_array_contract_sends_the_resized_image_as_its_array(name, shape, dtype):
    # Given an orange photo
    contract = load_contract(name)

    # When it is prepared for the contract
    body = model_input(jpeg(600, 450, colour=(200, 100, 50)), "JPEG", contract)

    # Then the model receives the array the contract describes, and it decodes back to the same pixels
    raw = (np.load(BytesIO(body)) if name == "tensor-npy" else np.asarray(json.loads(body)) if name == "tensor-json"
           else np.asarray([float(value) for value in body.decode().split(",")]))
    assert raw.shape == shape and raw.dtype == dtype
    pixels = decode_array(body, contract.input)
    assert pixels.shape == (contract.input.height, contract.input.width, 3)
    assert np.abs(pixels.astype(int) - (200, 100, 50)).max() <= 3


def test_the_tensor_json_contract_sends_pixels_over_255_as_system_a_did():
    body = model_input(jpeg(300, 300, colour=(255, 0, 0)), "JPEG", load_contract("tensor-json"))
    red, green, _ = json.loads(body)
    assert red[10][10] == pytest.approx(1.0, abs=0.02) and green[10][10] == pytest.approx(0.0, abs=0.02)


def test_the_npy_twin_is_far_smaller_than_the_json_tensor():
    photo = jpeg(600, 450)
    as_json, as_npy = (len(model_input(photo, "JPEG", load_contract(name))) for name in ("tensor-json", "tensor-npy"))
    assert as_npy * 5 < as_json


def test_normalisation_and_layout_are_settings_of_the_contract():
    # Given an ImageNet-normalised, channel-last, batched float16 contract written as data
    contract = ModelContract.model_validate({
        "name": "imagenet-npy", "content_type": "application/x-npy", "response": {"format": "logits"},
        "class_order": list(HAM10000_LABELS),
        "input": {"width": 32, "height": 32, "encoding": "npy", "layout": "HWC", "batch": True, "dtype": "float16",
                  "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}})

    # When a white image is prepared
    array = np.load(BytesIO(model_input(jpeg(64, 64, colour=(255, 255, 255)), "JPEG", contract)))

    # Then the array is (1, 32, 32, 3) float16 with (1 - mean) / std in each channel
    assert array.shape == (1, 32, 32, 3) and array.dtype == np.float16
    assert array[0, 5, 5] == pytest.approx([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], abs=0.02)


@pytest.mark.parametrize("body", [b"[0.1, 0.2, 0.3, 0.1, 3.0, 1.0, 0.2]", b"[[0.1, 0.2, 0.3, 0.1, 3.0, 1.0, 0.2]]",
                                  b'{"predictions": [0.1, 0.2, 0.3, 0.1, 3.0, 1.0, 0.2]}'],
                         ids=["flat", "batch", "wrapped"])
def test_logits_become_probabilities_in_the_contracts_class_order(body):
    scores = load_contract("tensor-json").read_scores(body)
    assert max(scores, key=scores.get) == "mel" and sum(scores.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("body", [b"0.05,0.05,0.1,0.05,0.6,0.1,0.05", b"0.05\n0.05\n0.1\n0.05\n0.6\n0.1\n0.05\n"],
                         ids=["row", "column"])
def test_probabilities_are_read_from_csv(body):
    scores = load_contract("csv-pixels").read_scores(body)
    assert scores["mel"] == 0.6 and scores["akiec"] == 0.05


@pytest.mark.parametrize("body", [b"4", b"4.0", b"[4]"])
def test_a_class_index_is_read_as_that_class_with_nothing_else(body):
    contract = ModelContract.model_validate(load_contract("csv-pixels").model_dump() | {
        "response": {"format": "class_index"}})
    assert contract.read_scores(body) == {code: float(code == "mel") for code in HAM10000_LABELS}


@pytest.mark.parametrize(("name", "body"), [
    ("tensor-json", b"[0.1, 0.2]"), ("tensor-json", b'["a", "b", "c", "d", "e", "f", "g"]'),
    ("tensor-json", b"[NaN, 0, 0, 0, 0, 0, 0]"), ("csv-pixels", b"0.5,0.5,0.5,0.5,0.5,0.5,1.5"),
    ("csv-pixels", b"<html>error</html>"), ("tensor-npy", b"true"),
], ids=["too-few", "strings", "nan", "above-one", "html", "boolean"])
def test_answers_of_the_wrong_shape_are_invalid_responses(name, body):
    with pytest.raises(ModelResponseInvalid):
        load_contract(name).read_scores(body)


def test_a_contract_without_the_class_order_of_its_numbers_is_refused():
    # Guessing which number is which class would mislabel every prediction silently
    with pytest.raises(ValidationError, match="class_order"):
        ModelContract.model_validate({"name": "x", "content_type": "application/json",
                                      "response": {"format": "logits"}})
    with pytest.raises(ValidationError, match="not labels"):
        ModelContract.model_validate({"name": "x", "content_type": "application/json",
                                      "response": {"format": "logits"}, "class_order": ["mel", "unicorn"]})


def test_every_built_in_contract_can_be_chosen_in_the_template():
    assert sorted(load()["Parameters"]["ModelContract"]["AllowedValues"]) == contract_names()
