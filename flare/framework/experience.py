"""Per-step experiences and their conversion into learning batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flare.framework.batch import ArrayDict, LearnBatch
from flare.framework.outcomes import NextStep

# Earlier names for ``NextStep``'s values (bound once: an enum lookup costs ~170 ns).
ALIVE = _CONTINUES = NextStep.CONTINUES
GAME_OVER = NextStep.GAME_OVER
TIMED_OUT = NextStep.TIMED_OUT


@dataclass(frozen=True)
class Experience:
    """What an agent saw and did at one step.

    ``alive`` is this step's ``NextStep``: it continues the episode, comes after a game
    over (success or failure), or was cut by a time-out (learning bootstraps through it).
    """

    data: ArrayDict
    alive: NextStep
    # The episode was interrupted after this step (e.g. its simulator went away): no
    # transition leaves it, and it is not a game over either.
    run_ends: bool = False

    @property
    def has_successor(self) -> bool:
        """Whether a transition out of this step can exist."""
        return self.alive == _CONTINUES and not self.run_ends


@dataclass(frozen=True)
class DataKeys:
    """The names one ComputationTask reads, grouped by role (from its Model's specs)."""

    inputs: tuple[str, ...]
    actions: tuple[str, ...]
    states: tuple[str, ...]
    rewards: tuple[str, ...]
    # what the algorithm's predict adds for learning (stored, never sent to the env)
    behavior: tuple[str, ...] = ()


def split_episodes(experiences: Sequence[Experience]) -> list[list[Experience]]:
    """Cut a stream of experiences into runs that never cross an episode end (or an
    interrupted episode's last step)."""
    sequences: list[list[Experience]] = []
    current: list[Experience] = []
    for exp in experiences:
        current.append(exp)
        if not exp.has_successor:
            sequences.append(current)
            current = []
    if current:
        sequences.append(current)
    return [seq for seq in sequences if len(seq) >= 2]


def _stack(
    seqs: Sequence[Sequence[Experience]], key: str, start: int, stop: int | None
) -> np.ndarray:
    try:
        return np.stack([np.asarray(e.data[key]) for seq in seqs for e in seq[start:stop]])
    except KeyError:
        raise KeyError(
            f"experience has no {key!r}; stored names: {sorted(seqs[0][0].data)}"
        ) from None


def sequences_to_batch(seqs: Sequence[Sequence[Experience]], keys: DataKeys) -> LearnBatch:
    """Turn runs of consecutive experiences into transitions (step t, step t+1)."""
    if not seqs:
        raise ValueError("no experience sequence to learn from")

    def current(names: Sequence[str]) -> ArrayDict:
        return {k: _stack(seqs, k, 0, -1) for k in names}

    def following(names: Sequence[str]) -> ArrayDict:
        return {k: _stack(seqs, k, 1, None) for k in names}

    alive = np.array([[e.alive] for seq in seqs for e in seq[1:]], dtype=np.float32)
    # behavior data travels with the actions it describes
    action_names = keys.actions + keys.behavior
    return LearnBatch(
        inputs=current(keys.inputs),
        next_inputs=following(keys.inputs),
        states=current(keys.states),
        next_states=following(keys.states),
        next_alive={"alive": alive},
        actions=current(action_names),
        next_actions=following(action_names),
        rewards=current(keys.rewards),
        sequence_lengths=np.array([len(seq) - 1 for seq in seqs], dtype=np.int64),
    )
