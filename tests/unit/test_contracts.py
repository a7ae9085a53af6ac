"""Reading a model's answer through the Hugging Face image-classification contract."""

import json

import pytest

from lesionflow.contracts import HAM10000_LABELS, ModelContract, load_contract
from lesionflow.errors import ModelResponseInvalid
from tests.support import hf_answer

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
