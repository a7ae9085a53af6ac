"""The Preprocess step: decode the validated upload once and turn it into exactly what the model contract asks for.

Its result is handed to InvokeModel (``lesionflow.handover``), which may retry the endpoint without decoding again.
"""

from io import BytesIO

from PIL import Image

from lesionflow.contracts import IMAGE_ENCODINGS, ModelContract
from lesionflow.errors import ImageRejected
from lesionflow.handover import hand_over
from lesionflow.images import decode_rgb
from lesionflow.state import PipelineState
from lesionflow.storage import read_upload

# Bump when the pixels sent to a model could change; every record carries it as provenance.
# 2: a strip longer than 8:1 is shrunk along its length before conversion (other images' pixels are unchanged), and
# the input is made from pixels alone (no metadata of the upload).
PREPROCESSING_VERSION = "2"


def model_input(data: bytes, image_format: str, contract: ModelContract) -> bytes:
    """Decode, orient, convert and resize an image, then encode it as the contract says: as an image (JPEG, PNG) or
    as an array of pixel values (JSON, npy, CSV).

    Nothing but pixels reaches the model: the input is made from a new image holding only the decoded pixel values,
    and encoded with every metadata option of the encoder given as empty, so no EXIF, XMP, ICC profile, comment or
    text chunk of the upload can travel on (Pillow carries ``info`` through resize and convert, and its encoders
    write some of it by default)."""
    spec = contract.input
    size = (spec.width, spec.height)
    decoded = decode_rgb(data, image_format, size).resize(size, Image.Resampling.BILINEAR).convert(spec.colour)
    image = Image.frombytes(spec.colour, size, decoded.tobytes())  # pixels alone: an empty ``info``, no EXIF
    if spec.encoding in IMAGE_ENCODINGS:
        return _encoded(image, spec.encoding, spec.jpeg_quality)
    # Imported here: numpy is ~50 ms of a cold start that image contracts need not pay.
    import numpy as np

    from lesionflow.arrays import encode_array

    pixels = np.asarray(image, dtype=np.uint8)
    return encode_array(pixels if pixels.ndim == 3 else pixels[:, :, np.newaxis], spec)


def _encoded(image: Image.Image, encoding: str, jpeg_quality: int) -> bytes:
    """The image as a JPEG or PNG file that holds its pixels and nothing else the encoder could add from options."""
    out = BytesIO()
    if encoding == "jpeg":
        image.save(out, format="JPEG", quality=jpeg_quality, exif=b"", icc_profile=None, xmp=None, comment=b"")
    else:
        image.save(out, format="PNG", exif=None, icc_profile=None, pnginfo=None, transparency=None, dpi=None)
    return out.getvalue()


def preprocess(state: PipelineState, s3, contract: ModelContract, handover_prefix: str) -> PipelineState:
    """Return the state with the model input handed over, or concluded REJECTED when the image cannot be decoded
    after all (Validate checked its header only)."""
    if state.image is None:
        raise ValueError("preprocess needs the facts of a validated image")
    try:  # read again pinned to the version Validate saw
        body = model_input(read_upload(s3, state.upload, state.image.size), state.image.format, contract)
    except ImageRejected as rejection:
        return state.rejected(rejection)
    return state.model_copy(update={"model_input": hand_over(
        s3, state.upload, body, handover_prefix, PREPROCESSING_VERSION)})
