"""An ONNX image classifier with Hugging Face image-classification semantics, run by onnxruntime.

Preprocessing follows a ViT image processor (RGB, resize to the model's size, rescale to 0..1, normalise by mean and
std, channel-first) with the parameters stored in the ONNX file's metadata. ``logits`` are in the model's own class
order (its ``id2label``); ``label_scores`` is Hugging Face's list of ``{"label", "score"}`` (softmax), best first.
"""

import hashlib
import json
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, UnidentifiedImageError


class UnreadableImage(ValueError):
    """The request body is not an image this server can decode (the container answers 400)."""


@dataclass(frozen=True)
class ModelCard:
    """What the server says about the model it serves, from the ONNX metadata (or the file)."""

    name: str
    version: str
    labels: tuple[str, ...]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    disclaimer: str | None


class OnnxImageClassifier:
    def __init__(self, path: Path):
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.card = ModelCard(
            name=meta.get("name", path.stem),
            version=meta.get("version") or hashlib.sha256(path.read_bytes()).hexdigest()[:12],
            labels=tuple(json.loads(meta["id2label"])),
            size=int(meta.get("image_size", 224)),
            mean=tuple(json.loads(meta.get("image_mean", "[0.5, 0.5, 0.5]"))),
            std=tuple(json.loads(meta.get("image_std", "[0.5, 0.5, 0.5]"))),
            disclaimer=meta.get("disclaimer"),
        )
        self.input_name = self.session.get_inputs()[0].name

    @staticmethod
    def read_image(image_bytes: bytes) -> Image.Image:
        try:
            with Image.open(BytesIO(image_bytes)) as image:
                return image.convert("RGB")
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
            raise UnreadableImage(f"cannot decode the request body as an image ({type(error).__name__})") from error

    def pixel_values(self, image: Image.Image) -> np.ndarray:
        rgb = image.convert("RGB").resize((self.card.size, self.card.size), Image.Resampling.BILINEAR)
        scaled = np.asarray(rgb, dtype=np.float32) / 255.0
        normalised = (scaled - np.asarray(self.card.mean, np.float32)) / np.asarray(self.card.std, np.float32)
        return normalised.transpose(2, 0, 1)[np.newaxis]

    def logits(self, image: Image.Image) -> np.ndarray:
        [logits] = self.session.run(None, {self.input_name: self.pixel_values(image)})
        return logits[0]

    def label_scores(self, logits: np.ndarray) -> list[dict]:
        ranked = sorted(zip(self.card.labels, softmax(logits).tolist()), key=lambda pair: -pair[1])
        return [{"label": label, "score": score} for label, score in ranked]


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()
