"""Model inputs as arrays: pixels encoded the way a contract says (JSON, npy or CSV), and decoded as a model
container reads them. The pipeline encodes; the local endpoint and the conformance tests decode."""

import json
from io import BytesIO

import numpy as np

from lesionflow.contracts import InputSpec


def encode_array(pixels: np.ndarray, spec: InputSpec) -> bytes:
    """Encode ``pixels`` (uint8, height x width x channels) as the contract's array: scaled, normalised, laid out."""
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
