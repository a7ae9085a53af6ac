"""Array encodings of model inputs: the table-driven JSON and CSV writer against formatting every value, each case
built in code."""

import json
from io import BytesIO

import numpy as np
import pytest

from lesionflow.arrays import decode_array, encode_array
from lesionflow.contracts import InputSpec, contract_names, load_contract

IMAGENET = {"scale": 1 / 255, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
BUILT_IN = {name: load_contract(name).input for name in contract_names()
            if load_contract(name).input.encoding in ("json", "csv", "npy")}
SYNTHETIC = {
    "imagenet-json-hwc-batch": InputSpec(width=40, height=30, encoding="json", layout="HWC", batch=True, **IMAGENET),
    "imagenet-json-chw-float16": InputSpec(width=40, height=30, encoding="json", dtype="float16", **IMAGENET),
    "imagenet-csv-hwc": InputSpec(width=40, height=30, encoding="csv", layout="HWC", batch=False, **IMAGENET),
    "imagenet-npy-hwc": InputSpec(width=40, height=30, encoding="npy", layout="HWC", **IMAGENET),
    "grey-json-8-decimals": InputSpec(width=20, height=16, colour="L", encoding="json", scale=1 / 255,
                                      json_decimals=8),
    "uint8-json-hwc-batch": InputSpec(width=20, height=16, encoding="json", layout="HWC", dtype="uint8"),
}
NOT_INVERTIBLE = {  # too few decimals to recover the pixels, or values that overflow: compared, not decoded
    "imagenet-json-1-decimal": InputSpec(width=40, height=30, encoding="json", json_decimals=1, **IMAGENET),
    "float16-overflow-json": InputSpec(width=20, height=16, encoding="json", dtype="float16", scale=1000.0),
}


def every_level_image(spec: InputSpec) -> np.ndarray:
    """Random uint8 pixels of the contract's size (seeded) in which every channel holds every level 0-255."""
    pixels = np.random.default_rng(7).integers(0, 256, (spec.height, spec.width, spec.channels), dtype=np.uint8)
    pixels.reshape(-1, spec.channels)[:256] = np.arange(256, dtype=np.uint8)[:, np.newaxis]
    return pixels


def formatted_value_by_value(pixels: np.ndarray, spec: InputSpec) -> bytes:
    """The encoding as it was first written: the whole array computed, then every value formatted."""
    array = pixels.astype(np.float32) * spec.scale if spec.dtype != "uint8" else pixels
    if spec.mean is not None:
        array = array - np.asarray(spec.mean, np.float32)
    if spec.std is not None:
        array = array / np.asarray(spec.std, np.float32)
    if spec.layout == "CHW":
        array = array.transpose(2, 0, 1)
    if spec.batch:
        array = array[np.newaxis]
    array = np.ascontiguousarray(array.astype(spec.dtype))
    if spec.encoding == "npy":
        out = BytesIO()
        np.save(out, array, allow_pickle=False)
        return out.getvalue()
    values = array if spec.dtype == "uint8" else np.round(array.astype(np.float64), spec.json_decimals)
    if spec.encoding == "csv":
        return ",".join(map(str, values.ravel().tolist())).encode()
    return json.dumps(values.tolist(), separators=(",", ":")).encode()


def test_the_built_in_array_contracts_are_all_covered():
    assert set(BUILT_IN) == {"csv-pixels", "tensor-json", "tensor-npy"}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("spec", [*BUILT_IN.values(), *SYNTHETIC.values(), *NOT_INVERTIBLE.values()],
                         ids=[*BUILT_IN, *SYNTHETIC, *NOT_INVERTIBLE])
def test_the_encoding_is_byte_for_byte_the_value_by_value_one(spec):
    # Given random pixels holding every level in every channel
    pixels = every_level_image(spec)

    # When they are encoded for the contract
    body = encode_array(pixels, spec)

    # Then the bytes are those of computing and formatting every value one by one
    assert body == formatted_value_by_value(pixels, spec)


@pytest.mark.parametrize("spec", [*BUILT_IN.values(), *SYNTHETIC.values()], ids=[*BUILT_IN, *SYNTHETIC])
def test_the_encoding_decodes_back_to_the_pixels(spec):
    # Given random pixels holding every level in every channel
    pixels = every_level_image(spec)

    # When they are encoded for the contract and decoded as a model container reads them
    decoded = decode_array(encode_array(pixels, spec), spec)

    # Then the pixels come back unchanged
    np.testing.assert_array_equal(decoded, pixels)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_values_that_round_to_negative_zero_or_overflow_are_written_as_json_writes_them():
    # Given a one-decimal normalised contract and an overflowing float16 one
    rounded, overflowing = NOT_INVERTIBLE.values()

    # When every level is encoded
    texts = [encode_array(every_level_image(spec), spec).decode() for spec in (rounded, overflowing)]

    # Then the cells include -0.0 and Infinity, as json.dumps writes them
    assert "-0.0," in texts[0] and "Infinity" in texts[1]
