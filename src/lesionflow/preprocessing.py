"""Preprocessing: turn an uploaded image into exactly what the model contract asks for, in memory.

The model input is made where it is sent (the Infer step), not stored in S3 between two steps: an S3 PUT and GET per
image cost more than the rest of the pipeline's requests together (``make bench``, cost section), and image bytes do not
travel in the state document (README, Architecture).
"""

from io import BytesIO

from PIL import Image

from lesionflow.contracts import IMAGE_ENCODINGS, ModelContract
from lesionflow.images import decode_rgb

# Bump when the pixels sent to a model could change; every record carries it as provenance.
PREPROCESSING_VERSION = "1"


def model_input(data: bytes, image_format: str, contract: ModelContract) -> bytes:
    """Decode, orient, convert and resize an image, then encode it as the contract says: as an image (JPEG, PNG) or
    as an array of pixel values (JSON, npy, CSV)."""
    spec = contract.input
    size = (spec.width, spec.height)
    image = decode_rgb(data, image_format, size).resize(size, Image.Resampling.BILINEAR).convert(spec.colour)
    if spec.encoding in IMAGE_ENCODINGS:
        encoded = BytesIO()
        image.save(encoded, format=spec.encoding.upper(), quality=spec.jpeg_quality)
        return encoded.getvalue()
    # Imported here: numpy is ~50 ms of a cold start that image contracts need not pay.
    import numpy as np

    from lesionflow.arrays import encode_array

    pixels = np.asarray(image, dtype=np.uint8)
    return encode_array(pixels if pixels.ndim == 3 else pixels[:, :, np.newaxis], spec)

