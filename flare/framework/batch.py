"""Learning batches and the array utilities that build them (all numpy).

The messages that cross the pipes between agents and CDPs live in
``flare.framework.pipe_messages``; their old names here still work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

ArrayDict = dict[str, np.ndarray]


def concat_arrays(dicts: Sequence[ArrayDict]) -> ArrayDict:
    """Concatenate same-keyed dicts of batched arrays along the batch axis."""
    if not dicts:
        return {}
    keys = dicts[0].keys()
    for d in dicts[1:]:
        if d.keys() != keys:
            raise ValueError(
                f"cannot batch data with different names: {sorted(keys)} vs {sorted(d)}"
            )
    return {k: np.concatenate([d[k] for d in dicts], axis=0) for k in keys}


def split_arrays(batch: ArrayDict, sizes: Sequence[int]) -> list[ArrayDict]:
    """Inverse of ``concat_arrays``: cut every array into consecutive chunks of ``sizes``."""
    ends = np.cumsum(sizes).tolist()
    bounds = list(zip([0, *ends[:-1]], ends, strict=True))
    total = ends[-1] if ends else 0
    pieces: list[ArrayDict] = [{} for _ in sizes]
    for key, array in batch.items():
        if len(array) != total:
            raise ValueError(f"result {key!r} has {len(array)} rows, expected {total}")
        for piece, (start, end) in zip(pieces, bounds, strict=True):
            piece[key] = array[start:end]
    return pieces


def take_rows(batch: ArrayDict, rows: np.ndarray) -> ArrayDict:
    """The given rows of every array (a plain slice when they are consecutive and in
    order: a span of the right length alone could be a permutation, e.g. [0, 2, 1, 3])."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool(np.all(np.diff(rows) == 1)):
        return {k: v[rows[0] : rows[-1] + 1] for k, v in batch.items()}
    return {k: v[rows] for k, v in batch.items()}


DATA_FIELDS = (
    "inputs",
    "next_inputs",
    "states",
    "next_states",
    "next_alive",
    "actions",
    "next_actions",
    "rewards",
)


@dataclass
class LearnBatch:
    """Transitions for ``Algorithm.learn``: each data field maps names to ``[n, ...]`` arrays.

    ``sample_weights`` (``[n, 1]``, ones by default) scale each transition's cost, e.g. the
    importance weights of prioritized replay. ``sequence_lengths`` says how the n
    transitions split into runs of consecutive steps of one episode, in order (one run of
    n by default), so that multi-step targets (GAE, n-step returns) never cross from one
    run into the next.
    """

    inputs: ArrayDict
    next_inputs: ArrayDict
    states: ArrayDict
    next_states: ArrayDict
    next_alive: ArrayDict
    actions: ArrayDict
    next_actions: ArrayDict
    rewards: ArrayDict
    sample_weights: np.ndarray | None = field(default=None)
    sequence_lengths: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        size = self.size
        if self.sample_weights is None:
            self.sample_weights = np.ones((size, 1), dtype=np.float32)
        self.sample_weights = np.asarray(self.sample_weights, dtype=np.float32).reshape(size, 1)
        if self.sequence_lengths is None:
            self.sequence_lengths = np.array([size], dtype=np.int64)
        self.sequence_lengths = np.asarray(self.sequence_lengths, dtype=np.int64).reshape(-1)
        if self.sequence_lengths.sum() != size or (self.sequence_lengths < 1).any():
            raise ValueError(
                f"sequence_lengths {self.sequence_lengths.tolist()} must be positive and sum "
                f"to the batch size {size}"
            )

    @property
    def size(self) -> int:
        return len(self.next_alive["alive"])

    def as_dict(self) -> dict[str, ArrayDict]:
        """The data fields (what ``Algorithm.learn`` takes), by field name."""
        return {name: getattr(self, name) for name in DATA_FIELDS}

    def __getstate__(self) -> dict[str, object]:
        # Between processes a row's next inputs are mostly the next row's inputs (an
        # episode's consecutive steps): they travel once, and arrive whole.
        state = dict(self.__dict__)
        follows = _next_follows(self.inputs, self.next_inputs)
        if follows is not None and follows.any():
            sent = ~np.append(follows, False)
            state["next_inputs"] = {k: v[sent] for k, v in self.next_inputs.items()}
            state[_FOLLOWS] = follows
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state = dict(state)
        follows = state.pop(_FOLLOWS, None)
        if isinstance(follows, np.ndarray):
            inputs = cast(ArrayDict, state["inputs"])
            sent = cast(ArrayDict, state["next_inputs"])
            state["next_inputs"] = {
                k: _with_following_rows(inputs[k], v, follows) for k, v in sent.items()
            }
        self.__dict__.update(state)

    @classmethod
    def concat(cls, batches: Sequence[LearnBatch]) -> LearnBatch:
        return cls(
            **{name: concat_arrays([getattr(b, name) for b in batches]) for name in DATA_FIELDS},
            sample_weights=np.concatenate([b.sample_weights for b in batches]),
            sequence_lengths=np.concatenate([b.sequence_lengths for b in batches]),
        )


_FOLLOWS = "_next_inputs_follow"  # (a pickled batch's: rows whose next inputs are the next row's)


def _next_follows(inputs: ArrayDict, next_inputs: ArrayDict) -> np.ndarray | None:
    """For rows 0..n-2: whether the row's next inputs equal the next row's inputs (None
    when the two fields cannot be compared, e.g. different names or shapes)."""
    if inputs.keys() != next_inputs.keys() or not inputs:
        return None
    follows: np.ndarray | None = None
    for key, array in inputs.items():
        following = next_inputs[key]
        if array.shape != following.shape or array.dtype != following.dtype or len(array) < 2:
            return None
        same = (following[:-1] == array[1:]).reshape(len(array) - 1, -1).all(axis=1)
        follows = same if follows is None else follows & same
    return follows


def _with_following_rows(inputs: np.ndarray, sent: np.ndarray, follows: np.ndarray) -> np.ndarray:
    """The whole next-inputs array from the rows sent and the next rows' inputs."""
    whole = np.empty_like(inputs)
    whole[:-1][follows] = inputs[1:][follows]
    whole[~np.append(follows, False)] = sent
    return whole


_MOVED_TO_PIPE_MESSAGES = frozenset(
    {
        "AgentDone",
        "LearnReply",
        "LearnRequest",
        "PredictBatch",
        "PredictReply",
        "PredictReplyBatch",
        "PredictRequest",
        "Reply",
        "ReplyBundle",
        "Request",
        "RequestBundle",
    }
)


def __getattr__(name: str) -> object:
    # Lazy, since pipe_messages imports LearnBatch from this module.
    if name in _MOVED_TO_PIPE_MESSAGES:
        from flare.framework import pipe_messages

        return getattr(pipe_messages, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
