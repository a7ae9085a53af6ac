"""Image checks and conversions with Pillow, on bytes in memory: no AWS, no environment.

Validation reads only the header, so a decompression bomb is refused before a single pixel is decoded. Decoding uses
JPEG's DCT scaling (``Image.draft``) so a 4000x3000 photo never needs its full-size bitmap for a 224x224 model input.
"""

from io import BytesIO

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.state import ImageFacts

# Leading bytes of each format we accept. Pillow can open many more (BMP, TIFF, ICO, ...): we trust only these.
SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
}
# What an alpha channel is composited onto, so colour hidden under transparent pixels never reaches the model.
BACKGROUND = (255, 255, 255)


class ImageLimits(BaseModel):
    """Bounds an upload must stay within; the template's parameters set them."""

    max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    min_side: int = Field(default=32, gt=0)
    allowed_formats: frozenset[str] = frozenset(SIGNATURES)


def check_size(size: int, limits: ImageLimits) -> None:
    """Refuse from the announced size alone, before anything is downloaded."""
    if size == 0:
        raise ImageRejected("the file is empty (0 bytes)", RejectionClass.EMPTY)
    if size > limits.max_bytes:
        raise ImageRejected(f"the file has {size} bytes, more than the limit of {limits.max_bytes}", RejectionClass.TOO_LARGE)


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's leading bytes, whatever its name or content type claim."""
    return next((name for name, magics in SIGNATURES.items() if data.startswith(magics)), None)


def inspect(data: bytes, limits: ImageLimits, sha256: str) -> ImageFacts:
    """Check an image from its header only; raise ImageRejected with a reason a person can act on."""
    check_size(len(data), limits)
    image_format = sniff_format(data)
    if image_format is None or image_format not in limits.allowed_formats:
        allowed = " or ".join(sorted(limits.allowed_formats))
        raise ImageRejected(f"not a supported image: the content is not {allowed}", RejectionClass.FORMAT)
    with _open(data, image_format) as image:
        width, height = image.size
        facts = ImageFacts(
            format=image_format,
            width=width,
            height=height,
            mode=image.mode,
            frames=getattr(image, "n_frames", 1),
            size=len(data),
            sha256=sha256,
        )
    if width * height > limits.max_pixels:
        raise ImageRejected(
            f"the image has {width}x{height} pixels, more than the limit of {limits.max_pixels}", RejectionClass.TOO_LARGE
        )
    if min(width, height) < limits.min_side:
        raise ImageRejected(
            f"the image is {width}x{height}, smaller than {limits.min_side} pixels on a side", RejectionClass.TOO_SMALL
        )
    return facts


def decode_rgb(data: bytes, image_format: str, size: tuple[int, int]) -> Image.Image:
    """Decode the first frame upright and in 8-bit RGB, at no more resolution than ``size`` needs.

    JPEG decodes at a reduced DCT scale (``draft``), so a phone photo never exists at full size; every other image is
    shrunk by an integer factor right after its full-size decode, before orientation and alpha are dealt with (an
    RGBA image briefly needs a second full-size copy there: ``make bench`` measures the peak).
    """
    with _open(data, image_format) as image:
        image.draft("RGB", size)  # JPEG only: decode at the smallest DCT scale still at least ``size``
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as error:
            raise ImageRejected(
                f"the image data is damaged or truncated ({type(error).__name__})", RejectionClass.DAMAGED
            ) from error
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
        small = _shrink(_to_8_bit(image), size)
    upright = small.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else small
    return _flatten(upright)


ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose does)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _to_8_bit(image: Image.Image) -> Image.Image:
    """Modes the rest can work with: 16/32-bit grey scaled (not clipped to white); palette and single-colour
    transparency turned into an alpha channel; bilevel into grey."""
    if image.mode.startswith("I"):
        return _scale_to_8_bit(image)
    if image.mode == "P" or "transparency" in image.info:
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Box-average by the largest integer factor that keeps both sides at least ``size`` in any orientation."""
    factor = min(image.size) // max(size)
    return image.reduce(factor) if factor >= 2 else image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any alpha composited onto the background so colour hidden under transparency never shows."""
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_8_bit(image: Image.Image) -> Image.Image:
    import numpy as np  # here, not at the top: only 16/32-bit images need it, and its import is ~50 ms of cold start

    pixels = np.asarray(image, dtype=np.uint32)
    top = 65535 if image.mode.startswith("I;16") or pixels.max(initial=0) <= 65535 else int(pixels.max())
    return Image.fromarray((pixels * 255 // max(top, 1)).astype(np.uint8), mode="L")


def _open(data: bytes, image_format: str) -> Image.Image:
    try:
        return Image.open(BytesIO(data), formats=[image_format])
    except Image.DecompressionBombError as error:
        raise ImageRejected(
            "the image declares far more pixels than it could hold (decompression bomb)", RejectionClass.BOMB
        ) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageRejected(
            f"the {image_format} header cannot be read ({type(error).__name__})", RejectionClass.DAMAGED
        ) from error
