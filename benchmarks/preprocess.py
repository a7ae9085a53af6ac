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

The largest images validation accepts (``largest_images``) are measured the way Preprocess's Lambda would hold them:
the whole process's peak resident set, in a process set up as the function is, against its MemorySize.
"""

import json
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.cold_start import function_environment
from benchmarks.cost import DECODER
from benchmarks.images import IMAGES, largest_accepted, test_image
from benchmarks.measure import ROOT, run_fresh, side_by_side
from lesionflow.contracts import contract_names, load_contract
from lesionflow.images import ImageLimits, inspect
from lesionflow.preprocessing import model_input
from lesionflow_local.fault_plan import encode
from lesionflow_local.stack import resolver
from lesionflow_local.template import function_properties, load

SIZE = (224, 224)
FLOOR, A, B = "floor: draft + load", "A: resize, /255, CHW, JSON", "B: RGB, resize, JPEG"
HAM = "HAM 600x450 JPEG"
PHONE = "phone 4000x3000 JPEG"
# Memory only: the largest image the default MaxImagePixels admits (40 M pixels), as an RGBA PNG, for every method;
# ``largest_images`` searches every kind of accepted image for the worst peak of the pipeline's own code.
LARGE_PNG = "6300x6300 RGBA PNG (memory only)"
# Quick: the one largest accepted image ``make bench`` found worst (2026-12-02), to keep its code from rotting.
QUICK_LARGEST = ["RGB PNG + tRNS strip 1250000x32, EXIF rotated"]


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

    Quick: the HAM-size and phone images, 2 rounds, memory of the phone's cases only and of one largest image."""
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
    largest = None if not memory else largest_images(QUICK_LARGEST, worst=1) if quick else largest_images()
    return {"rounds": rounds, "images": results, "largest": largest}


# The largest accepted images, each in a fresh process set up as Preprocess's Lambda is: its app.py imported with the
# template's environment and the first invocation's setup done (boto3 client, contract, Pillow's plugins), then the
# upload's bytes read, then ``model_input`` as Preprocess calls it. The process's peak resident set (VmHWM) is the
# figure to hold against MemorySize: Lambda's "Max Memory Used" is the whole sandbox's, interpreter and imports
# included (its runtime client adds a few MB that a bare interpreter lacks). The growth over the call is given beside.
WORST = """
import json, os, sys
sys.path.insert(0, {code_dir!r})
import app
from PIL import Image
from lesionflow import clients
from lesionflow.contracts import load_contract
from lesionflow.errors import parse
from lesionflow.preprocessing import model_input
def _status_kb(field):  # not benchmarks.preprocess's: importing it would add numpy and more to the baseline
    return int(next(line for line in open("/proc/self/status") if line.startswith(field + ":")).split()[1])
parse(app.Settings, os.environ, "settings"); clients.s3(); Image.preinit()
contract = load_contract(sys.argv[3])
data = open(sys.argv[1], "rb").read()
open("/proc/self/clear_refs", "w").write("5")
before = _status_kb("VmRSS")
try:
    model_input(data, sys.argv[2], contract)
    outcome = "model input"
except Exception as error:
    outcome = type(error).__name__ + ": " + str(error)
peak = _status_kb("VmHWM")
print(json.dumps({{"before_mb": before / 1024, "peak_mb": peak / 1024, "growth_mb": (peak - before) / 1024,
                  "outcome": outcome}}))
"""


def memory_size_mb() -> int:
    """Preprocess's MemorySize, resolved from template.yaml as the local stack resolves it."""
    template = load()
    return int(resolver(template, {})(function_properties(template, DECODER))["MemorySize"])


def largest_images(cases: list[str] | None = None, env: dict[str, str] | None = None, worst: int = 3) -> dict:
    """Per largest accepted image (``images.largest_accepted``): the fresh process's peak RSS, its RSS before the call
    and the growth over it with the template's default contract, and with every other contract for the ``worst``
    images of those (a contract changes only what the image is reduced to, 28x28 or 224x224, and what the small
    result is encoded as); plus Preprocess's MemorySize to hold them against. Each image is checked to pass
    validation with the default limits first: a case the pipeline would reject would measure nothing."""
    every = largest_accepted()
    env = env if env is not None else function_environment(DECODER)
    default = env["MODEL_CONTRACT"]
    code = WORST.format(code_dir=str(ROOT / "functions" / "preprocess"))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        def measure(name: str, contracts: list[str]) -> None:
            build, image_format = every[name]
            data = build()
            facts = inspect(data, ImageLimits(), "")  # raises ImageRejected if validation would reject it
            path = Path(folder) / "image"
            path.write_bytes(data)
            case = results.setdefault(name, {"file_bytes": len(data), "format": image_format, "mode": facts.mode,
                                             "width": facts.width, "height": facts.height, "frames": facts.frames,
                                             "contracts": {}})
            for contract in contracts:
                case["contracts"][contract] = run_fresh(code, [str(path), image_format, contract], env=env)[0]

        for name in cases or list(every):
            measure(name, [default])
        ranked = sorted(results, key=lambda name: results[name]["contracts"][default]["peak_mb"], reverse=True)
        for name in ranked[:worst]:
            measure(name, [contract for contract in contract_names() if contract != default])
    limits = ImageLimits()
    return {"memory_size_mb": memory_size_mb(), "default_contract": default, "cases": results, "limits": {
        "max_pixels": limits.max_pixels, "max_bytes": limits.max_bytes, "min_side": limits.min_side}}
