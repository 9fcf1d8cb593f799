"""The two meanings a step's end can have, kept apart.

``GameOutcome`` is what an environment says a step did to the game (``Env.step``'s
``game_over``); ``NextStep`` is what learning makes of the step that follows a stored one
(its ``next_alive``): whether a value may be bootstrapped from it, and whether a multi-step
return may run on through it. A time-out is never a game over: learning bootstraps
through it but a multi-step sum stops there.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

import numpy as np
import torch


class GameOutcome(IntEnum):
    """An env step's ``game_over``: the game goes on, or ended in success or failure."""

    ALIVE = 0
    SUCCESS = 1
    FAILURE = -1


class NextStep(IntEnum):
    """A stored step's status, seen from the transition that leads into it."""

    CONTINUES = 1  # the episode goes on: bootstrap from it, multi-step sums run on
    GAME_OVER = 0  # the game ended (success or failure): nothing to bootstrap from
    TIMED_OUT = -1  # cut by the step limit: bootstrap from it, but stop summing there


# Bound once: looking an enum member up on its class costs ~170 ns, a name ~10 ns, and
# these are read on every step.
_ALIVE = GameOutcome.ALIVE
_CONTINUES, _GAME_OVER, _TIMED_OUT = NextStep.CONTINUES, NextStep.GAME_OVER, NextStep.TIMED_OUT


def next_step_after(game_over: int, timed_out: bool) -> NextStep:
    """The status of the step an env step led to, from its ``game_over`` and time-out."""
    if game_over != _ALIVE:
        return _GAME_OVER
    return _TIMED_OUT if timed_out else _CONTINUES


ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def bootstrap_weight(next_alive: ArrayT) -> ArrayT:
    """How much of the next step's value a target takes: 1 if it continues or timed out,
    0 after a game over (``|next_alive|``)."""
    return abs(next_alive)


def continues(next_alive: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """1 where the episode goes on past the next step (a multi-step return runs on), else 0."""
    return (next_alive == NextStep.CONTINUES).to(dtype or next_alive.dtype)
