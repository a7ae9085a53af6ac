"""Uploads that carry metadata, and structure-aware mutants of PNG and JPEG files, with what Validate and Preprocess
make of each: one module for the unit tests, the pixels-only integration test, the fuzz test and ``make fuzz``.

A mutant is rebuilt from ``(seed, index)`` alone: ``mutant(seed, index)`` gives the same bytes and the same list of
mutations every time, so the line a crash prints (``--seed S --case I``) is its reproducer.

The mutations know the formats' structure, so that most mutants get past the first check and reach the code that
reads what they mutate: PNG chunks are rewritten with their CRC recomputed (sometimes deliberately not), ancillary
chunks inserted (text, eXIf, iCCP, sBIT, gAMA, pHYs, ... and unknown private ones), IHDR fields changed; JPEG segments
are inserted, mutated or truncated with their length kept consistent or not (APPn: Exif, XMP, ICC, MPF, Adobe, JFIF,
Photoshop; COM), and SOF dimensions, DQT and DHT tables and the entropy-coded data mutated.
"""

import random
import struct
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from hashlib import sha256
from io import BytesIO
from time import monotonic

import numpy as np
from PIL import Image, PngImagePlugin

from lesionflow.contracts import IMAGE_ENCODINGS, ModelContract, contract_names, load_contract
from lesionflow.errors import ImageRejected
from lesionflow.images import ImageLimits, inspect
from lesionflow.preprocessing import model_input

MARKER = "Patient: Jane Doe, MRN 0042"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_NAMESPACE = "http://ns.adobe.com/xap/1.0/"
# Bytes that betray metadata in a file: the marker, and the signatures of the containers metadata travels in.
METADATA_SIGNATURES = (MARKER.encode(), MARKER.encode().hex().encode(), b"Exif\x00\x00", b"ICC_PROFILE",
                       b"http://ns.adobe.com/xap", b"iCCP", b"tEXt", b"zTXt", b"iTXt", b"eXIf")


