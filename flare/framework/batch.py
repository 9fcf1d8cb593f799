"""Typed batches that travel between agents, the CDP and the ComputationTask (all numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
    """The given rows of every array (a plain slice when they are consecutive)."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
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

    @classmethod
    def concat(cls, batches: Sequence[LearnBatch]) -> LearnBatch:
        return cls(
            **{name: concat_arrays([getattr(b, name) for b in batches]) for name in DATA_FIELDS},
            sample_weights=np.concatenate([b.sample_weights for b in batches]),
            sequence_lengths=np.concatenate([b.sequence_lengths for b in batches]),
        )


@dataclass
class PredictRequest:
    """One agent asking its CDP for actions: ``[1, ...]`` arrays by name."""

    inputs: ArrayDict
    states: ArrayDict


@dataclass
class PredictReply:
    """Actions go to the env; ``behavior`` (e.g. the behavior policy's log-probability) is
    stored with the step for learning and never sent to the env."""

    actions: ArrayDict
    states: ArrayDict
    behavior: ArrayDict = field(default_factory=dict)


@dataclass
class LearnRequest:
    batch: LearnBatch


@dataclass
class LearnReply:
    costs: ArrayDict


@dataclass
class AgentDone:
    """Sent for an agent to each of its CDPs when it stops, so batches stop waiting for it."""

    agent_id: int


Request = PredictRequest | LearnRequest
Reply = PredictReply | LearnReply


@dataclass
class PredictBatch:
    """The prediction requests of several agents of one process, stacked: one array per
    name (rows in ``agent_ids`` order, ``sizes`` rows each), so a pipe message costs the
    same for one agent or eight."""

    agent_ids: list[int]
    sizes: list[int]
    inputs: ArrayDict
    states: ArrayDict

    @classmethod
    def pack(cls, requests: dict[int, PredictRequest]) -> PredictBatch:
        ids = sorted(requests)
        ordered = [requests[a] for a in ids]
        return cls(
            agent_ids=ids,
            sizes=[len(next(iter(r.inputs.values()))) for r in ordered],
            inputs=concat_arrays([r.inputs for r in ordered]),
            states=concat_arrays([r.states for r in ordered]),
        )

    def unpack(self) -> dict[int, PredictRequest]:
        parts = zip(
            split_arrays(self.inputs, self.sizes),
            split_arrays(self.states, self.sizes),
            strict=True,
        )
        return {
            agent_id: PredictRequest(inputs, states)
            for agent_id, (inputs, states) in zip(self.agent_ids, parts, strict=True)
        }


@dataclass
class PredictReplyBatch:
    """The CDP's predictions for several agents of one process, stacked like
    ``PredictBatch``."""

    agent_ids: list[int]
    sizes: list[int]
    actions: ArrayDict
    states: ArrayDict
    behavior: ArrayDict

    def unpack(self) -> dict[int, PredictReply]:
        """Each agent's rows, copied: what an agent stores (its actions, states, behaviour
        data) must not keep the whole process's batch alive in a replay buffer."""

        def own(arrays: ArrayDict) -> list[ArrayDict]:
            return [
                {k: v.copy() for k, v in part.items()} for part in split_arrays(arrays, self.sizes)
            ]

        parts = zip(own(self.actions), own(self.states), own(self.behavior), strict=True)
        return {
            agent_id: PredictReply(*part)
            for agent_id, part in zip(self.agent_ids, parts, strict=True)
        }


@dataclass
class RequestBundle:
    """What the agents of one process that wait on one CDP ask it, in one message:
    their predictions stacked, their (rare, large) learn batches by agent id."""

    predict: PredictBatch | None = None
    learn: dict[int, LearnRequest] = field(default_factory=dict)

    @classmethod
    def of(cls, requests: dict[int, Request]) -> RequestBundle:
        predict = {a: r for a, r in requests.items() if isinstance(r, PredictRequest)}
        learn = {a: r for a, r in requests.items() if isinstance(r, LearnRequest)}
        unknown = set(requests) - set(predict) - set(learn)
        if unknown:
            raise TypeError(f"not a request: {[requests[a] for a in sorted(unknown)]}")
        return cls(PredictBatch.pack(predict) if predict else None, learn)

    def requests(self) -> dict[int, Request]:
        unpacked: dict[int, Request] = dict(self.predict.unpack()) if self.predict else {}
        unpacked.update(self.learn)
        return unpacked


@dataclass
class ReplyBundle:
    """The CDP's replies to the agents of one process, shaped like ``RequestBundle``."""

    predict: PredictReplyBatch | None = None
    learn: dict[int, LearnReply] = field(default_factory=dict)

    def replies(self) -> dict[int, Reply]:
        unpacked: dict[int, Reply] = dict(self.predict.unpack()) if self.predict else {}
        unpacked.update(self.learn)
        return unpacked
