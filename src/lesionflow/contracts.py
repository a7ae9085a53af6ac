"""Model contracts as data: how to prepare an image for a model and how to read its answer.

A contract is a JSON file in ``contract_specs/``; the pipeline chooses one by name from configuration, so serving
another model of a known kind is a new file, not new code. Built in, one per kind of model the seed systems used:

- ``hf-image-classification``: JPEG in, Hugging Face's ``[{"label", "score"}]`` out (the ViT of system B);
- ``tensor-json``: a channel-first float tensor as JSON in, logits out (the MONAI DenseNet of system A);
- ``tensor-npy``: the same tensor as uint8 ``application/x-npy``, 1/8 of the bytes and no float formatting
  (recommended for tensor models whose container can scale the pixels itself);
- ``csv-pixels``: one CSV row of raw pixel values in, class probabilities out (the XGBoost of system A).
"""

import json
import math
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from lesionflow.errors import ModelResponseInvalid

HAM10000_LABELS = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
IMAGE_ENCODINGS = ("jpeg", "png")


class InputSpec(BaseModel):
    """What the model is sent: the image resized (stretched, as ViT's processor does) to ``width`` x ``height``, then
    encoded as an image, or as an array of pixel values ``* scale``, minus ``mean``, over ``std`` (per channel)."""

    width: int = Field(default=224, gt=0)
    height: int = Field(default=224, gt=0)
    colour: Literal["RGB", "L"] = "RGB"
    encoding: Literal["jpeg", "png", "json", "npy", "csv"] = "jpeg"
    jpeg_quality: int = Field(default=95, ge=1, le=100)
    layout: Literal["CHW", "HWC"] = Field(default="CHW", description="array encodings: channel-first or -last")
    batch: bool = Field(default=True, description="array encodings: a leading batch dimension of 1")
    dtype: Literal["uint8", "float16", "float32"] = "float32"
    scale: float = Field(default=1.0, gt=0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    json_decimals: int = Field(default=4, ge=1, le=8, description="json encoding: digits kept of each float")

    @property
    def channels(self) -> int:
        return 3 if self.colour == "RGB" else 1

    @model_validator(mode="after")
    def _consistent(self) -> "InputSpec":
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and len(values) != self.channels:
                raise ValueError(f"{name} needs one value per channel ({self.channels})")
        if self.dtype == "uint8" and (self.scale != 1.0 or self.mean or self.std):
            raise ValueError("uint8 input carries raw pixel values: no scale, mean or std")
        return self


class ResponseSpec(BaseModel):
    """How the model answers: Hugging Face's ``label_scores``, or one number per class in ``class_order``
    (``probabilities``, or ``logits`` turned into probabilities by softmax), or the index of the top class."""

    format: Literal["label_scores", "probabilities", "logits", "class_index"] = "label_scores"

    @property
    def gives_confidence(self) -> bool:
        """Whether the scores say how sure the model is (a class index is read as 1.0 for that class: it is not)."""
        return self.format != "class_index"


class LabelScore(BaseModel):
    label: str
    score: float


class ModelContract(BaseModel):
    name: str
    description: str = ""
    content_type: str
    accept: str = "application/json"
    input: InputSpec = InputSpec()
    response: ResponseSpec = ResponseSpec()
    labels: tuple[str, ...] = HAM10000_LABELS
    aliases: dict[str, str] = Field(default_factory=dict, description="model label (normalised) -> label code")
    class_order: tuple[str, ...] | None = Field(
        default=None, description="the label code of each class index (needed unless the model answers with labels)")

    @model_validator(mode="after")
    def _classes_known(self) -> "ModelContract":
        unknown = set(self.class_order or ()) - set(self.labels)
        if unknown:
            raise ValueError(f"class_order names codes that are not labels: {sorted(unknown)}")
        if self.response.format != "label_scores" and self.class_order is None:
            raise ValueError(f"a {self.response.format} answer needs the class_order it is given in")
        return self

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
        """A probability for every label code; codes the model left out (HF's top_k) score 0."""
        if self.response.format == "label_scores":
            return self._label_scores(body)
        numbers = _numbers(body)
        if self.response.format == "class_index":
            return self._one_hot(numbers)
        if len(numbers) != len(self.class_order):
            raise ModelResponseInvalid(
                f"the response has {len(numbers)} values for {len(self.class_order)} classes")
        if not all(math.isfinite(value) for value in numbers):
            raise ModelResponseInvalid("the response holds a value that is not a finite number")
        if self.response.format == "logits":
            numbers = _softmax(numbers)
        scores = dict.fromkeys(self.labels, 0.0)
        for code, value in zip(self.class_order, numbers):
            scores[code] = _probability(value)
        return scores

    def _label_scores(self, body: bytes) -> dict[str, float]:
        try:
            answers = [LabelScore.model_validate(item) for item in json.loads(body)]
        except (ValueError, TypeError, ValidationError) as error:
            raise ModelResponseInvalid(f"the response is not a JSON list of label/score ({type(error).__name__})")
        if not answers:
            raise ModelResponseInvalid("the response lists no labels")
        scores = dict.fromkeys(self.labels, 0.0)
        for answer in answers:
            scores[self.label_code(answer.label)] = _probability(answer.score)
        return scores

    def _one_hot(self, numbers: list[float]) -> dict[str, float]:
        """A class index says which class, not how sure: the record's confidence is 1.0 by this convention."""
        if len(numbers) != 1 or not float(numbers[0]).is_integer() or not 0 <= numbers[0] < len(self.class_order):
            raise ModelResponseInvalid(f"the response is not one class index below {len(self.class_order)}")
        return {code: float(code == self.class_order[int(numbers[0])]) for code in self.labels}


def _probability(value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ModelResponseInvalid(f"a score is not a probability: {value!r}")
    return value


def _numbers(body: bytes) -> list[float]:
    """The numbers of an answer about one image: JSON (``[..]``, ``[[..]]``, a bare number) or CSV (one row, or one
    value per line), as model containers encode them."""
    try:
        text = body.decode().strip()
        try:
            parsed = json.loads(text)
        except ValueError:
            rows = [[float(cell) for cell in line.split(",")] for line in text.splitlines() if line.strip()]
            parsed = rows[0] if len(rows) == 1 else [row[0] for row in rows] if all(len(r) == 1 for r in rows) else None
    except (UnicodeDecodeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and len(parsed) == 1:  # {"predictions": [...]}, as some containers wrap it
        parsed = next(iter(parsed.values()))
    if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], list):
        parsed = parsed[0]  # a batch of one
    if _is_number(parsed):
        parsed = [parsed]
    if not (isinstance(parsed, list) and parsed and all(map(_is_number, parsed))):
        raise ModelResponseInvalid("the response is not one row of numbers (JSON or CSV)")
    return [float(value) for value in parsed]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(value - top) for value in logits]
    return [value / sum(exps) for value in exps]


def _normalise(label: str) -> str:
    return "_".join(label.strip().lower().replace("-", " ").split())


@cache
def load_contract(name: str) -> ModelContract:
    """A built-in contract by name (the file name in ``contract_specs/`` without ``.json``)."""
    spec = resources.files("lesionflow") / "contract_specs" / f"{name}.json"
    if not spec.is_file():
        raise ValueError(f"no model contract named {name!r}")
    return ModelContract.model_validate_json(spec.read_text())


def contract_names() -> list[str]:
    return sorted(path.name.removesuffix(".json") for path in (resources.files("lesionflow") / "contract_specs")
                  .iterdir() if path.name.endswith(".json"))