# ------------------------------------------------------------------------------------------------ building blocks
def tiff(entries: list[tuple[int, int, int, bytes]], endian: str = "<") -> bytes:
    """A one-IFD TIFF structure (the body of EXIF): ``(tag, type, count, value bytes)`` per entry, values over four
    bytes placed after the IFD. Any type and count may be given, so a test can write what a camera never would."""
    head = (b"II*\x00" if endian == "<" else b"MM\x00*") + struct.pack(endian + "I", 8)
    data_at = 8 + 2 + 12 * len(entries) + 4
    ifd, extra = struct.pack(endian + "H", len(entries)), b""
    for tag, kind, count, value in entries:
        if len(value) <= 4:
            ifd += struct.pack(endian + "HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            ifd += struct.pack(endian + "HHII", tag, kind, count, data_at + len(extra)) + value
            extra += value + b"\x00" * (len(value) % 2)
    return head + ifd + struct.pack(endian + "I", 0) + extra


def exif_description(text: str = MARKER) -> bytes:
    """EXIF with an ImageDescription (0x010E, ASCII), as a camera or a clinic's software writes it."""
    value = text.encode() + b"\x00"
    return b"Exif\x00\x00" + tiff([(0x010E, 2, len(value), value)])


def exif_orientation(value: bytes, kind: int = 3, count: int = 1) -> bytes:
    """EXIF whose Orientation (0x0112) is ``value`` as raw bytes of TIFF type ``kind`` (3 = SHORT, the valid one)."""
    return b"Exif\x00\x00" + tiff([(0x0112, kind, count, value)])


def xmp_packet(text: str = MARKER, orientation: str | None = None) -> bytes:
    rotate = f' tiff:Orientation="{orientation}"' if orientation is not None else ""
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="{XMP_NAMESPACE}" '
            f'xmlns:tiff="http://ns.adobe.com/tiff/1.0/"{rotate}><dc:description>{text}</dc:description>'
            f'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def icc_profile(description: str = MARKER) -> bytes:
    """A small ICC v2 display profile whose 'desc' tag is ``description`` (nothing in the pipeline parses a profile,
    so its other tags are left out)."""
    text = description.encode() + b"\x00"
    desc = b"desc\x00\x00\x00\x00" + struct.pack(">I", len(text)) + text + b"\x00" * 12 + b"\x00" * 67
    tags = struct.pack(">I", 1) + b"desc" + struct.pack(">II", 128 + 4 + 12, len(desc))
    size = 128 + len(tags) + len(desc)
    header = (struct.pack(">I", size) + b"lcms" + b"\x02\x10\x00\x00" + b"mntrRGB XYZ " + b"\x07\xea\x00\x0c\x00\x02"
              + b"\x00" * 6 + b"acsp" + b"\x00" * 24 + b"\x00\x00\xf6\xd6\x00\x01\x00\x00\x00\x00\xd3\x2d"
              + b"\x00" * 48)
    return header.ljust(128, b"\x00") + tags + desc


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk, its CRC computed unless ``crc`` forces a (wrong) one."""
    checksum = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def lesion(size: tuple[int, int] = (96, 72), mode: str = "RGB") -> Image.Image:
    """A small picture with texture (so JPEG has real entropy-coded data to mutate): skin-like noise, a dark patch."""
    width, height = size
    rng = np.random.default_rng(width * 7 + height)
    pixels = np.clip(rng.normal((226, 178, 160), 18, (height, width, 3)), 0, 255).astype(np.uint8)
    pixels[height // 4: 3 * height // 4, width // 4: 3 * width // 4] //= 2
    return Image.fromarray(pixels, "RGB").convert(mode)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


# ------------------------------------------------------------------------------------- uploads carrying metadata
def _png_text(kind: str, key: str, value: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    if kind == "tEXt":
        info.add_text(key, value)
    elif kind == "zTXt":
        info.add_text(key, value, zip=True)
    else:
        info.add_itxt(key, value, lang="en", tkey="Description")
    return info


def metadata_uploads(marker: str = MARKER) -> dict[str, tuple[str, bytes]]:
    """One upload per kind of metadata (name -> (format, bytes)), each holding ``marker``; every kind an upload can
    carry in the two accepted formats, and one that carries them all."""
    picture = lesion((96, 72))
    exif, xmp, icc = exif_description(marker), xmp_packet(marker), icc_profile(marker)
    uploads = {
        "jpeg-exif": ("JPEG", encode(picture, "JPEG", exif=exif)),
        "jpeg-xmp": ("JPEG", encode(picture, "JPEG", xmp=xmp)),
        "jpeg-icc": ("JPEG", encode(picture, "JPEG", icc_profile=icc)),
        "jpeg-com": ("JPEG", encode(picture, "JPEG", comment=marker.encode())),
        "jpeg-all": ("JPEG", encode(picture, "JPEG", exif=exif, xmp=xmp, icc_profile=icc, comment=marker.encode())),
        "png-exif": ("PNG", encode(picture, "PNG", exif=exif)),  # an eXIf chunk
        "png-xmp": ("PNG", encode(picture, "PNG", pnginfo=_png_text("iTXt", "XML:com.adobe.xmp", xmp.decode()))),
        "png-icc": ("PNG", encode(picture, "PNG", icc_profile=icc)),
        "png-text": ("PNG", encode(picture, "PNG", pnginfo=_png_text("tEXt", "comment", marker))),
        "png-ztxt": ("PNG", encode(picture, "PNG", pnginfo=_png_text("zTXt", "Description", marker))),
        "png-itxt": ("PNG", encode(picture, "PNG", pnginfo=_png_text("iTXt", "Author", marker))),
        "png-raw-profile": ("PNG", encode(picture, "PNG", pnginfo=_png_text(
            "tEXt", "Raw profile type exif", f"\nexif\n{len(exif):8d}\n{exif.hex()}\n"))),
    }
    everything = _png_text("tEXt", "comment", marker)
    everything.add_text("Description", marker, zip=True)
    everything.add_itxt("XML:com.adobe.xmp", xmp.decode())
    uploads["png-all"] = ("PNG", encode(picture, "PNG", exif=exif, icc_profile=icc, pnginfo=everything))
    return uploads


def carries(data: bytes, marker: str = MARKER) -> bool:
    """Whether ``marker`` is in the file: as it is, hex-encoded (a PNG "Raw profile"), or deflated in a PNG zTXt or
    iCCP chunk."""
    if marker.encode() in data or marker.encode().hex().encode() in data:
        return True
    return data.startswith(PNG_SIGNATURE) and any(
        marker.encode() in zlib.decompress(chunk.data.split(b"\x00", 1)[1][1:])
        for chunk in png_chunks(data) if chunk.kind in (b"zTXt", b"iCCP"))


def png_contract(base: str = "hf-image-classification") -> ModelContract:
    """A contract that sends the image as PNG: none is built in, but a contract file may say ``"encoding": "png"``."""
    contract = load_contract(base)
    return contract.model_copy(update={"name": "png-image", "content_type": "image/png",
                                       "input": contract.input.model_copy(update={"encoding": "png"})})


def every_contract() -> list[ModelContract]:
    """The built-in contracts and a PNG one: every encoding the model input can take."""
    return [load_contract(name) for name in contract_names()] + [png_contract()]


@cache
def clean_info_keys(encoding: str) -> frozenset[str]:
    """What Pillow reports of a model input encoded as ``encoding`` from a fresh image: anything more came from the
    upload (JPEG's own JFIF header is Pillow's, not the upload's)."""
    with Image.open(BytesIO(encode(Image.new("RGB", (8, 8)), encoding.upper()))) as image:
        return frozenset(image.info)


def metadata_left_in(body: bytes, encoding: str) -> list[str]:
    """What of the upload's metadata a model input still carries: signatures found in its bytes and, for an image
    encoding, ``info`` keys a fresh image would not have (an empty list means pixels only)."""
    found = [repr(signature) for signature in METADATA_SIGNATURES if signature in body]
    if encoding in IMAGE_ENCODINGS:
        with Image.open(BytesIO(body)) as image:
            found += [f"info[{key!r}]" for key in sorted(set(image.info) - clean_info_keys(encoding))]
            if image.getexif():
                found.append("getexif()")
    return found


# ------------------------------------------------------------------------------------------------ base images
@cache
def bases() -> dict[str, tuple[str, bytes]]:
    """The valid images the mutants start from: each mode and kind of file the decoder has a path for."""
    picture = lesion((96, 72))
    palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    rgba = picture.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(picture.size))
    return {
        "png-rgb": ("PNG", encode(picture, "PNG")),
        "png-rgba": ("PNG", encode(rgba, "PNG")),
        "png-palette-trns": ("PNG", encode(palette, "PNG", transparency=3)),
        "png-grey16": ("PNG", encode(Image.fromarray(np.asarray(picture.convert("L"), np.uint16) * 257), "PNG")),
        "png-grey-trns": ("PNG", encode(picture.convert("L"), "PNG", transparency=40)),
        "png-bilevel": ("PNG", encode(picture.convert("1"), "PNG")),
        "png-metadata": ("PNG", metadata_uploads()["png-all"][1]),
        "png-apng": ("PNG", encode(picture, "PNG", save_all=True, append_images=[rgba.convert("RGB")])),
        "jpeg-baseline": ("JPEG", encode(picture, "JPEG", quality=90)),
        "jpeg-progressive": ("JPEG", encode(picture, "JPEG", quality=90, progressive=True)),
        "jpeg-grey": ("JPEG", encode(picture.convert("L"), "JPEG")),
        "jpeg-cmyk": ("JPEG", encode(picture.convert("CMYK"), "JPEG")),
        "jpeg-restarts": ("JPEG", encode(picture, "JPEG", restart_marker_blocks=2)),
        "jpeg-rotated": ("JPEG", encode(picture, "JPEG", exif=_rotated_exif())),
        "jpeg-metadata": ("JPEG", metadata_uploads()["jpeg-all"][1]),
    }


def _rotated_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


# --------------------------------------------------------------------------------------------- file structures
@dataclass
class Chunk:
    kind: bytes
    data: bytes
    crc: int | None = None  # None: the right one, computed when written

    def encoded(self) -> bytes:
        return png_chunk(self.kind, self.data, self.crc)


def png_chunks(data: bytes) -> list[Chunk]:
    chunks, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append(Chunk(kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def png_file(chunks: list[Chunk]) -> bytes:
    return PNG_SIGNATURE + b"".join(chunk.encoded() for chunk in chunks)


STANDALONE = {0x01, 0xD8, 0xD9, *range(0xD0, 0xD8)}


@dataclass
class Segment:
    marker: int
    payload: bytes = b""
    scan: bytes = b""  # the entropy-coded data after an SOS header
    length: int | None = None  # None: consistent with the payload

    def encoded(self) -> bytes:
        if self.marker in STANDALONE:
            return bytes((0xFF, self.marker)) + self.scan
        length = len(self.payload) + 2 if self.length is None else self.length
        return bytes((0xFF, self.marker)) + struct.pack(">H", length & 0xFFFF) + self.payload + self.scan


def jpeg_segments(data: bytes) -> list[Segment]:
    segments, at = [], 0
    while at + 2 <= len(data):
        marker = data[at + 1]
        if marker in STANDALONE:
            segments.append(Segment(marker))
            at += 2
            if marker == 0xD9:
                break
            continue
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        segment = Segment(marker, data[at + 4:at + 2 + length])
        at += 2 + length
        if marker == 0xDA:  # entropy-coded data runs to the next marker that is not a stuffed byte or a restart
            end = at
            while end + 1 < len(data) and not (data[end] == 0xFF and data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
            segment.scan, at = data[at:end], end
        segments.append(segment)
    return segments


def jpeg_file(segments: list[Segment]) -> bytes:
    return b"".join(segment.encoded() for segment in segments)


# ---------------------------------------------------------------------------------------------------- mutations
INTERESTING_SIDES = (0, 1, 2, 31, 32, 33, 255, 256, 4000, 6324, 6325, 32767, 32768, 65535, 65536, 2 ** 31 - 1,
                     2 ** 31, 2 ** 32 - 1)
INTERESTING_BYTES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 0x7F, 0x80, 0xFE, 0xFF)


def _noise(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Flip, overwrite, insert, delete or truncate: one small change to ``data``."""
    data = bytearray(data)
    how = rng.choice(["flip", "set", "insert", "delete", "truncate", "extend"] if data else ["extend"])
    at = rng.randrange(len(data)) if data else 0
    if how == "flip":
        data[at] ^= 1 << rng.randrange(8)
    elif how == "set":
        data[at] = rng.choice(INTERESTING_BYTES + (rng.randrange(256),))
    elif how == "insert":
        data[at:at] = _noise(rng, rng.choice((1, 2, 4, 16)))
    elif how == "delete":
        del data[at:at + rng.choice((1, 2, 4, 16))]
    elif how == "truncate":
        del data[at:]
    else:
        data += _noise(rng, rng.choice((1, 4, 64, 1024)))
    return bytes(data), f"{how}@{at}"


def _exif_body(rng: random.Random) -> tuple[bytes, str]:
    """EXIF, valid or not: an orientation of any type and value, a description, noise, or a mutated valid one."""
    choice = rng.choice(["orientation", "orientation-type", "noise", "mutated", "truncated", "description"])
    if choice == "orientation":
        value = rng.choice((0, 1, 2, 6, 8, 9, 255, 65535, rng.randrange(65536)))
        return exif_orientation(struct.pack("<H", value)), f"orientation={value}"
    if choice == "orientation-type":
        kind, count = rng.choice(((2, 2), (4, 1), (5, 1), (7, 4), (3, 2), (3, 0), (3, 70000), (12, 1), (99, 1)))
        return exif_orientation(_noise(rng, 8), kind, count), f"orientation type={kind} count={count}"
    if choice == "noise":
        size = rng.choice((0, 1, 4, 8, 40, 200))
        return b"Exif\x00\x00" + _noise(rng, size), f"noise[{size}]"
    if choice == "description":
        return exif_description(), "description"
    valid = rng.choice((exif_description(), _rotated_exif()))
    if choice == "truncated":
        cut = rng.randrange(6, 40)
        return valid[:cut], f"truncated[{cut}]"
    body, how = _mutate_bytes(rng, valid)
    return body, f"mutated {how}"


def _text_value(rng: random.Random) -> tuple[str, str]:
    choice = rng.choice(["marker", "noise", "raw-profile", "broken-raw-profile", "long", "xmp"])
    if choice == "marker":
        return MARKER, "marker"
    if choice == "noise":
        return _noise(rng, rng.randrange(1, 64)).decode("latin-1"), "noise"
    if choice in ("raw-profile", "broken-raw-profile"):
        body = _exif_body(rng)[0]
        hexed = body.hex() if choice == "raw-profile" else _mutate_bytes(rng, body.hex().encode())[0].decode("latin-1")
        return f"\nexif\n{rng.choice((len(body), 0, 99999)):8d}\n{hexed}\n", choice
    if choice == "long":
        return "x" * rng.choice((65534, 70000)), "long"
    return xmp_packet(orientation=rng.choice(("0", "6", "9", "x", ""))).decode(), "xmp"


TEXT_KEYS = ("comment", "Raw profile type exif", "Raw profile type APP1", "XML:com.adobe.xmp", "Description",
             "icc_profile", "exif", "dpi", "transparency")


def _png_text_chunk(rng: random.Random) -> tuple[Chunk, str]:
    kind = rng.choice((b"tEXt", b"zTXt", b"iTXt"))
    key = rng.choice(TEXT_KEYS + ("", "k" * 80)).encode("latin-1")
    value, what = _text_value(rng)
    raw = value.encode("latin-1" if kind != b"iTXt" else "utf-8", "replace")
    if kind == b"tEXt":
        data = key + b"\x00" + raw
    elif kind == b"zTXt":
        data = key + b"\x00" + bytes((rng.choice((0, 0, 1)),)) + (zlib.compress(raw) if rng.random() < 0.8 else raw)
    else:
        compressed = rng.choice((0, 1))
        data = (key + b"\x00" + bytes((compressed, rng.choice((0, 0, 7)))) + b"en\x00Description\x00"
                + (zlib.compress(raw) if compressed and rng.random() < 0.8 else raw))
    return Chunk(kind, data), f"{kind.decode()} {key[:24]!r}={what}"


def _png_ancillary(rng: random.Random) -> tuple[Chunk, str]:
    kind = rng.choice(["text", "text", "eXIf", "eXIf", "iCCP", "sBIT", "gAMA", "pHYs", "cHRM", "sRGB", "tRNS", "bKGD",
                       "tIME", "hIST", "sPLT", "acTL", "fcTL", "private", "critical-unknown"])
    if kind == "text":
        return _png_text_chunk(rng)
    if kind == "eXIf":
        body, what = _exif_body(rng)
        return Chunk(b"eXIf", body.removeprefix(b"Exif\x00\x00") if rng.random() < 0.8 else body), f"eXIf {what}"
    if kind == "iCCP":
        profile, what = rng.choice(((icc_profile(), "marker profile"), (_noise(rng, 64), "noise profile")))
        method = rng.choice((0, 0, 1))
        packed = zlib.compress(profile) if rng.random() < 0.8 else _noise(rng, 40)
        return Chunk(b"iCCP", b"profile\x00" + bytes((method,)) + packed), f"iCCP {what} method={method}"
    if kind in ("private", "critical-unknown"):
        letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))
        name = (letters[0] if kind == "private" else letters[0].upper()) + "r" + letters[1:].upper()
        return Chunk(name.encode(), _noise(rng, rng.choice((0, 4, 100)))), f"chunk {name}"
    sizes = {"sBIT": (1, 2, 3, 4, 5), "gAMA": (4, 0, 3), "pHYs": (9, 8, 20), "cHRM": (32, 31), "sRGB": (1, 0, 2),
             "tRNS": (1, 2, 6, 3, 256, 300), "bKGD": (1, 2, 6), "tIME": (7,), "hIST": (2, 32), "sPLT": (10, 30),
             "acTL": (8, 4), "fcTL": (26, 25)}
    size = rng.choice(sizes[kind])
    data = bytes(rng.choice(INTERESTING_BYTES) for _ in range(size)) if rng.random() < 0.5 else _noise(rng, size)
    return Chunk(kind.encode(), data), f"{kind}[{size}]"


IHDR_FIELDS = {"width": (0, ">I"), "height": (4, ">I"), "bit-depth": (8, "B"), "colour-type": (9, "B"),
               "compression": (10, "B"), "filter": (11, "B"), "interlace": (12, "B")}


def mutate_png(rng: random.Random, chunks: list[Chunk]) -> str:
    how = rng.choice(["insert", "insert", "insert", "chunk-data", "chunk-data", "ihdr", "ihdr", "crc", "duplicate",
                      "drop", "swap", "split-idat"])
    if how == "insert":
        chunk, what = _png_ancillary(rng)
        at = rng.randrange(1, len(chunks) + 1)
        chunks.insert(at, chunk)
        return f"insert {what} at {at}"
    if how == "chunk-data":
        at = rng.randrange(len(chunks))
        chunks[at].data, change = _mutate_bytes(rng, chunks[at].data)
        return f"mutate {chunks[at].kind.decode('latin-1')} {change}"
    if how == "ihdr":
        name = rng.choice(list(IHDR_FIELDS))
        offset, layout = IHDR_FIELDS[name]
        value = rng.choice(INTERESTING_SIDES) if layout == ">I" else rng.choice(INTERESTING_BYTES)
        data = bytearray(chunks[0].data.ljust(13, b"\x00"))
        data[offset:offset + struct.calcsize(layout)] = struct.pack(layout, value & (0xFF if layout == "B" else
                                                                                     0xFFFFFFFF))
        chunks[0].data = bytes(data)
        return f"IHDR {name}={value}"
    if how == "crc":
        at = rng.randrange(len(chunks))
        chunks[at].crc = rng.randrange(2 ** 32)
        return f"bad CRC on {chunks[at].kind.decode('latin-1')}"
    if how == "duplicate":
        at = rng.randrange(len(chunks))
        chunks.insert(rng.randrange(len(chunks) + 1), Chunk(chunks[at].kind, chunks[at].data))
        return f"duplicate {chunks[at].kind.decode('latin-1')}"
    if how == "drop" and len(chunks) > 1:
        at = rng.randrange(len(chunks))
        return f"drop {chunks.pop(at).kind.decode('latin-1')}"
    if how == "swap" and len(chunks) > 1:
        a, b = rng.sample(range(len(chunks)), 2)
        chunks[a], chunks[b] = chunks[b], chunks[a]
        return f"swap {a} {b}"
    idats = [i for i, chunk in enumerate(chunks) if chunk.kind == b"IDAT"]
    if not idats:
        return "no IDAT to split"
    at = idats[0]
    cut = rng.randrange(len(chunks[at].data) + 1)
    whole = chunks[at].data
    chunks[at:at + 1] = [Chunk(b"IDAT", whole[:cut]), Chunk(b"IDAT", whole[cut:])]
    return f"split IDAT at {cut}"


def _app_segment(rng: random.Random) -> tuple[Segment, str]:
    kind = rng.choice(["exif", "exif", "xmp", "icc", "icc", "mpf", "adobe", "jfif", "photoshop", "com", "noise"])
    if kind == "exif":
        body, what = _exif_body(rng)
        return Segment(0xE1, body), f"APP1 Exif {what}"
    if kind == "xmp":
        packet = xmp_packet(orientation=rng.choice(("0", "1", "6", "9", "65535", "x")))
        return Segment(0xE1, XMP_NAMESPACE.encode() + b"\x00" + _mutate_bytes(rng, packet)[0]), "APP1 XMP"
    if kind == "icc":
        sequence, count = rng.choice(((1, 1), (0, 1), (2, 1), (1, 0), (1, 2), (255, 255)))
        profile = rng.choice((icc_profile(), _noise(rng, 30), b""))
        return Segment(0xE2, b"ICC_PROFILE\x00" + bytes((sequence, count)) + profile), f"APP2 ICC {sequence}/{count}"
    if kind == "mpf":
        entries = [(0xB000, 7, 4, b"0100"), (0xB001, 4, 1, struct.pack(">I", rng.choice((0, 1, 2, 3, 2 ** 31)))),
                   (0xB002, 7, rng.choice((16, 32, 0)), _noise(rng, 32))]
        return Segment(0xE2, b"MPF\x00" + tiff(entries, ">")), "APP2 MPF"
    if kind == "adobe":
        return Segment(0xEE, b"Adobe" + _noise(rng, rng.choice((6, 7, 2)))), "APP14 Adobe"
    if kind == "jfif":
        return Segment(0xE0, b"JFIF\x00" + _noise(rng, rng.choice((9, 4, 20)))), "APP0 JFIF"
    if kind == "photoshop":
        block = b"8BIM" + _noise(rng, 2) + b"\x00\x00" + struct.pack(">I", rng.choice((4, 100000))) + _noise(rng, 4)
        return Segment(0xED, b"Photoshop 3.0\x00" + block), "APP13 Photoshop"
    if kind == "com":
        return Segment(0xFE, rng.choice((MARKER.encode(), b"", _noise(rng, 100)))), "COM"
    marker = rng.randrange(0xE0, 0xF0)
    return Segment(marker, _noise(rng, rng.choice((0, 2, 16, 300)))), f"APP{marker - 0xE0} noise"


def _find(segments: list[Segment], markers) -> int | None:
    found = [i for i, segment in enumerate(segments) if segment.marker in markers]
    return found[0] if found else None


SOF_MARKERS = (0xC0, 0xC1, 0xC2, 0xC3)


def mutate_jpeg(rng: random.Random, segments: list[Segment]) -> str:
    how = rng.choice(["app", "app", "app", "sof", "sof", "dqt", "dht", "segment", "length", "scan", "scan", "drop",
                      "duplicate", "dri", "truncate"])
    if how == "app":
        segment, what = _app_segment(rng)
        if rng.random() < 0.25:
            segment.length = max(0, len(segment.payload) + 2 + rng.choice((-2, -1, 1, 2, 100, 65535)))
            what += f" length={segment.length}"
        at = rng.randrange(1, len(segments))
        segments.insert(at, segment)
        return f"insert {what} at {at}"
    if how == "sof" and (at := _find(segments, SOF_MARKERS)) is not None:
        data = bytearray(segments[at].payload)
        part = rng.choice(["height", "width", "precision", "components", "sampling", "table"])
        if part in ("height", "width") and len(data) >= 5:
            offset = 1 if part == "height" else 3
            value = rng.choice(INTERESTING_SIDES) & 0xFFFF
            data[offset:offset + 2] = struct.pack(">H", value)
            part += f"={value}"
        elif part == "precision" and data:
            data[0] = rng.choice((0, 1, 8, 12, 16, 255))
        elif part == "components" and len(data) > 5:
            data[5] = rng.choice((0, 1, 2, 3, 4, 5, 255))
        elif len(data) > 8:
            index = 6 + 3 * rng.randrange(max(1, (len(data) - 6) // 3)) + (1 if part == "sampling" else 2)
            if index < len(data):
                data[index] = rng.choice((0, 0x11, 0x22, 0x44, 0x45, 0xFF, 3, 4))
        segments[at].payload = bytes(data)
        return f"SOF {part}"
    if how in ("dqt", "dht") and (at := _find(segments, (0xDB,) if how == "dqt" else (0xC4,))) is not None:
        data = bytearray(segments[at].payload)
        if data and rng.random() < 0.3:
            data[0] = rng.choice((0x00, 0x01, 0x04, 0x10, 0x11, 0x1F, 0xFF))  # class / precision and table id
            segments[at].payload = bytes(data)
            return f"{how.upper()} table selector={data[0]:#x}"
        segments[at].payload, change = _mutate_bytes(rng, bytes(data))
        return f"{how.upper()} {change}"
    if how == "segment" and len(segments) > 2:
        at = rng.randrange(1, len(segments) - 1)
        segments[at].payload, change = _mutate_bytes(rng, segments[at].payload)
        return f"mutate {segments[at].marker:#x} {change}"
    if how == "length" and len(segments) > 2:
        at = rng.randrange(1, len(segments) - 1)
        segments[at].length = max(0, len(segments[at].payload) + 2 + rng.choice((-3, -2, -1, 1, 2, 7, 1000)))
        return f"length of {segments[at].marker:#x} = {segments[at].length}"
    if how == "scan" and (at := _find(segments, (0xDA,))) is not None and segments[at].scan:
        scan = bytearray(segments[at].scan)
        what = rng.choice(["bytes", "marker", "zero-run"])
        where = rng.randrange(len(scan))
        if what == "bytes":
            for _ in range(rng.choice((1, 4, 32))):  # never a new 0xFF: that would be a marker, not data
                scan[rng.randrange(len(scan))] = rng.randrange(255)
        elif what == "marker":
            scan[where:where] = bytes((0xFF, rng.choice((0xD0, 0xD3, 0xD9, 0xD8, 0xC4, 0xDA, 0x01, 0xFF))))
        else:
            scan[where:where + 64] = b"\x00" * 64
        segments[at].scan = bytes(scan)
        return f"scan {what}@{where}"
    if how == "drop" and len(segments) > 2:
        at = rng.randrange(1, len(segments))
        return f"drop {segments.pop(at).marker:#x}"
    if how == "duplicate" and len(segments) > 2:
        at = rng.randrange(1, len(segments) - 1)
        copy = Segment(segments[at].marker, segments[at].payload, segments[at].scan)
        segments.insert(rng.randrange(1, len(segments)), copy)
        return f"duplicate {copy.marker:#x}"
    if how == "dri":
        segments.insert(rng.randrange(1, len(segments)), Segment(0xDD, struct.pack(">H", rng.choice((0, 1, 7, 65535)))))
        return "insert DRI"
    at = rng.randrange(1, len(segments))
    cut = rng.randrange(len(segments[at].payload) + 1)
    segments[at].payload, segments[at].scan = segments[at].payload[:cut], b""
    segments[at + 1:] = segments[at + 1:] if rng.random() < 0.5 else []
    return f"truncate {segments[at].marker:#x} at {cut}"


@dataclass(frozen=True)
class Mutant:
    seed: int
    index: int
    base: str
    image_format: str
    mutations: tuple[str, ...]
    data: bytes

    @property
    def reproducer(self) -> str:
        mutations = "; ".join(self.mutations)
        return f"scripts/fuzz_images.py --seed {self.seed} --case {self.index}  # {self.base}: {mutations}"


def mutant(seed: int, index: int) -> Mutant:
    """The ``index``-th mutant of run ``seed``: one to three mutations of one base image, then sometimes cut short."""
    rng = random.Random(f"{seed}:{index}")
    base = rng.choice(sorted(bases()))
    image_format, data = bases()[base]
    mutations = []
    if image_format == "PNG":
        chunks = png_chunks(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            mutations.append(mutate_png(rng, chunks))
        data = png_file(chunks)
    else:
        segments = jpeg_segments(data)
        for _ in range(rng.choice((1, 1, 2, 3))):
            mutations.append(mutate_jpeg(rng, segments))
        data = jpeg_file(segments)
    if rng.random() < 0.05:
        cut = rng.randrange(len(data))
        data = data[:cut]
        mutations.append(f"file cut at {cut}")
    return Mutant(seed, index, base, image_format, tuple(mutations), data)


# ------------------------------------------------------------------------------------------- running the steps
@dataclass
class Outcome:
    """What became of one upload: classified (a model input for every contract), rejected by a step (with its
    class), or a crash (any other exception, or metadata left in a model input)."""

    kind: str  # "classified", "rejected", "crash"
    detail: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        return self.kind if self.kind == "classified" else f"{self.kind}: {self.detail}"


LIMITS = ImageLimits()  # the defaults, as deployed: they keep a mutant's declared size from costing gigabytes


def run_steps(data: bytes, contracts: list[ModelContract] | None = None) -> Outcome:
    """Validate (``inspect``), then Preprocess (``model_input``) for every contract, as the pipeline would."""
    try:
        facts = inspect(data, LIMITS, sha256(data).hexdigest())
    except ImageRejected as rejection:
        return _quoting(rejection) or Outcome("rejected", f"Validate {rejection.rejection_class}")
    except Exception as error:  # noqa: BLE001 - any other exception is the crash being looked for
        return Outcome("crash", f"Validate {type(error).__name__}", traceback.format_exc())
    rejected, classified = set(), 0
    for contract in contracts or every_contract():
        try:
            body = model_input(data, facts.format, contract)
        except ImageRejected as rejection:
            if quoted := _quoting(rejection):
                return quoted
            rejected.add(f"Preprocess {rejection.rejection_class}")
            continue
        except Exception as error:  # noqa: BLE001 - any other exception is the crash being looked for
            return Outcome("crash", f"Preprocess {contract.name} {type(error).__name__}", traceback.format_exc())
        if left := metadata_left_in(body, contract.input.encoding):
            return Outcome("crash", f"Preprocess {contract.name} left metadata", ", ".join(left))
        classified += 1
    if len(rejected) > 1:  # the same file, two reasons: the rejection classes would mislead
        return Outcome("crash", "Preprocess rejects for different reasons", ", ".join(sorted(rejected)))
    if rejected:  # a JPEG decoded at another DCT scale (another contract's size) may get further, or not as far
        return Outcome("rejected", rejected.pop() + (" for some contracts" if classified else ""))
    return Outcome("classified")


def _quoting(rejection: ImageRejected) -> Outcome | None:
    """A crash if the rejection's reason (which becomes the record's) quotes the upload's metadata."""
    if MARKER in str(rejection) or MARKER.encode().hex() in str(rejection):
        return Outcome("crash", "a rejection quotes the upload", str(rejection))
    return None


@dataclass
class Campaign:
    seed: int
    ran: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    crashes: list[tuple[Mutant, Outcome]] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.ran / self.seconds * 60 if self.seconds else 0.0
        lines = [f"seed {self.seed}: {self.ran} mutants in {self.seconds:.1f} s ({rate:.0f} a minute)"]
        lines += [f"  {count:6d}  {label}" for label, count in sorted(self.outcomes.items())]
        for case, outcome in self.crashes[:20]:
            lines += [f"CRASH {outcome.detail}: {case.reproducer}", outcome.error.rstrip()]
        return "\n".join(lines)


def campaign(seed: int, seconds: float | None = None, count: int | None = None, start: int = 0) -> Campaign:
    """Mutants ``start``, ``start + 1``, ... of run ``seed`` through both steps, until ``count`` have run or
    ``seconds`` have passed (whichever is given first)."""
    result, started, index, contracts = Campaign(seed), monotonic(), start, every_contract()
    while (count is None or result.ran < count) and (seconds is None or monotonic() - started < seconds):
        case = mutant(seed, index)
        outcome = run_steps(case.data, contracts)
        result.ran += 1
        result.outcomes[outcome.label] += 1
        if outcome.kind == "crash":
            result.crashes.append((case, outcome))
        index += 1
    result.seconds = monotonic() - started
    return result
