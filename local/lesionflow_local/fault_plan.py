"""What the fault-injection run does: its settings, and its inputs built in code (valid but awkward images, and input
that must be rejected), each with the verdict the pipeline owes it.

Small sizes keep hundreds of uploads quick; the large-image cases are covered by the unit tests and the benchmarks.
"""

import random
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from io import BytesIO

from PIL import Image


@dataclass
class FaultRunSettings:
    uploads: int = 500
    endpoint_fault_rate: float = 0.15
    duplicate_rate: float = 0.1
    crash_rate: float = 0.05
    reupload_share: float = 0.05  # keys uploaded a second time (alternately the same bytes, another image)
    multipart_share: float = 0.05  # keys uploaded by multipart upload (S3 notifies CompleteMultipartUpload)
    backfill_share: float = 0.1  # keys `lesionflow backfill` sends again after S3's own notification
    forged_share: float = 0.1  # keys that also get forged notifications (empty, from the future, unknown version)
    foreign_events: int = 5  # forged notifications for objects in another bucket
    poison_messages: int = 5
    seed: int = 20261123
    timeout_seconds: float = 600


@dataclass(frozen=True)
class FaultInput:
    name: str
    expected: str  # SUCCEEDED or REJECTED
    body: bytes


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    """An image's file in ``fmt`` (the tests build their inputs with it too)."""
    out = BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _lesion(size=(300, 225), colour=(150, 90, 70)) -> Image.Image:
    image = Image.new("RGB", size, (226, 178, 160))
    image.paste(colour, (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4))
    return image


def synthetic_lesion_jpeg(size: tuple[int, int] = (600, 450)) -> bytes:
    """A dermoscopy-like JPEG drawn in code (a brown patch on skin tone, HAM10000's 600x450): no patient's image, for
    anything that needs one valid upload (``lesionflow check`` sends it to the endpoint)."""
    return encode(_lesion(size), "JPEG", quality=90)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    return encode(_lesion(), "JPEG", exif=exif.tobytes())


def _palette_with_transparency() -> bytes:
    palette = Image.new("P", (200, 200), 1)
    palette.putpalette([0, 255, 0, 150, 90, 70] + [0] * 762)
    return encode(palette, "PNG", transparency=0)


def _two_frames() -> bytes:
    frames = [_lesion(), _lesion(colour=(20, 20, 200))]
    return encode(frames[0], "PNG", save_all=True, append_images=frames[1:])


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims ``width`` x ``height``."""
    data = bytearray(encode(_lesion((64, 64)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@cache
def inputs() -> list[FaultInput]:
    """The fault run's uploads, valid and invalid, built on first use (not at import: every command imports this)."""
    valid = [
        FaultInput("ham-size.jpg", "SUCCEEDED", synthetic_lesion_jpeg()),
        FaultInput("progressive.jpg", "SUCCEEDED", encode(_lesion(), "JPEG", progressive=True)),
        FaultInput("cmyk.jpg", "SUCCEEDED", encode(_lesion().convert("CMYK"), "JPEG")),
        FaultInput("grey.png", "SUCCEEDED", encode(_lesion().convert("L"), "PNG")),
        FaultInput("16-bit.png", "SUCCEEDED", encode(Image.new("I;16", (200, 200), 40000), "PNG")),
        FaultInput("alpha.png", "SUCCEEDED", encode(Image.new("RGBA", (200, 200), (0, 255, 0, 0)), "PNG")),
        FaultInput("palette-transparent.png", "SUCCEEDED", _palette_with_transparency()),
        FaultInput("exif-rotated.jpg", "SUCCEEDED", _exif_rotated()),
        FaultInput("two-frames.png", "SUCCEEDED", _two_frames()),
        FaultInput("photo.jpg", "SUCCEEDED", encode(_lesion((1024, 768)), "JPEG")),
    ]
    invalid = [
        FaultInput("empty.jpg", "REJECTED", b""),
        FaultInput("notes.jpg", "REJECTED", b"dermatology clinic notes, not an image\n" * 4),
        FaultInput("page.png", "REJECTED", b"<!doctype html><html><body>upload</body></html>"),
        FaultInput("report.jpg", "REJECTED", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        FaultInput("noise.jpg", "REJECTED", random.Random(7).randbytes(4096)),
        FaultInput("truncated.jpg", "REJECTED", encode(_lesion(), "JPEG", quality=95)[:700]),
        FaultInput("truncated.png", "REJECTED", encode(_lesion(), "PNG")[:300]),
        FaultInput("bomb.png", "REJECTED", png_declaring(100_000, 100_000)),
        FaultInput("bomb.jpg", "REJECTED", jpeg_declaring(60_000, 60_000)),
        FaultInput("bitmap.jpg", "REJECTED", encode(_lesion(), "BMP")),
        FaultInput("scan.tiff", "REJECTED", encode(_lesion(), "TIFF")),
        FaultInput("tiny.png", "REJECTED", encode(_lesion((8, 8)), "PNG")),
    ]
    # Interleaved, so that any run of consecutive uploads mixes valid and invalid input (about 45% invalid).
    return [item for pair in zip(valid + valid[:2], invalid) for item in pair]
