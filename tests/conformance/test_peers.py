"""What the pipeline sends is what the real serving stacks decode, and what they answer is what the pipeline reads.

The peers are the SageMaker inference toolkits' own decoders and encoders, installed in a virtual environment of
their own (`make conformance`; they pin libraries the main environment cannot share):
- Hugging Face inference toolkit (system B's ViT container): `decoder_encoder.decode` / `encode`;
- sagemaker-inference, which the PyTorch container's default handler (system A's MONAI model) and many others use to
  decode `application/json`, `application/x-npy` and `text/csv` requests and to encode their answers.
The model itself is not run here (that needs torch and transformers): its output is built in the shape it has.
"""

from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from sagemaker_huggingface_inference_toolkit import decoder_encoder
from sagemaker_inference import content_types, decoder, encoder

from lesionflow.contracts import HAM10000_LABELS, load_contract
from lesionflow.preprocessing import model_input

LESION = Image.new("RGB", (600, 450), (226, 178, 160))
LESION.paste((120, 60, 40), (200, 150, 400, 300))


def upload_bytes() -> bytes:
    out = BytesIO()
    LESION.save(out, format="JPEG", quality=95)
    return out.getvalue()


def container_decode(body: bytes, content_type: str) -> np.ndarray:
    """As sagemaker-inference's transformer hands a request to its decoder: text types as str, others as bytes."""
    return decoder.decode(body.decode() if content_type in content_types.UTF8_TYPES else body, content_type)


def read(contract, body: str | bytes) -> dict[str, float]:
    """What the pipeline reads from an encoder's output (a str for text types, bytes otherwise)."""
    return contract.read_scores(body.encode() if isinstance(body, str) else body)


def test_the_hugging_face_container_decodes_our_jpeg_as_the_image_its_pipeline_takes():
    # Given what Infer sends for the Hugging Face contract
    contract = load_contract("hf-image-classification")
    body = model_input(upload_bytes(), "JPEG", contract)

    # When the toolkit decodes it as the container does for the request's content type
    decoded = decoder_encoder.decode(body, contract.content_type)

    # Then the pipeline gets a 224x224 RGB picture of the upload
    image = decoded["inputs"]
    assert (image.size, image.mode) == ((224, 224), "RGB")
    assert abs(image.getpixel((112, 112))[0] - 120) < 10 and abs(image.getpixel((5, 5))[0] - 226) < 10


def test_we_read_the_hugging_face_containers_answer():
    # Given an image-classification pipeline's output for the seed ViT, encoded by the toolkit
    contract = load_contract("hf-image-classification")
    output = [{"score": 0.81, "label": "melanoma"}, {"score": 0.12, "label": "melanocytic_Nevi"},
              {"score": 0.04, "label": "basal_cell_carcinoma"}, {"score": 0.02, "label": "actinic_keratoses"},
              {"score": 0.01, "label": "dermatofibroma"}]
    body = decoder_encoder.encode(output, contract.accept)

    # Then the pipeline reads every label's score (the two left out by top_k score 0)
    scores = read(contract, body)
    assert scores["mel"] == 0.81 and scores["nv"] == 0.12 and scores["vasc"] == 0.0


@pytest.mark.parametrize("name", ["tensor-json", "tensor-npy"])
def test_the_pytorch_containers_decoder_reads_our_tensor_as_the_channel_first_image(name):
    # Given what Infer sends for a tensor contract
    contract = load_contract(name)
    body = model_input(upload_bytes(), "JPEG", contract)

    # When sagemaker-inference decodes it, as the PyTorch container's default input_fn does
    array = container_decode(body, contract.content_type)

    # Then it is the 3x224x224 image, in [0, 1] for JSON and raw uint8 for npy
    assert array.shape == (3, 224, 224)
    pixels = array * 255 if name == "tensor-json" else array
    assert abs(float(pixels[0, 112, 112]) - 120) < 10 and abs(float(pixels[0, 5, 5]) - 226) < 10
    assert array.dtype == (np.uint8 if name == "tensor-npy" else np.float64)


@pytest.mark.parametrize("shape", [(1, 7), (7,)], ids=["batch", "flat"])
@pytest.mark.parametrize("name", ["tensor-json", "tensor-npy"])
def test_we_read_the_logits_the_pytorch_container_encodes(name, shape):
    # Given logits favouring "mel" (index 4 of the class order), encoded by the container's default output_fn
    contract = load_contract(name)
    logits = np.array([0.1, 0.2, 0.3, 0.1, 3.0, 1.0, 0.2]).reshape(shape)
    body = encoder.encode(logits, contract.accept)

    # Then the pipeline turns them into probabilities over the HAM10000 codes
    scores = read(contract, body)
    assert max(scores, key=scores.get) == "mel" and sum(scores.values()) == pytest.approx(1.0)


def test_a_csv_container_reads_our_row_of_pixels():
    contract = load_contract("csv-pixels")
    body = model_input(upload_bytes(), "JPEG", contract)
    row = container_decode(body, contract.content_type)
    assert row.size == 28 * 28 * 3 and row.min() >= 0 and row.max() <= 255


@pytest.mark.parametrize("shape", [(1, 7), (7,)], ids=["row", "column"])
def test_we_read_the_probabilities_a_csv_container_encodes(shape):
    contract = load_contract("csv-pixels")
    probabilities = np.array([0.05, 0.05, 0.1, 0.05, 0.6, 0.1, 0.05]).reshape(shape)
    body = encoder.encode(probabilities, contract.accept)
    scores = read(contract, body)
    assert scores == pytest.approx(dict(zip(HAM10000_LABELS, probabilities.ravel().tolist())))
