"""Typed batches that travel between agents, the CDP and the ComputationTask (all numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

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
    bounds = np.cumsum(sizes)[:-1]
    pieces: list[ArrayDict] = [{} for _ in sizes]
    for key, array in batch.items():
        if len(array) != sum(sizes):
            raise ValueError(f"result {key!r} has {len(array)} rows, expected {sum(sizes)}")
        for piece, chunk in zip(pieces, np.split(array, bounds), strict=True):
            piece[key] = chunk
    return pieces


@dataclass
class LearnBatch:
    """Transitions for ``Algorithm.learn``: each field maps data names to ``[n, ...]`` arrays."""

    inputs: ArrayDict
    next_inputs: ArrayDict
    states: ArrayDict
    next_states: ArrayDict
    next_alive: ArrayDict
    actions: ArrayDict
    next_actions: ArrayDict
    rewards: ArrayDict

    @property
    def size(self) -> int:
        return len(self.next_alive["alive"])

    def as_dict(self) -> dict[str, ArrayDict]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def concat(cls, batches: Sequence[LearnBatch]) -> LearnBatch:
        return cls(
            **{f.name: concat_arrays([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )


@dataclass
class PredictRequest:
    """One agent asking its CDP for actions: ``[1, ...]`` arrays by name."""

    inputs: ArrayDict
    states: ArrayDict


@dataclass
class PredictReply:
    actions: ArrayDict
    states: ArrayDict


@dataclass
class LearnRequest:
    batch: LearnBatch


@dataclass
class LearnReply:
    costs: ArrayDict


@dataclass
class AgentDone:
    """Sent by an agent to each of its CDPs when it stops, so batches stop waiting for it."""
