"""A spec's precomputed action checks decode every numeric dtype and shape exactly (one
step's action and a batch of rows), and refuse a payload of the wrong length."""

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from flare.bridge.checks import SpecChecks
from flare.bridge.codec import encode
from flare.bridge.errors import SimulatorError
from flare.framework.env_spec import ArraySpec, EnvSpec

NUMERIC = [np.float32, np.float64, np.int32, np.int64, np.uint8]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def checks_for(dtype, shape) -> SpecChecks:
    spec = EnvSpec(
        observations=(ArraySpec("sensor", np.dtype(np.float32), (1,)),),
        actions=(ArraySpec("move", np.dtype(dtype), tuple(shape)),),
    )
    return SpecChecks.of(spec)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NUMERIC).flatmap(lambda t: hnp.arrays(t, shapes)))
def test_one_action_decodes_to_its_dtype_shape_and_values(array):
    decoded = checks_for(array.dtype, array.shape).decode_actions({"move": encode(array)})
    assert decoded["move"].dtype == array.dtype and decoded["move"].shape == array.shape
    np.testing.assert_array_equal(decoded["move"], array)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(NUMERIC).flatmap(
        lambda t: hnp.arrays(t, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    )
)
def test_batched_actions_decode_row_by_row(batch):
    checks = checks_for(batch.dtype, batch.shape[1:])
    decoded = checks.decode_actions({"move": encode(batch)}, batch=batch.shape[0])
    assert decoded["move"].shape == batch.shape
    np.testing.assert_array_equal(decoded["move"], batch)


@pytest.mark.parametrize("shape", [(), (1,), (2, 3)])
def test_a_payload_of_the_wrong_length_is_invalid_argument(shape):
    checks = checks_for(np.float32, shape)
    tensor = encode(np.zeros(shape, np.float32))
    tensor.data = tensor.data + b"\0"
    with pytest.raises(SimulatorError) as raised:
        checks.decode_actions({"move": tensor})
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "actions['move']" in raised.value.message and "bytes, got" in raised.value.message
