"""Image checks and conversions with Pillow, on bytes in memory: no AWS, no environment.

Validation reads only the header, so a decompression bomb is refused before a single pixel is decoded. Decoding uses
JPEG's DCT scaling (``Image.draft``) so a 4000x3000 photo never needs its full-size bitmap for a 224x224 model input.

What an upload says about itself besides its pixels is untrusted and optional. Pixels that cannot be decoded reject the
image as damaged; metadata that cannot be read is ignored and the pixels are classified: an EXIF orientation that is
unreadable or not one of 1-8 counts as 1 (as it stands), a transparency that does not fit the image counts as none
(libpng drops such a tRNS chunk too), and an ICC profile is never applied (see ``decode_rgb``). No message carries
the upload's bytes or metadata values, only the name of the exception that stopped the decoder.
"""

from io import BytesIO

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.state import ImageFacts
from lesionflow.structure import check_structure

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
    check_structure(data, image_format)
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

    Damage: a file that ends early is rejected (``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False), and so is one whose
    decoder gives up (a marker in the wrong place, a Huffman code no table defines, a PNG stream that does not
    inflate). A JPEG whose entropy-coded data is corrupt but whose structure is intact cannot be told from a real
    picture: JPEG has no checksum, and libjpeg decodes what it finds (warning only to itself), so such an image is
    classified on the pixels it decodes to, as any poor photo is.

    Colour: the pixel values are the file's own; an embedded ICC profile is neither applied nor kept, as the models'
    training images were read (Pillow and the serving toolkits ignore ICC) and as earlier versions sent them.
    """
    try:
        with _open(data, image_format) as image:
            image.draft("RGB", size)  # JPEG only: decode at the smallest DCT scale still at least ``size``
            image.load()
            orientation = _orientation(image)
            small = _shrink(_to_8_bit(image), size)
    except UNDECODABLE as error:
        raise ImageRejected(
            f"the image data is damaged or truncated ({type(error).__name__})", RejectionClass.DAMAGED
        ) from error
    upright = small.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else small
    return _flatten(upright)


# What Pillow's decoders raise on pixel data they cannot decode.
UNDECODABLE = (OSError, SyntaxError, ValueError)
ORIENTATION_TAG = 0x0112
STRIP_RATIO = 8  # sides up to this many times the other keep their aspect when shrunk: no photo comes near it
# EXIF orientation -> the transpose that makes the picture upright (as ImageOps.exif_transpose does)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 to 8; 1 when there is none, when it cannot be read, or when it is not one of
    those values (0, 9, 65535, text, bytes). A value equal to one of them counts, whatever its TIFF type (a
    LONG or RATIONAL 6 is 6), as it always has.

    The EXIF parser is Pillow's, run on bytes anyone can write (an eXIf chunk, an APP1 segment, a PNG text chunk of
    hex): whatever it raises, the orientation is unreadable and the picture is taken as it stands."""
    try:
        orientation = image.getexif().get(ORIENTATION_TAG, 1)
        return int(orientation) if orientation in _UPRIGHT else 1
    except Exception:  # noqa: BLE001 - unreadable metadata is ignored, never a failure of the step
        return 1


def _to_8_bit(image: Image.Image) -> Image.Image:
    """Modes the rest can work with: 16/32-bit grey scaled (not clipped to white); palette and single-colour
    transparency turned into an alpha channel; bilevel into grey."""
    if image.mode.startswith("I"):
        return _scale_to_8_bit(image)
    transparency = _transparency(image)
    image.info.pop("transparency", None)  # only the checked value is converted, not what a text chunk put there
    if transparency is not None:
        image.info["transparency"] = transparency
        try:
            return image.convert("RGBA")
        except ValueError:  # a tRNS that names more palette entries than there are: ignored, as libpng does
            del image.info["transparency"]
    if image.mode == "P":
        return image.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def _transparency(image: Image.Image) -> int | bytes | tuple[int, int, int] | None:
    """The image's single transparent colour or palette alphas, if it has them in the shape its mode needs; Pillow
    keeps them in ``info`` beside every PNG text chunk, so a text chunk named "transparency" must not count."""
    value = image.info.get("transparency")
    if image.mode == "P" and (type(value) is bytes or type(value) is int and 0 <= value < 256):
        return value
    if image.mode in ("L", "1") and type(value) is int:
        return value
    if image.mode == "RGB" and type(value) is tuple and len(value) == 3 and all(type(v) is int for v in value):
        return value
    return None


def _shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Box-average by the largest integer factor that keeps both sides at least ``size`` in any orientation; a side
    more than ``STRIP_RATIO`` times the other is reduced further, to under twice that times ``size`` (a 32x1,250,000
    strip would otherwise stay full size, 160 MB a copy, through every conversion after)."""
    least = max(size)
    factor = min(image.size) // least
    factors = tuple(max(1, factor, side // (STRIP_RATIO * least)) for side in image.size)
    return image.reduce(factors) if max(factors) >= 2 else image


def _flatten(image: Image.Image) -> Image.Image:
    """RGB, with any alpha composited onto the background so colour hidden under transparency never shows."""
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _scale_to_8_bit(image: Image.Image) -> Image.Image:
    import numpy as np  # here, not at the top: only 16/32-bit images need it, and its import is ~50 ms of cold start

    if image.mode.startswith("I;16"):  # x * 255 // 65535 is x // 257: in uint16, into uint8, no 32-bit copies
        pixels = np.asarray(image)
        return Image.fromarray(np.floor_divide(pixels, 257, out=np.empty(pixels.shape, np.uint8), casting="unsafe"),
                               mode="L")
    pixels = np.asarray(image, dtype=np.uint32)
    top = 65535 if pixels.max(initial=0) <= 65535 else int(pixels.max())
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
