"""Draw the synthetic sample images in samples/ (no patient data; not HAM10000 images). Deterministic.

Dermoscopy-like pictures at HAM10000's size (600x450 JPEG): a dark irregular lesion on skin, a few hairs, the round
vignette of a dermatoscope. Plus awkward but valid files the pipeline must handle, and invalid ones it must reject.
"""

import random
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
HAM_SIZE = (600, 450)


def dermoscopy(seed: int, size=HAM_SIZE, skin=(226, 178, 160), lesion=(96, 56, 44)) -> Image.Image:
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, skin)
    draw = ImageDraw.Draw(image)
    cx, cy = width // 2 + rng.randint(-40, 40), height // 2 + rng.randint(-30, 30)
    scale = min(width, height) / 450
    for _ in range(45):  # overlapping blotches make an irregular border and uneven pigment
        rx, ry = (int(rng.randint(25, 100) * scale) for _ in range(2))
        dx, dy = (int(rng.randint(-70, 70) * scale) for _ in range(2))
        darkness = rng.uniform(0.65, 1.25)  # one factor for all channels: pigment varies in depth, not in hue
        shade = tuple(min(255, int(channel * darkness)) for channel in lesion)
        draw.ellipse((cx + dx - rx, cy + dy - ry, cx + dx + rx, cy + dy + ry), fill=shade)
    image = image.filter(ImageFilter.GaussianBlur(7 * scale))
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # hairs
        x, y = rng.randrange(width), rng.randrange(height)
        draw.line([(x, y), (x + rng.randint(-300, 300), y + rng.randint(-200, 200))], fill=(40, 30, 25),
                  width=max(1, int(2 * scale)))
    vignette = Image.new("L", size, 0)
    ImageDraw.Draw(vignette).ellipse((-width * 0.1, -height * 0.2, width * 1.1, height * 1.2), fill=255)
    return Image.composite(image, Image.new("RGB", size, (10, 8, 8)), vignette.filter(ImageFilter.GaussianBlur(20)))


def exif_rotated(image: Image.Image) -> bytes:
    """Stored sideways with EXIF orientation 6 (rotate 90° clockwise to view), as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    out = BytesIO()
    image.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse((30, 20, image.width - 30, image.height - 20), fill=255)
    rgba.putalpha(mask)
    return rgba


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    dermoscopy(1).save(SAMPLES / "ham-size-dark.jpg", quality=90)
    dermoscopy(2, lesion=(150, 70, 80)).save(SAMPLES / "ham-size-red.jpg", quality=90)
    dermoscopy(3, lesion=(120, 92, 70)).save(SAMPLES / "ham-size-light.jpg", quality=90, progressive=True)
    with_alpha(dermoscopy(4)).save(SAMPLES / "alpha-edges.png")
    dermoscopy(5).convert("L").save(SAMPLES / "grayscale.jpg", quality=90)
    (SAMPLES / "exif-rotated.jpg").write_bytes(exif_rotated(dermoscopy(6)))
    dermoscopy(7, size=(4000, 3000)).save(SAMPLES / "phone-4000x3000.jpg", quality=85)
    (SAMPLES / "not-an-image.jpg").write_text("Notes about a patient, saved with an image's name.\n")
    whole = (SAMPLES / "ham-size-red.jpg").read_bytes()
    (SAMPLES / "truncated.jpg").write_bytes(whole[: len(whole) // 2])


if __name__ == "__main__":
    main()
