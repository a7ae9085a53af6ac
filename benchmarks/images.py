"""Synthetic, deterministic test images: dermoscopy-like pictures with sensor noise.

Flat synthetic pictures compress to almost nothing and decode faster than photographs, which would flatter every
method measured. Noise plus shapes gives JPEG files of a camera's size per pixel, so decode and transfer times are
realistic. No patient data; the same seed gives the same bytes on every machine with the same Pillow.
"""

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
