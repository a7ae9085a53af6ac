"""The Preprocess step: turn the validated upload into exactly what the model contract asks for, stored in S3."""

from io import BytesIO

import numpy as np
from PIL import Image

from lesionflow.arrays import encode_array
from lesionflow.contracts import IMAGE_ENCODINGS, ModelContract
from lesionflow.errors import ImageRejected
from lesionflow.images import decode_rgb
from lesionflow.state import Artifact, PipelineState
from lesionflow.storage import read_upload, write_artifact

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
    pixels = np.asarray(image, dtype=np.uint8)
    return encode_array(pixels if pixels.ndim == 3 else pixels[:, :, np.newaxis], spec)


def preprocess(state: PipelineState, s3, artifact_prefix: str, contract: ModelContract) -> PipelineState:
    """Return the state with the artifact's reference, or concluded REJECTED when the image cannot be decoded."""
    if state.image is None:
        raise ValueError("preprocess needs the facts of a validated image")
    try:
        data = read_upload(s3, state.upload, state.image.size)
        body = model_input(data, state.image.format, contract)
    except ImageRejected as rejection:
        return state.rejected(rejection)
    artifact = Artifact(
        bucket=state.upload.bucket,
        key=f"{artifact_prefix}{state.upload.upload_id}/{contract.name}.{contract.input.encoding}",
        content_type=contract.content_type,
        size=len(body),
        preprocessing_version=PREPROCESSING_VERSION,
        contract=contract.name,
    )
    write_artifact(s3, artifact.bucket, artifact.key, body, artifact.content_type)
    return state.model_copy(update={"artifact": artifact})
