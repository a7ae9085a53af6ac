"""Synthetic, deterministic test images: dermoscopy-like pictures with sensor noise.

Flat synthetic pictures compress to almost nothing and decode faster than photographs, which would flatter every
method measured. Noise plus shapes gives JPEG files of a camera's size per pixel, so decode and transfer times are
realistic. No patient data; the same seed gives the same bytes on every machine with the same Pillow.

Beside them, for memory only, the largest images validation accepts (``largest_accepted``): flat on purpose, since
there the file's size does not matter and the pixel count does.
"""

import struct
import zlib
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lesionflow_local.fault_plan import encode

HAM_SIZE = (600, 450)


def dermoscopy(size: tuple[int, int], seed: int) -> Image.Image:
    """Skin with a dark irregular lesion, a few hairs and the dark corners of a dermatoscope, plus per-pixel noise.

    Shapes are drawn at a small scale and enlarged (cheap at 12 MP); the noise is added at full size, where it decides
    how large the JPEG file is."""
    rng = np.random.default_rng(seed)
    width, height = size
    small = (max(64, width // 8), max(48, height // 8))
    base = Image.new("RGB", small, (226, 178, 160))
    draw = ImageDraw.Draw(base)
    cx, cy, unit = small[0] / 2, small[1] / 2, min(small) / 450
    for _ in range(40):  # overlapping blotches: an irregular border and uneven pigment
        rx, ry = rng.uniform(25, 100, 2) * unit
        dx, dy = rng.uniform(-70, 70, 2) * unit
        shade = tuple(int(c * rng.uniform(0.6, 1.2)) for c in (96, 56, 44))
        draw.ellipse((cx + dx - rx, cy + dy - ry, cx + dx + rx, cy + dy + ry), fill=shade)
    base = base.filter(ImageFilter.GaussianBlur(3)).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(6):  # hairs, drawn at full size so they stay sharp
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        draw.line([(x, y), (x + rng.uniform(-0.5, 0.5) * width, y + rng.uniform(-0.5, 0.5) * height)],
                  fill=(40, 30, 25), width=max(1, width // 300))
    pixels = np.asarray(base, dtype=np.int16)
    yy, xx = np.ogrid[:height, :width]
    corner = ((xx - width / 2) / (0.6 * width)) ** 2 + ((yy - height / 2) / (0.6 * height)) ** 2
    pixels = pixels * np.clip(1.6 - corner, 0.1, 1.0)[..., np.newaxis]  # the dermatoscope's vignette
    pixels += rng.normal(0, 10, pixels.shape)  # sensor noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


IMAGES = {  # name -> (size, seed, format, encoder options)
    "HAM 600x450 JPEG": (HAM_SIZE, 1, "JPEG", {"quality": 90}),
    "1024x768 JPEG": ((1024, 768), 2, "JPEG", {"quality": 90}),
    "phone 4000x3000 JPEG": ((4000, 3000), 3, "JPEG", {"quality": 85}),
    "1024x768 PNG": ((1024, 768), 4, "PNG", {}),
}


@cache
def test_image(name: str) -> tuple[bytes, str]:
    """One of the images every preprocessing case runs on, as (bytes, format): HAM10000's size, a small camera's, a
    phone's, and a PNG (lossless: no DCT shortcut when decoding). Built on first use (the phone's takes a second)."""
    size, seed, image_format, options = IMAGES[name]
    return encode(dermoscopy(size, seed), image_format, **options), image_format


def upload_bodies(count: int = 8) -> list[bytes]:
    """Distinct HAM-size JPEGs for the end-to-end runs (the workload is dermoscopy images, not phone photos)."""
    return [encode(dermoscopy(HAM_SIZE, 100 + index), "JPEG", quality=90) for index in range(count)]


# The largest images validation accepts, for Preprocess's memory: with the default limits (ImageLimits, the template's
# MaxImagePixels 40,000,000, MaxImageBytes 20 MiB, MinImageSide 32). Flat colour, so each file is small and decodes
# to the most pixels the limits allow; what the pixels are does not change what decoding them holds in memory.
SQUARE = 6324  # 6324 x 6324 = 39,992,976 pixels
STRIP = (32, 1_250_000)  # the narrowest side allowed, as long as the pixel limit lets it be: exactly 40,000,000
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PNG_COLOUR_TYPE = {"L": 0, "RGB": 2, "P": 3, "LA": 4, "RGBA": 6}


def png_file(size: tuple[int, int], colour_type: str, pixel: bytes, bit_depth: int = 8, chunks: tuple = (),
             interlaced: bool = False) -> bytes:
    """A PNG of one flat colour, written chunk by chunk (Pillow cannot write 16-bit colour, tRNS on RGB, 1-bit from
    a bitmap this size in reasonable time, or Adam7 interlacing). ``pixel`` is one pixel's bytes (for 1-bit: a whole
    byte of 8 pixels); ``chunks`` are (type, data) pairs put before the image data (PLTE, tRNS, eXIf)."""
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _PNG_COLOUR_TYPE[colour_type], 0, 0, int(interlaced))
    passes = [(-(-(width - x) // dx), -(-(height - y) // dy)) for x, y, dx, dy in _ADAM7] if interlaced \
        else [(width, height)]
    squeeze = zlib.compressobj(9)
    data = []
    for pass_width, pass_height in passes:
        if pass_width <= 0 or pass_height <= 0:
            continue
        row_bytes = pass_width * len(pixel) if bit_depth >= 8 else -(-pass_width * bit_depth // 8)
        row = b"\0" + (pixel * -(-row_bytes // len(pixel)))[:row_bytes]  # filter type 0, then the pixels
        rows_at_once = max(1, 2**22 // len(row))
        for start in range(0, pass_height, rows_at_once):
            data.append(squeeze.compress(row * min(rows_at_once, pass_height - start)))
    data.append(squeeze.flush())
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _chunk(kind, body) for kind, body in ((b"IHDR", header), *chunks, (b"IDAT", b"".join(data)), (b"IEND", b"")))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def exif_orientation(value: int) -> bytes:
    """A minimal little-endian EXIF block holding only the orientation tag (for a PNG's eXIf chunk)."""
    return b"II*\0" + struct.pack("<IHHHIHH", 8, 1, 0x0112, 3, 1, value, 0) + b"\0\0\0\0"


def largest_accepted() -> dict[str, tuple]:
    """Case name -> (builder, format) of the largest images of every kind validation accepts: each kind of PNG
    Pillow decodes differently (8-bit colour, alpha, palette and single-colour transparency, 16-bit grey and colour,
    1-bit, interlaced, animated), JPEG baseline and progressive in YCbCr and CMYK, and the longest strips the minimum
    side allows, with and without an EXIF rotation that turns one into the other."""
    side = (SQUARE, SQUARE)
    tall, wide = STRIP, STRIP[::-1]
    jpeg_size = (7300, 5479)  # 39,996,700 pixels
    jpeg_strip = (65_500, 610)  # JPEG's sides stop at 65,535: its longest strip has 610 rows
    rgba = (200, 100, 50, 128)
    return {
        "RGB PNG 6324x6324": (lambda: png_file(side, "RGB", bytes((200, 100, 50))), "PNG"),
        "RGBA PNG 6324x6324": (lambda: png_file(side, "RGBA", bytes(rgba)), "PNG"),
        "LA PNG 6324x6324": (lambda: png_file(side, "LA", bytes((120, 128))), "PNG"),
        "P PNG + tRNS 6324x6324": (lambda: png_file(side, "P", b"\1", chunks=(
            (b"PLTE", bytes((0, 0, 0, 200, 100, 50))), (b"tRNS", b"\xff\x80"))), "PNG"),
        "L PNG + tRNS 6324x6324": (lambda: png_file(side, "L", b"\x78", chunks=((b"tRNS", b"\0\0"),)), "PNG"),
        "RGB PNG + tRNS 6324x6324": (lambda: png_file(side, "RGB", bytes((200, 100, 50)),
                                                      chunks=((b"tRNS", bytes(6)),)), "PNG"),
        "16-bit grey PNG 6324x6324": (lambda: png_file(side, "L", b"\x40\x00", bit_depth=16), "PNG"),
        "16-bit RGB PNG 6324x6324": (lambda: png_file(side, "RGB", b"\xc8\0\x64\0\x32\0", bit_depth=16), "PNG"),
        "16-bit RGBA PNG 6324x6324": (lambda: png_file(side, "RGBA", b"\xc8\0\x64\0\x32\0\x80\0", bit_depth=16),
                                      "PNG"),
        "1-bit PNG 6324x6324": (lambda: png_file(side, "L", b"\xaa", bit_depth=1), "PNG"),
        "interlaced RGBA PNG 6324x6324": (lambda: png_file(side, "RGBA", bytes(rgba), interlaced=True), "PNG"),
        "APNG 2 frames RGBA 6324x6324": (lambda: encode(Image.new("RGBA", side, rgba), "PNG", save_all=True,
                                                        append_images=[Image.new("RGBA", side, (9, 9, 9, 9))]), "PNG"),
        "JPEG 7300x5479": (lambda: encode(Image.new("RGB", jpeg_size, (200, 100, 50)), "JPEG"), "JPEG"),
        "progressive JPEG 4:4:4 7300x5479": (lambda: encode(Image.new("RGB", jpeg_size, (200, 100, 50)), "JPEG",
                                                            progressive=True, subsampling=0), "JPEG"),
        "CMYK JPEG 7300x5479": (lambda: encode(Image.new("CMYK", jpeg_size, (20, 90, 120, 10)), "JPEG"), "JPEG"),
        "progressive CMYK JPEG 7300x5479": (lambda: encode(Image.new("CMYK", jpeg_size, (20, 90, 120, 10)), "JPEG",
                                                           progressive=True), "JPEG"),
        "JPEG strip 65500x610": (lambda: encode(Image.new("RGB", jpeg_strip, (200, 100, 50)), "JPEG"), "JPEG"),
        "JPEG strip 610x65500": (lambda: encode(Image.new("RGB", jpeg_strip[::-1], (200, 100, 50)), "JPEG"), "JPEG"),
        "RGB PNG strip 1250000x32": (lambda: png_file(wide, "RGB", bytes((200, 100, 50))), "PNG"),
        "RGB PNG strip 32x1250000": (lambda: png_file(tall, "RGB", bytes((200, 100, 50))), "PNG"),
        "L PNG strip 32x1250000": (lambda: png_file(tall, "L", b"\x78"), "PNG"),
        "RGBA PNG strip 32x1250000": (lambda: png_file(tall, "RGBA", bytes(rgba)), "PNG"),
        "RGB PNG + tRNS strip 32x1250000": (lambda: png_file(tall, "RGB", bytes((200, 100, 50)),
                                                             chunks=((b"tRNS", bytes(6)),)), "PNG"),
        "P PNG + tRNS strip 32x1250000": (lambda: png_file(tall, "P", b"\1", chunks=(
            (b"PLTE", bytes((0, 0, 0, 200, 100, 50))), (b"tRNS", b"\xff\x80"))), "PNG"),
        "16-bit grey PNG strip 32x1250000": (lambda: png_file(tall, "L", b"\x40\x00", bit_depth=16), "PNG"),
        "RGBA PNG strip 447x89485": (lambda: png_file((447, 89_485), "RGBA", bytes(rgba)), "PNG"),
        "RGB PNG strip 1250000x32, EXIF rotated": (lambda: png_file(wide, "RGB", bytes((200, 100, 50)), chunks=(
            (b"eXIf", exif_orientation(6)),)), "PNG"),
        "RGBA PNG strip 1250000x32, EXIF rotated": (lambda: png_file(wide, "RGBA", bytes(rgba), chunks=(
            (b"eXIf", exif_orientation(6)),)), "PNG"),
        "RGBA PNG strip 32x1250000, EXIF rotated": (lambda: png_file(tall, "RGBA", bytes(rgba), chunks=(
            (b"eXIf", exif_orientation(6)),)), "PNG"),
        "RGB PNG + tRNS strip 1250000x32, EXIF rotated": (lambda: png_file(wide, "RGB", bytes((200, 100, 50)), chunks=(
            (b"tRNS", bytes(6)), (b"eXIf", exif_orientation(6)))), "PNG"),
        "RGBA PNG 6324x6324, EXIF rotated": (lambda: png_file(side, "RGBA", bytes(rgba), chunks=(
            (b"eXIf", exif_orientation(6)),)), "PNG"),
    }
