"""What agent processes report to the Manager."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GameRecord:
    """One finished game. ``game`` (arrival order) and ``wall_s`` (seconds since ``start()``
    when it arrived) are filled in by the Manager, so both grow together.

    ``return_`` is the sum of the environment's rewards before any reward shaping.
    ``costs`` holds, for every cost a CT's learning returned during the game, its mean
    over the game's learning steps, named ``"<ct>/<cost>"`` (e.g. ``"RL/cost"``,
    ``"reward_prediction/accuracy"``); ``cost`` is the ``cost`` of the first CT in
    ``ct_settings`` that reported one (None if none learned). ``agent_game`` counts the
    agent's own games from 0.
    """

    agent: int
    return_: float
    length: int
    success: bool
    cost: float | None
    game: int = -1
    wall_s: float = 0.0
    costs: dict[str, float] = field(default_factory=dict)
    agent_game: int = -1


def in_play_order(records: Iterable[GameRecord]) -> list[GameRecord]:
    """Games sorted by each agent's game number, then by agent: the order they were played
    in when the agents play in step. (The Manager's ``stats`` are in arrival order, which
    depends on timing among games that end together.)"""
    return sorted(records, key=lambda r: (r.agent_game, r.agent))


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


@dataclass(frozen=True)
class EnvMismatch:
    """An agent's env does not give what its CTs' models read: the run cannot start. The
    message names both sides in one line (no traceback: nothing is wrong in the code)."""

    agent: int
    message: str


@dataclass(frozen=True)
class ProcessReady:
    """An agent process built its agents' envs and first requests and waits to send them."""

    agents: tuple[int, ...]


@dataclass(frozen=True)
class ServerHealth:
    """What a client knows of one simulator server of its farm: ``state`` is "live",
    "backing off" (failed lately: no new session until its back-off ends) or "dropped"."""

    address: str
    state: str
    failures: int


@dataclass(frozen=True)
class FarmHealth:
    """An agent's view of its env's servers changed (a server failed, recovered or was
    dropped): the servers whose health changed."""

    agent: int
    servers: tuple[ServerHealth, ...]
