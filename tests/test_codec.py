"""The tensor codec round-trips every dtype and shape, and rejects malformed tensors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flare.bridge.codec import TensorError, decode, encode
from flare.simulator.v1 import simulator_pb2 as pb

NUMERIC = [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NUMERIC).flatmap(lambda t: hnp.arrays(t, shapes)))
def test_numeric_round_trip(array):
    decoded = decode(pb.Tensor.FromString(encode(array).SerializeToString()))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)  # NaNs compare equal here


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(object, shapes, elements=st.text(max_size=8)))
def test_string_round_trip(array):
    decoded = decode(pb.Tensor.FromString(encode(array).SerializeToString()))
    assert decoded.shape == array.shape
    assert decoded.tolist() == array.tolist()


def test_payload_is_raw_little_endian_c_order():
    array = np.arange(6, dtype=">i4").reshape(2, 3)[:, ::-1]  # big-endian, not contiguous
    tensor = encode(array)
    assert tensor.dtype == pb.DTYPE_INT32 and list(tensor.shape) == [2, 3]
    assert tensor.data == np.ascontiguousarray(array, dtype="<i4").tobytes()


def test_frame_decodes_without_copy():
    frame = np.random.default_rng(0).integers(0, 255, (84, 84, 4), dtype=np.uint8)
    tensor = encode(frame)
    decoded = decode(tensor)
    assert not decoded.flags.owndata  # a view on the message's bytes
    np.testing.assert_array_equal(decoded, frame)


@pytest.mark.parametrize(
    "tensor, message",
    [
        (pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[3], data=b"\0" * 11), "needs 12 bytes, got 11"),
        (pb.Tensor(dtype=pb.DTYPE_INT64, shape=[-1], data=b""), "negative dimension"),
        (pb.Tensor(dtype=99, shape=[1], data=b"\0"), "unknown dtype 99"),
        (pb.Tensor(dtype=pb.DTYPE_BOOL, shape=[1], data=b"\x02"), "0 or 1"),
        (pb.Tensor(dtype=pb.DTYPE_STRING, shape=[2], strings=["a"]), "needs 2 strings"),
    ],
)
def test_malformed_tensors_name_the_field(tensor, message):
    with pytest.raises(TensorError, match=f"actions\\['move'\\]: .*{message}"):
        decode(tensor, "actions['move']")


def test_unsupported_dtype():
    with pytest.raises(TensorError, match=r"observations\['z'\]: dtype complex64 has no wire type"):
        encode(np.zeros(2, np.complex64), "observations['z']")
