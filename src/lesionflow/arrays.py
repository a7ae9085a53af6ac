"""Model inputs as arrays: pixels encoded the way a contract says (JSON, npy or CSV), and decoded as a model
container reads them. The pipeline encodes; the local endpoint and the conformance tests decode.

JSON and CSV are written from a table rather than number by number: the pixels are uint8 and scale, mean and std
are per channel, so a value's text depends only on its channel and pixel level. The 256 levels of each channel go
through the same arithmetic and formatting as a whole image would, once, and the image's cells are looked up; the
bytes are those of formatting every value (``json.dumps`` of the rounded array), about ten times faster."""

import json
from io import BytesIO

import numpy as np

from lesionflow.contracts import InputSpec


def encode_array(pixels: np.ndarray, spec: InputSpec) -> bytes:
    """Encode ``pixels`` (uint8, height x width x channels) as the contract's array: scaled, normalised, laid out."""
    if spec.encoding == "npy":
        out = BytesIO()
        np.save(out, np.ascontiguousarray(_laid_out(_values(pixels, spec), spec)), allow_pickle=False)
        return out.getvalue()
    channels = pixels.shape[2]
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, np.newaxis], channels, axis=1)
    values = _values(levels, spec)
    values = values if spec.dtype == "uint8" else np.round(values.astype(np.float64), spec.json_decimals)
    table = np.array([_texts(level_values, spec) for level_values in values.T.tolist()], dtype=object)
    cells = _laid_out(table[np.arange(channels), pixels], spec)
    if spec.encoding == "csv":
        return ",".join(cells.ravel().tolist()).encode()
    return _json_list(cells).encode()


def _values(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Pixels (uint8, ... x channels) scaled and normalised, in the contract's dtype."""
    array = pixels.astype(np.float32) * spec.scale if spec.dtype != "uint8" else pixels
    if spec.mean is not None:
        array = array - np.asarray(spec.mean, np.float32)
    if spec.std is not None:
        array = array / np.asarray(spec.std, np.float32)
    return array.astype(spec.dtype)


def _texts(numbers: list, spec: InputSpec) -> list[str]:
    """Each number as the contract's encoding writes it (JSON: ``NaN`` and ``Infinity`` too)."""
    if spec.encoding == "csv":
        return list(map(str, numbers))
    return json.dumps(numbers, separators=(",", ":"))[1:-1].split(",")


def _laid_out(array: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A height x width x channels array in the contract's layout, with its batch dimension if it has one."""
    array = array.transpose(2, 0, 1) if spec.layout == "CHW" else array
    return array[np.newaxis] if spec.batch else array


def _json_list(cells: np.ndarray) -> str:
    """The nested JSON list of an array of value texts, as ``json.dumps`` writes it with compact separators."""
    return "[" + ",".join(cells.tolist() if cells.ndim == 1 else map(_json_list, cells)) + "]"


def decode_array(body: bytes, spec: InputSpec) -> np.ndarray:
    """The inverse of ``encode_array``, as a model container reads the request: pixels as uint8 height x width x
    channels. Raises ValueError if the body is not the array the contract describes."""
    if spec.encoding == "npy":
        array = np.load(BytesIO(body), allow_pickle=False)
    elif spec.encoding == "csv":
        array = np.asarray([float(cell) for cell in body.decode().strip().split(",")], np.float64)
    else:
        array = np.asarray(json.loads(body), np.float64)
    shape = (spec.channels, spec.height, spec.width) if spec.layout == "CHW" else (spec.height, spec.width,
                                                                                   spec.channels)
    array = array.reshape(((1,) if spec.batch else ()) + shape).astype(np.float64)
    array = array[0] if spec.batch else array
    if spec.layout == "CHW":
        array = array.transpose(1, 2, 0)
    if spec.std is not None:
        array = array * np.asarray(spec.std)
    if spec.mean is not None:
        array = array + np.asarray(spec.mean)
    return np.clip(np.rint(array / (spec.scale if spec.dtype != "uint8" else 1.0)), 0, 255).astype(np.uint8)
