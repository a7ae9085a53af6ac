"""A bounded walk over an upload's file structure, before Pillow parses it: PNG chunks, JPEG markers and scans.

Pillow reads headers in Python, one chunk or segment at a time, and libjpeg decodes every scan of a progressive
JPEG. A small file can therefore cost more time than Validate or Preprocess have: 200,000 tiny Exif segments (Pillow
joins them, quadratically), 5 million empty APPn segments, 20 MB of fill bytes, 1.6 million empty PNG chunks, or a
progressive JPEG of 3,000 scans (each a full pass over the coefficients) all run past the functions' timeouts and
would end FAILED after every retry. A photograph, from any camera or encoder, is nowhere near these counts, so a file
over them is refused as ``too-complex`` in well under a second, whatever its size within ``MaxImageBytes``.

The walk only counts and skips: it reads no metadata and decodes nothing.
"""

import re
import struct

from lesionflow.errors import ImageRejected, RejectionClass

# JPEG: libjpeg-turbo's own guidance for untrusted input is to cap the scans (djpeg -maxscans); encoders write about
# 10 (libjpeg's progressive script) to 20 (mozjpeg's optimised ones).
MAX_JPEG_SCANS = 100
MAX_JPEG_SEGMENTS = 1024  # every marker segment (tables, APPn, COM, SOF, SOS...): a progressive file has ~3 a scan
MAX_JPEG_APP_SEGMENTS = 64  # APPn and COM: cameras write a handful (JFIF, Exif, XMP, ICC in up to a few dozen parts)
MAX_FILL_BYTES = 64  # 0xFF padding before a marker, allowed by the standard, written by no common encoder
# PNG: image data may be split into many chunks (libpng writes 8 KiB each, so 2,560 for 20 MiB; APNG frames add
# fdAT), everything else is a few dozen chunks at most.
MAX_PNG_DATA_CHUNKS = 65_536
MAX_PNG_OTHER_CHUNKS = 256
MAX_PNG_TEXT_CHUNKS = 16  # tEXt, zTXt, iTXt: each may inflate to 1 MB inside Pillow

_PNG_DATA = {b"IDAT", b"fdAT"}
_PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt"}
# In entropy-coded data a 0xFF is followed by 0x00 (a stuffed byte) or a restart marker (RST0-7); the next real
# marker is a run of 0xFF (a marker's own and any fill bytes) followed by anything else. Anchored at a run's first
# byte and possessive, so the search is linear even over megabytes of 0xFF.
_NEXT_MARKER = re.compile(rb"(?<!\xff)\xff++(?=[^\x00\xd0-\xd7\xff])")
_STANDALONE = {0x01} | set(range(0xD0, 0xD8))  # TEM and RSTn carry no length
_SOS, _EOI = 0xDA, 0xD9


def check_structure(data: bytes, image_format: str) -> None:
    """Refuse a JPEG or PNG whose structure is far beyond any photograph's (``ImageRejected``, too-complex); leave
    anything the walk cannot follow to Pillow, which rejects it as damaged."""
    if image_format == "JPEG":
        _check_jpeg(data)
    elif image_format == "PNG":
        _check_png(data)


def _too_complex(what: str, limit: int) -> ImageRejected:
    return ImageRejected(f"the file has more {what} than the {limit} an image needs", RejectionClass.TOO_COMPLEX)


def _check_jpeg(data: bytes) -> None:
    position, segments, apps, scans = 2, 0, 0, 0
    while position < len(data) - 1:
        fill = position
        while position < len(data) and data[position] == 0xFF:
            position += 1
            if position - fill > MAX_FILL_BYTES + 1:
                raise _too_complex("fill bytes before a marker", MAX_FILL_BYTES)
        if position >= len(data) or position == fill:
            return  # not a marker where one must be: Pillow says how it is damaged
        marker = data[position]
        position += 1
        if marker == _EOI:
            return
        if marker in _STANDALONE:
            continue
        if position + 2 > len(data):
            return
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise _too_complex("marker segments", MAX_JPEG_SEGMENTS)
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            apps += 1
            if apps > MAX_JPEG_APP_SEGMENTS:
                raise _too_complex("application and comment segments", MAX_JPEG_APP_SEGMENTS)
        (length,) = struct.unpack_from(">H", data, position)
        position += length
        if marker == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise _too_complex("scans", MAX_JPEG_SCANS)
            found = _NEXT_MARKER.search(data, position)
            if found is None:
                return
            position = found.start()


def _check_png(data: bytes) -> None:
    position, data_chunks, other, text = 8, 0, 0, 0
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        position += 12 + length
        if kind in _PNG_DATA:
            data_chunks += 1
            if data_chunks > MAX_PNG_DATA_CHUNKS:
                raise _too_complex("image data chunks", MAX_PNG_DATA_CHUNKS)
            continue
        if kind == b"IEND":
            return
        other += 1
        if other > MAX_PNG_OTHER_CHUNKS:
            raise _too_complex("chunks besides the image data", MAX_PNG_OTHER_CHUNKS)
        if kind in _PNG_TEXT:
            text += 1
            if text > MAX_PNG_TEXT_CHUNKS:
                raise _too_complex("text chunks", MAX_PNG_TEXT_CHUNKS)
