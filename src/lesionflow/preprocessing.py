"""The Preprocess step: turn the validated upload into exactly what the model contract asks for, stored in S3."""

from io import BytesIO

from PIL import Image

from lesionflow.contracts import ModelContract
from lesionflow.errors import ImageRejected
from lesionflow.images import decode_rgb
from lesionflow.state import Artifact, PipelineState
from lesionflow.storage import read_upload, write_artifact

# Bump when the pixels sent to a model could change; every record carries it as provenance.
PREPROCESSING_VERSION = "1"


def model_input(data: bytes, image_format: str, contract: ModelContract) -> bytes:
    """Decode, orient, convert and resize an image, then encode it as the contract says."""
    size = (contract.input.width, contract.input.height)
    image = decode_rgb(data, image_format, size).resize(size, Image.Resampling.BILINEAR)
    encoded = BytesIO()
    image.save(encoded, format="JPEG", quality=contract.input.jpeg_quality)
    return encoded.getvalue()


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
