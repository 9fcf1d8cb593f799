"""A LearnBatch crosses a pipe with each episode's repeated next inputs sent once, and
arrives exactly as it left."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from flare.framework.batch import LearnBatch


def _batch(frames: np.ndarray, next_frames: np.ndarray) -> LearnBatch:
    n = len(frames)
    ones = np.ones((n, 1), np.float32)
    return LearnBatch(
        inputs={"sensor": frames},
        next_inputs={"sensor": next_frames},
        states={},
        next_states={},
        next_alive={"alive": ones},
        actions={"action": np.arange(n).reshape(n, 1)},
        next_actions={"action": np.zeros((n, 1), np.int64)},
        rewards={"reward": ones},
    )


def _episode_rows(rng: np.random.Generator, n: int, restart_after: int | None) -> LearnBatch:
    """n consecutive steps of 4x32x32 uint8 frames; a new episode after ``restart_after``."""
    observations = rng.integers(0, 256, (n + 2, 4, 32, 32), dtype=np.uint8)
    frames = observations[:n].copy()
    next_frames = observations[1 : n + 1].copy()
    if restart_after is not None:  # (the last step of the first episode saw its own end)
        next_frames[restart_after] = observations[n + 1]
    return _batch(frames, next_frames)


def _assert_same(a: LearnBatch, b: LearnBatch) -> None:
    for field_name, arrays in a.as_dict().items():
        other = getattr(b, field_name)
        assert arrays.keys() == other.keys(), field_name
        for key, array in arrays.items():
            assert other[key].dtype == array.dtype and other[key].shape == array.shape
            np.testing.assert_array_equal(other[key], array, err_msg=f"{field_name}.{key}")
    np.testing.assert_array_equal(a.sample_weights, b.sample_weights)
    np.testing.assert_array_equal(a.sequence_lengths, b.sequence_lengths)


@pytest.mark.parametrize("restart_after", [None, 0, 2, 4])
def test_a_pickled_batch_arrives_whole(restart_after: int | None) -> None:
    batch = _episode_rows(np.random.default_rng(3), 5, restart_after)
    _assert_same(batch, pickle.loads(pickle.dumps(batch)))


def test_repeated_next_inputs_travel_once() -> None:
    rng = np.random.default_rng(4)
    batch = _episode_rows(rng, 5, None)
    frame_bytes = batch.inputs["sensor"][0].nbytes
    compact = len(pickle.dumps(batch))
    # 5 frames of inputs and one new next frame, not 10 frames
    assert compact < 6 * frame_bytes + 2_000
    assert compact > 6 * frame_bytes
    # a batch whose next inputs follow nowhere still travels whole, and arrives whole
    unrelated = _batch(batch.inputs["sensor"], rng.integers(0, 256, (5, 4, 32, 32), np.uint8))
    assert len(pickle.dumps(unrelated)) > 10 * frame_bytes
    _assert_same(unrelated, pickle.loads(pickle.dumps(unrelated)))


def test_inputs_that_cannot_be_compared_travel_as_they_are() -> None:
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (3, 2, 2), dtype=np.uint8)
    different_names = LearnBatch(
        **{
            **_batch(frames, frames).__dict__,
            "next_inputs": {"other": frames.astype(np.float32)},
        }
    )
    _assert_same(different_names, pickle.loads(pickle.dumps(different_names)))
    one_row = _batch(frames[:1], frames[:1])
    _assert_same(one_row, pickle.loads(pickle.dumps(one_row)))
