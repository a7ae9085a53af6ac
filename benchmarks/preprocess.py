"""Preprocessing: the code the pipeline runs (``model_input``, per model contract) against the source systems' ways.

- A (system A's Lambda for its DenseNet): PIL open, resize to 224x224, divide by 255, channel-first,
  ``json.dumps(array.tolist())``;
- B (system B's Lambda for its ViT): convert to RGB, resize to 224x224, re-encode as JPEG;
- the floor: what no preprocessing can beat for a 224x224 input, decoding with libjpeg-turbo at the largest DCT
  scale that still gives at least 224 pixels (``Image.draft('RGB', (224, 224))`` + ``load()``); a PNG has no such
  shortcut, so its floor is a full decode.

Time is measured side by side in one process; peak memory in a fresh process per case, as the growth of the resident
set's high-water mark over the call (the kernel's VmHWM, reset just before it), plus tracemalloc's peak, which sees
only Python's allocations (Pillow's and libjpeg's buffers are invisible to it).
"""

import json
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.images import IMAGES, test_image
from benchmarks.measure import run_fresh, side_by_side
from lesionflow.contracts import contract_names, load_contract
from lesionflow.preprocessing import model_input
from lesionflow_local.fault_plan import encode

SIZE = (224, 224)
FLOOR, A, B = "floor: draft + load", "A: resize, /255, CHW, JSON", "B: RGB, resize, JPEG"
HAM = "HAM 600x450 JPEG"
PHONE = "phone 4000x3000 JPEG"
# Memory only: the largest image the default MaxImagePixels admits (40 M pixels), as a PNG: the worst decode.
LARGE_PNG = "6300x6300 RGBA PNG (memory only)"


def floor(data: bytes, image_format: str) -> None:
    with Image.open(BytesIO(data)) as image:
        image.draft("RGB", SIZE)
        image.load()


def baseline_a(data: bytes, image_format: str) -> bytes:
    image = Image.open(BytesIO(data)).resize(SIZE)
    array = (np.asarray(image) / 255.0).transpose(2, 0, 1)
    return json.dumps(array.tolist()).encode()


def baseline_b(data: bytes, image_format: str) -> bytes:
    image = Image.open(BytesIO(data)).convert("RGB").resize(SIZE)
    out = BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def pipeline(contract: str):
    def prepare(data: bytes, image_format: str) -> bytes:
        return model_input(data, image_format, load_contract(contract))
    return prepare


def methods() -> dict[str, object]:
    return {FLOOR: floor, A: baseline_a, B: baseline_b} | {name: pipeline(name) for name in contract_names()}


MEMORY = """
import json, sys, tracemalloc
from pathlib import Path
from benchmarks.preprocess import methods, peak_growth_mb
method = methods()[sys.argv[1]]
data = Path(sys.argv[2]).read_bytes()
rss = peak_growth_mb(lambda: method(data, sys.argv[3]))
tracemalloc.start()
method(data, sys.argv[3])
print(json.dumps({"rss_mb": rss, "traced_mb": tracemalloc.get_traced_memory()[1] / 2**20}))
"""


def peak_growth_mb(action) -> float:
    """How far the resident set's high-water mark rises above the current resident set during ``action``."""
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current VmRSS
    before = _status_kb("VmRSS")
    action()
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(field: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def run(quick: bool = False, images: list[str] | None = None, memory: bool = True) -> dict:
    """Per image: per method, time (side by side), payload bytes, and peak memory (fresh process per case).

    Quick: the HAM-size and phone images, 2 rounds, memory of the phone's cases only."""
    names = images or ([HAM, PHONE] if quick else list(IMAGES))
    rounds = 2 if quick else 15
    every = methods()
    results: dict[str, dict] = {}
    for image_name in names:
        data, image_format = test_image(image_name)
        times = side_by_side({name: (lambda f=f: f(data, image_format)) for name, f in every.items()}, rounds)
        payloads = {name: every[name](data, image_format) for name in every}
        results[image_name] = {"file_bytes": len(data), "format": image_format, "methods": {
            name: {"time": times[name], "bytes": len(payloads[name]) if payloads[name] else None}
            for name in every}}
    memory_cases = {} if not memory else {name: test_image(name) for name in names if not quick or name == PHONE}
    if memory and not quick:
        memory_cases[LARGE_PNG] = (encode(Image.new("RGBA", (6300, 6300), (200, 100, 50, 128)), "PNG"), "PNG")
        results[LARGE_PNG] = {"file_bytes": len(memory_cases[LARGE_PNG][0]), "format": "PNG", "methods": {
            name: {"time": None, "bytes": None} for name in every}}
    with tempfile.TemporaryDirectory() as folder:
        for image_name, (data, image_format) in memory_cases.items():
            path = Path(folder) / "image"
            path.write_bytes(data)
            for name in every:
                measured, _ = run_fresh(MEMORY, [name, str(path), image_format])
                results[image_name]["methods"][name] |= measured
    return {"rounds": rounds, "images": results}
