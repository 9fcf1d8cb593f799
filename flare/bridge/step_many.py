"""Stepping many sessions of one spec at once, with results written straight into batches.

Each session's results go into row ``i`` of preallocated arrays (one per name), so a
StepMany call costs one env step per row plus a few array writes, never a stack of
per-row copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from flare.bridge.codec import encode_into
from flare.bridge.errors import SimulatorError
from flare.bridge.request_validation import broken
from flare.bridge.session import WireCalls, fill_tensors
from flare.simulator.v1 import simulator_pb2 as pb


@dataclass
class BatchResult:
    """The batched results of stepping ``n`` sessions; row ``i`` is the i-th session."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: np.ndarray  # int32 [n]
    time_out: np.ndarray  # bool [n]
    reset_rows: list[int] = field(default_factory=list)
    final_observations: dict[str, np.ndarray] = field(default_factory=dict)

    def fill(self, out: pb.StepManyResponse) -> pb.StepManyResponse:
        """Encode into a StepMany response, in place."""
        fill_tensors(out.observations, self.observations)
        fill_tensors(out.rewards, self.rewards)
        encode_into(out.game_over, self.game_over)
        encode_into(out.time_out, self.time_out)
        out.reset_rows.extend(self.reset_rows)
        fill_tensors(out.final_observations, self.final_observations)
        return out


def step_sessions(
    sessions: Sequence[WireCalls],
    actions: dict[str, np.ndarray],
    actrep: int = 0,
    auto_reset: bool = False,
    rows: Sequence[int] | None = None,
) -> BatchResult:
    """Step each session with its row of ``actions`` (checked, batched by name).

    With ``auto_reset`` an ended episode is reset at once: its row then holds the new
    episode's first observation and ``final_observations`` the ended one's last.
    An error names its row (``session_ids[i]``, ``i`` from ``rows`` when the sessions
    are a subset of a call's). The caller checks every row first (``check_running``), so
    only an environment's own failure (INTERNAL) can come after some rows have stepped.
    """
    n = len(sessions)
    checks = sessions[0].checks
    observations = {c.name: np.empty((n, *c.shape), c.dtype) for c in checks.observations}
    rewards: dict[str, np.ndarray] = {}
    game_over = np.zeros(n, np.int32)
    time_out = np.zeros(n, np.bool_)
    reset_rows: list[int] = []
    finals: list[dict[str, np.ndarray]] = []
    names = list(actions)
    for row, session in enumerate(sessions):
        try:
            result = session.step_arrays({name: actions[name][row] for name in names}, actrep)
            row_observations = result.observations
            if auto_reset and (result.game_over or result.time_out):
                reset_rows.append(row)
                finals.append(row_observations)
                row_observations = session.reset_arrays()
            for name, reward in result.rewards.items():
                batch = rewards.get(name)
                if batch is None:
                    batch = rewards[name] = np.empty((n, reward.size), np.float32)
                elif batch.shape[1] != reward.size:
                    raise broken(
                        f"reward {name!r} has {reward.size} values here and "
                        f"{batch.shape[1]} in row 0; a reward's length must not change"
                    )
                batch[row] = reward
        except SimulatorError as err:
            index = row if rows is None else rows[row]
            raise SimulatorError(err.code, f"session_ids[{index}]: {err.message}") from err
        for name, value in row_observations.items():
            observations[name][row] = value
        game_over[row] = result.game_over
        time_out[row] = result.time_out
    final_observations = (
        {c.name: np.stack([final[c.name] for final in finals]) for c in checks.observations}
        if finals
        else {}
    )
    return BatchResult(observations, rewards, game_over, time_out, reset_rows, final_observations)


def merge_batches(n: int, parts: Sequence[tuple[Sequence[int], BatchResult]]) -> BatchResult:
    """One batch of ``n`` rows from parts that each hold some of the rows (``rows[i]`` is
    where a part's row ``i`` goes); reset rows stay in increasing order."""
    first = parts[0][1]

    def empty(batch: np.ndarray) -> np.ndarray:
        return np.empty((n, *batch.shape[1:]), batch.dtype)

    merged = BatchResult(
        {name: empty(batch) for name, batch in first.observations.items()},
        {name: empty(batch) for name, batch in first.rewards.items()},
        np.empty(n, np.int32),
        np.empty(n, np.bool_),
    )
    finals: list[tuple[int, BatchResult, int]] = []  # (row, part, its final's index)
    for rows, part in parts:
        index = np.asarray(rows)
        for name, batch in part.observations.items():
            merged.observations[name][index] = batch
        for name, batch in part.rewards.items():
            if batch.shape[1:] != merged.rewards[name].shape[1:]:
                raise broken(
                    f"reward {name!r} has {batch.shape[1]} values in some sessions and "
                    f"{merged.rewards[name].shape[1]} in others"
                )
            merged.rewards[name][index] = batch
        merged.game_over[index] = part.game_over
        merged.time_out[index] = part.time_out
        finals.extend((rows[row], part, i) for i, row in enumerate(part.reset_rows))
    finals.sort(key=lambda final: final[0])
    merged.reset_rows = [row for row, _, _ in finals]
    if finals:
        merged.final_observations = {
            name: np.stack([part.final_observations[name][i] for _, part, i in finals])
            for name in first.observations
        }
    return merged
