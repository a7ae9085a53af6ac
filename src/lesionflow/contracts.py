"""Model contracts as data: how to prepare an image for a model and how to read its answer.

A contract is a JSON file in ``contract_specs/``; the pipeline chooses one by name from configuration, so serving
another model of the same kind is configuration, not code.
"""

import json
import math
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from lesionflow.errors import ModelResponseInvalid

HAM10000_LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


class InputSpec(BaseModel):
    """What the model is sent: the image resized (stretched, as ViT's processor does) to ``width`` x ``height``."""

    width: int = Field(default=224, gt=0)
    height: int = Field(default=224, gt=0)
    encoding: Literal["jpeg"] = "jpeg"
    jpeg_quality: int = Field(default=95, ge=1, le=100)


class ResponseSpec(BaseModel):
    """How the model answers: ``label_scores`` is Hugging Face's ``[{"label": ..., "score": ...}]``."""

    format: Literal["label_scores"] = "label_scores"


class LabelScore(BaseModel):
    label: str
    score: float


class ModelContract(BaseModel):
    name: str
    content_type: str
    accept: str = "application/json"
    input: InputSpec = InputSpec()
    response: ResponseSpec = ResponseSpec()
    labels: tuple[str, ...] = HAM10000_LABELS
    aliases: dict[str, str] = Field(default_factory=dict, description="model label (normalised) -> label code")
    class_order: tuple[str, ...] | None = Field(
        default=None, description="the label code of each class index, when the model answers LABEL_<index>")

    def label_code(self, model_label: str) -> str:
        """Map a model's label (``mel``, ``Melanoma``; ``LABEL_4`` only if the contract says the class order)."""
        name = _normalise(model_label)
        if name in self.labels:
            return name
        if name in self.aliases:
            return self.aliases[name]
        index = name.removeprefix("label_")
        if self.class_order and name.startswith("label_") and index.isdigit() and int(index) < len(self.class_order):
            return self.class_order[int(index)]
        raise ModelResponseInvalid(f"the model answered with a label this contract does not know: {model_label!r}")

    def read_scores(self, body: bytes) -> dict[str, float]:
        """Scores for every label code; codes the model left out (HF's top_k) score 0."""
        try:
            answers = [LabelScore.model_validate(item) for item in json.loads(body)]
        except (ValueError, TypeError, ValidationError) as error:
            raise ModelResponseInvalid(f"the response is not a JSON list of label/score ({type(error).__name__})")
        if not answers:
            raise ModelResponseInvalid("the response lists no labels")
        scores = dict.fromkeys(self.labels, 0.0)
        for answer in answers:
            if not (math.isfinite(answer.score) and 0.0 <= answer.score <= 1.0):
                raise ModelResponseInvalid(f"a score is not a probability: {answer.score!r}")
            scores[self.label_code(answer.label)] = answer.score
        return scores


def _normalise(label: str) -> str:
    return "_".join(label.strip().lower().replace("-", " ").split())


@cache
def load_contract(name: str) -> ModelContract:
    """A built-in contract by name (the file name in ``contract_specs/`` without ``.json``)."""
    spec = resources.files("lesionflow") / "contract_specs" / f"{name}.json"
    if not spec.is_file():
        raise ValueError(f"no model contract named {name!r}")
    return ModelContract.model_validate_json(spec.read_text())
