"""Files whose structure is far beyond any photograph's are refused before Pillow parses them (time bombs: a small
file that would run Validate or Preprocess past its timeout and end FAILED after every retry)."""

import struct
import zlib

import pytest
from PIL import Image

from lesionflow.errors import ImageRejected, RejectionClass
from lesionflow.images import ImageLimits, inspect
from lesionflow.structure import (MAX_FILL_BYTES, MAX_JPEG_APP_SEGMENTS, MAX_JPEG_SCANS, MAX_PNG_DATA_CHUNKS,
                                  MAX_PNG_OTHER_CHUNKS, MAX_PNG_TEXT_CHUNKS, check_structure)
from tests.support import encode, jpeg, png


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def chunk(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def with_segments(data: bytes, extra: bytes) -> bytes:
    """A JPEG with ``extra`` right after its SOI."""
    return data[:2] + extra + data[2:]


def with_chunks(data: bytes, extra: bytes) -> bytes:
    """A PNG with ``extra`` right after its IHDR (8 bytes of signature, 25 of IHDR)."""
    return data[:33] + extra + data[33:]


def progressive(scans_repeated: int) -> bytes:
    """A progressive JPEG whose last scan is repeated (as an attacker pads one with thousands of cheap scans)."""
    data = encode(Image.new("L", (256, 256), 128), "JPEG", progressive=True)
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * scans_repeated + b"\xff\xd9"


def refused(data: bytes) -> ImageRejected:
    with pytest.raises(ImageRejected) as rejection:
        inspect(data, ImageLimits(), "0" * 64)
    return rejection.value


@pytest.mark.parametrize(("name", "data"), [
    ("repeated scans", progressive(MAX_JPEG_SCANS)),
    ("application segments", with_segments(jpeg(), segment(0xE5, b"") * MAX_JPEG_APP_SEGMENTS)),
    ("Exif segments, which Pillow joins one by one", with_segments(
        jpeg(), segment(0xE1, b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00") * 200_000)),
    ("comment segments", with_segments(jpeg(), segment(0xFE, b"x") * 5_000)),
    ("fill bytes", jpeg()[:2] + b"\xff" * (MAX_FILL_BYTES + 2) + jpeg()[3:]),
    ("fill bytes by the megabyte", jpeg()[:2] + b"\xff" * 20_000_000 + jpeg()[3:]),
    ("private chunks", with_chunks(png(), chunk(b"prIv") * (MAX_PNG_OTHER_CHUNKS + 1))),
    ("empty private chunks by the million", with_chunks(png(), chunk(b"prIv") * 1_600_000)),
    ("text chunks", with_chunks(png(), chunk(b"tEXt", b"k\x00v") * (MAX_PNG_TEXT_CHUNKS + 1))),
    ("empty image data chunks", with_chunks(png(), chunk(b"IDAT") * (MAX_PNG_DATA_CHUNKS + 1))),
], ids=lambda value: value if isinstance(value, str) else "")
def test_a_structure_no_photograph_has_is_refused_as_too_complex(name, data):
    # Given a file padded with what Pillow or libjpeg would spend seconds on, When it is validated
    rejection = refused(data)

    # Then it is refused, saying what there is too much of, and nothing else about the file
    assert rejection.rejection_class is RejectionClass.TOO_COMPLEX
    assert str(rejection).startswith("the file has more ")


@pytest.mark.parametrize("data", [
    progressive(MAX_JPEG_SCANS - 20),  # Pillow's own 8 or so scans, plus repeats up to the limit
    with_segments(jpeg(), segment(0xE1, b"Exif\x00\x00") + segment(0xE2, b"ICC_PROFILE\x00") * 30
                  + segment(0xFE, b"a comment")),
    encode(Image.new("RGB", (300, 200), (10, 20, 30)), "JPEG", quality=95, progressive=True, optimize=True),
    with_chunks(png(), chunk(b"tEXt", b"k\x00v") * MAX_PNG_TEXT_CHUNKS + chunk(b"prIv") * 100),
    with_chunks(png(), chunk(b"IDAT") * 10_000),  # empty data chunks, as some encoders split streams
], ids=["progressive", "camera-like segments", "optimised progressive", "text and private chunks", "split data"])
def test_files_within_the_limits_pass_the_walk(data):
    check_structure(data, "JPEG" if data.startswith(b"\xff\xd8") else "PNG")


def test_entropy_data_full_of_stuffed_bytes_is_walked_past_not_taken_for_markers():
    # Given a JPEG whose scan data is mostly 0xFF 0x00 (a stuffed 0xFF): valid, and the walk's worst case
    data = jpeg(64, 64)
    scan = data.rindex(b"\xff\xda")
    header_end = scan + 2 + struct.unpack_from(">H", data, scan + 2)[0]
    padded = data[:header_end] + b"\xff\x00" * 5_000_000 + data[header_end:]

    # When its structure is walked, Then it is not refused: every 0xFF there is stuffed, none starts a marker
    check_structure(padded, "JPEG")
