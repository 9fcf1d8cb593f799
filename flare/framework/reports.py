"""What agent processes report to the Manager."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GameRecord:
    """One finished game. ``game`` (arrival order) and ``wall_s`` (seconds since ``start()``
    when it arrived) are filled in by the Manager, so both grow together.

    ``return_`` is the sum of the environment's rewards before any reward shaping;
    ``cost`` is the mean learning cost over the game's learning steps (None if none).
    """

    agent: int
    return_: float
    length: int
    success: bool
    cost: float | None
    game: int = -1
    wall_s: float = 0.0


@dataclass(frozen=True)
class GameInterrupted:
    """A game cut short by ``EnvInterrupted`` (e.g. a lost simulator); not a finished game."""

    agent: int
    reason: str


@dataclass(frozen=True)
class AgentFinished:
    agent: int


@dataclass(frozen=True)
class AgentFailed:
    agent: int
    traceback: str
