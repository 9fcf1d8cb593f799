"""Tensors on the wire: numpy arrays <-> ``flare.simulator.v1.Tensor``.

Numeric payloads are raw little-endian C-order bytes, decoded with ``np.frombuffer``
(no copy loop). Strings travel as a repeated string field.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flare.simulator.v1 import simulator_pb2 as pb

_NUMERIC: dict[pb.DType, np.dtype[Any]] = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_INT32: np.dtype("<i4"),
    pb.DTYPE_INT64: np.dtype("<i8"),
    pb.DTYPE_UINT8: np.dtype("u1"),
    pb.DTYPE_BOOL: np.dtype("?"),
}
_BY_CHAR = {v.char: k for k, v in _NUMERIC.items()}  # byte order aside, the char names the type
_EXACT = {v: k for k, v in _NUMERIC.items()}  # little-endian dtypes that go on the wire as they are


class TensorError(ValueError):
    """A tensor that cannot be encoded or decoded; the message names the field."""


def dtype_to_proto(dtype: np.dtype | str | type) -> pb.DType:
    """The wire dtype for a numpy dtype (strings and objects of str map to DTYPE_STRING)."""
    dtype = np.dtype(dtype)
    if dtype.kind in ("U", "S", "O"):
        return pb.DTYPE_STRING
    try:
        return _BY_CHAR[dtype.char]
    except KeyError:
        raise TensorError(f"dtype {dtype} has no wire type (supported: {supported()})") from None


def dtype_from_proto(dtype: pb.DType, field: str = "tensor") -> np.dtype:
    if dtype == pb.DTYPE_STRING:
        return np.dtype(object)
    try:
        return _NUMERIC[dtype]
    except KeyError:
        raise TensorError(f"{field}: unknown dtype {dtype}") from None


def supported() -> str:
    return "float32, float64, int32, int64, uint8, bool, string"


def encode(array: object, field: str = "tensor") -> pb.Tensor:
    """A numpy array (or anything ``np.asarray`` takes) as a wire tensor."""
    return encode_into(pb.Tensor(), array, field)


def encode_into(tensor: pb.Tensor, array: object, field: str = "tensor") -> pb.Tensor:
    """Fill an (empty) wire tensor in place, e.g. a map entry of a response: no copy."""
    arr = array if type(array) is np.ndarray else np.asarray(array)
    wire = _EXACT.get(arr.dtype)
    if wire is not None:  # the hot path: already the wire's dtype (tobytes is C order)
        tensor.dtype = wire
        tensor.shape.extend(arr.shape)
        tensor.data = arr.tobytes()
        return tensor
    try:
        wire = dtype_to_proto(arr.dtype)
    except TensorError as err:
        raise TensorError(f"{field}: {err}") from None
    tensor.dtype = wire
    tensor.shape.extend(arr.shape)
    if wire == pb.DTYPE_STRING:
        tensor.strings.extend(
            s.decode() if isinstance(s, bytes) else str(s) for s in arr.reshape(-1)
        )
    else:
        tensor.data = arr.astype(_NUMERIC[wire]).tobytes()
    return tensor


def decode(tensor: pb.Tensor, field: str = "tensor") -> np.ndarray:
    """A wire tensor as a numpy array; read-only for numeric data (it shares the bytes)."""
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise TensorError(f"{field}: negative dimension in shape {list(shape)}")
    count = math.prod(shape)
    if tensor.dtype == pb.DTYPE_STRING:
        if len(tensor.strings) != count:
            raise TensorError(
                f"{field}: shape {list(shape)} needs {count} strings, got {len(tensor.strings)}"
            )
        return np.array(list(tensor.strings), dtype=object).reshape(shape)
    dtype = dtype_from_proto(tensor.dtype, field)
    array = decode_numeric(tensor.data, dtype, shape, field)
    if dtype == np.dtype("?") and count and array.view(np.uint8).max() > 1:
        raise TensorError(f"{field}: bool elements must be 0 or 1")
    return array


def decode_numeric(
    data: bytes,
    dtype: np.dtype,
    shape: tuple[int, ...],
    field: str = "tensor",
    nbytes: int | None = None,
) -> np.ndarray:
    """Raw bytes as a (read-only) array of a known wire dtype and shape; ``nbytes``, the
    size that shape takes, when the caller has it precomputed (a spec's action)."""
    expected = math.prod(shape) * dtype.itemsize if nbytes is None else nbytes
    if len(data) != expected:
        raise TensorError(
            f"{field}: shape {list(shape)} of {dtype.name} needs {expected} bytes, got {len(data)}"
        )
    array = np.frombuffer(data, dtype)  # (positional: numpy parses keywords slowly)
    return array if len(shape) == 1 else array.reshape(shape)
