"""Peak memory of preprocessing the images that cost the most to decode: large PNGs (no DCT shortcut) and a
phone-sized JPEG. Each image is encoded here, then preprocessed in a fresh process; the figure is how far that
process's peak RSS grows during the call."""

import platform
import subprocess
import sys
import tempfile
from io import BytesIO
from pathlib import Path

from PIL import Image

MEASURE = """
import resource, sys
from pathlib import Path
from lesionflow.contracts import load_contract
from lesionflow.preprocessing import model_input
data = Path(sys.argv[1]).read_bytes()
contract = load_contract("hf-image-classification")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model_input(data, sys.argv[2], contract)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
CASES = [("RGBA", (6300, 6300), "PNG"), ("RGB", (6300, 6300), "PNG"), ("RGB", (4000, 3000), "JPEG")]


def main() -> None:
    print(f"preprocess peak RSS growth; Python {platform.python_version()} on {platform.machine()}")
    with tempfile.TemporaryDirectory() as folder:
        for mode, size, fmt in CASES:
            path = Path(folder) / f"image.{fmt.lower()}"
            buffer = BytesIO()
            Image.new(mode, size, (200, 100, 50, 128)[: len(mode)]).save(buffer, fmt)
            path.write_bytes(buffer.getvalue())
            grown = subprocess.run([sys.executable, "-c", MEASURE, str(path), fmt], check=True,
                                   capture_output=True, text=True).stdout.strip()
            decoded = size[0] * size[1] * len(mode) // 2**20
            print(f"  {fmt} {mode} {size[0]}x{size[1]} ({path.stat().st_size // 1024} KiB file): +{grown} MB peak"
                  f" (its full-size bitmap is {decoded} MB)")


if __name__ == "__main__":
    main()
