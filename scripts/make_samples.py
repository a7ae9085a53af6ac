"""Draw the synthetic sample images shipped in samples/ (no real patient data; not HAM10000 images).

They look vaguely like dermoscopy (a dark irregular blotch on skin tone) so the pipeline has something to run on
offline. Deterministic: running this again rewrites byte-identical files.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def lesion(seed: int, size=(600, 450), skin=(224, 172, 150), spot=(92, 52, 40)) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", size, skin)
    draw = ImageDraw.Draw(image)
    cx, cy = size[0] // 2, size[1] // 2
    for _ in range(40):
        rx, ry = rng.randint(30, 110), rng.randint(30, 90)
        dx, dy = rng.randint(-60, 60), rng.randint(-45, 45)
        shade = tuple(max(0, c + rng.randint(-25, 25)) for c in spot)
        draw.ellipse((cx + dx - rx, cy + dy - ry, cx + dx + rx, cy + dy + ry), fill=shade)
    return image.filter(ImageFilter.GaussianBlur(6))


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    lesion(1).save(SAMPLES / "lesion-dark.jpg", quality=90)
    lesion(2, spot=(150, 70, 80)).save(SAMPLES / "lesion-red.jpg", quality=90)
    lesion(3, size=(450, 450), spot=(120, 90, 70)).save(SAMPLES / "lesion-light.png", optimize=True)
    (SAMPLES / "not-an-image.jpg").write_text("This is a text file with an image's name: LesionFlow rejects it.\n")


if __name__ == "__main__":
    main()
