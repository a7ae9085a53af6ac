"""What each model contract costs on the wire and at both ends: payload bytes, the pipeline's time to prepare it
(decode, resize, encode) and the container's time to decode it, on a HAM-size (600x450) JPEG. Median of repeated
rounds, all contracts measured side by side in one run; ratios are against tensor-json, the form system A used.
"""

import platform
import statistics
import time
from importlib import metadata
from io import BytesIO

from PIL import Image

from lesionflow.arrays import decode_array
from lesionflow.contracts import IMAGE_ENCODINGS, contract_names, load_contract
from lesionflow.preprocessing import model_input

ROUNDS = 15


def ham_size_jpeg() -> bytes:
    image = Image.new("RGB", (600, 450), (226, 178, 160))
    image.paste((120, 60, 40), (200, 150, 400, 300))
    out = BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def median_ms(action) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    upload = ham_size_jpeg()
    rows = {}
    for name in contract_names():
        contract = load_contract(name)
        body = model_input(upload, "JPEG", contract)
        decode = ((lambda: Image.open(BytesIO(body)).load()) if contract.input.encoding in IMAGE_ENCODINGS
                  else (lambda: decode_array(body, contract.input)))
        rows[name] = (len(body), median_ms(lambda: model_input(upload, "JPEG", contract)), median_ms(decode))
    reference = rows["tensor-json"]
    print(f"model contract payloads, 600x450 JPEG, median of {ROUNDS}; Python {platform.python_version()} on "
          f"{platform.machine()}, Pillow {metadata.version('Pillow')}, numpy {metadata.version('numpy')}")
    print(f"  {'contract':<25} {'bytes':>10} {'prepare':>10} {'decode':>9}   vs tensor-json: bytes, prepare, decode")
    for name, (size, prepare, decode) in rows.items():
        print(f"  {name:<25} {size:>10,} {prepare:>8.1f}ms {decode:>7.1f}ms   "
              f"{reference[0] / size:6.1f}x smaller, {reference[1] / prepare:5.1f}x, {reference[2] / decode:5.1f}x faster")


if __name__ == "__main__":
    main()
