"""The Manager's requests to an agent process, on a pipe of their own.

Only one for now: ``SaveAgents``, sent while every agent of the process waits on a CDP
(the Manager holds the CDPs, see ``Manager.checkpoint``). The process writes its agents'
snapshots and its random generators' states to one file and answers ``AgentsSaved``.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flare.common.snapshots import (
    load_tree,
    python_random_state,
    save_tree,
    set_python_random_state,
)

if TYPE_CHECKING:
    from flare.framework.agent import Agent


@dataclass(frozen=True)
class SaveAgents:
    """Write the process's agents to ``path`` (with their buffers, or without)."""

    path: Path
    with_buffers: bool = True
    serial: int = 0  # echoed in the answer: an answer to an earlier, failed one is dropped


@dataclass(frozen=True)
class AgentsSaved:
    """The answer: the agents saved and the bytes written, or why it failed."""

    agents: tuple[int, ...]
    serial: int = 0
    games: tuple[int, ...] = ()  # each agent's games played, in the order of ``agents``
    bytes: int = 0
    error: str | None = None


def save_agents(
    request: SaveAgents, first: int, agents: Sequence[Agent], waiting_on: Mapping[int, object]
) -> AgentsSaved:
    """Snapshots of a process's playing ``agents``; ``first`` is the process's first agent
    (the key a resumed run finds its random state by)."""
    ids = tuple(agent.id for agent in agents)
    try:
        tree = {
            "first": first,
            "agents": {
                str(a.id): a.snapshot(waiting_on.get(a.id), request.with_buffers) for a in agents
            },
            "random": _global_random_state(),
        }
        games = tuple(a.games_played for a in agents)
        return AgentsSaved(ids, request.serial, games, save_tree(request.path, tree))
    except Exception:  # noqa: BLE001 - the Manager reports it; the agents go on
        return AgentsSaved(ids, request.serial, error=traceback.format_exc())


def _global_random_state() -> dict[str, Any]:
    """The process-wide generators (agents and envs should not need them; if they use
    them, a resumed run goes on with the same numbers)."""
    return {
        "python": python_random_state(random._inst),
        "numpy": _numpy_legacy_state(),
    }


def _numpy_legacy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "keys": keys, "pos": pos, "has_gauss": has_gauss, "cached": cached}


def load_agent_snapshots(
    path: Path,
) -> tuple[int, dict[int, dict[str, Any]], dict[str, Any]]:
    """A process's first agent, its agents' snapshots by id, and its random generators'
    states."""
    tree = load_tree(path)
    return int(tree["first"]), {int(k): v for k, v in tree["agents"].items()}, tree["random"]


def set_global_random_state(state: dict[str, Any]) -> None:
    set_python_random_state(random._inst, state["python"])
    legacy = state["numpy"]
    np.random.set_state(
        (
            legacy["kind"],
            legacy["keys"],
            int(legacy["pos"]),
            int(legacy["has_gauss"]),
            float(legacy["cached"]),
        )
    )
