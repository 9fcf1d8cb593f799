"""A checkpoint of a whole run, and taking a run up from one.

``learner.pt`` holds every CT's algorithm (model, optimizer, the algorithm's counters),
the learner's random state, the run's position (games, env steps, wall time, updates,
the stop window) and each agent's games played; ``checkpoint.json`` says the same
figures in words. Files are loaded with ``weights_only=True``: a checkpoint holds
tensors, numbers and strings, never code.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from flare.framework.manager import Manager
from flare.framework.process_control import AgentsSaved, load_agent_snapshots
from flare.framework.run_events import CheckpointInfo, RunPosition
from flare.framework.run_pause import PauseError, save_local_agents
from flare.learner.run_dir import RunDirectory

logger = logging.getLogger(__name__)
FORMAT = 1
LEARNER_STATE = "learner.pt"
SUMMARY = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint that does not fit the run resumed from it."""


def run_position(manager: Manager) -> RunPosition:
    """Where the run is now, as a resumed run will take it up."""
    window = manager.log_settings.window
    before = manager.position
    returns = [*before.recent_returns, *(r.return_ for r in manager.stats)][-window:]
    successes = [*before.recent_successes, *(r.success for r in manager.stats)][-window:]
    costs = [*before.recent_costs, *(r.cost for r in manager.stats if r.cost is not None)]
    return RunPosition(
        games=manager.games_played,
        env_steps=manager.env_steps,
        wall_s=manager.wall_s,
        learn_updates=manager.policy_version,
        interrupted_games=manager.interrupted_games,
        recent_returns=tuple(returns),
        recent_successes=tuple(successes),
        recent_costs=tuple(costs[-window:]),
    )


def agent_games(manager: Manager) -> list[int]:
    """Each agent's games played in the whole run, in agent order."""
    this_session = Counter(r.agent for r in manager.stats)
    return [manager.games_before(agent) + this_session[agent.id] for agent in manager.agents]


class RunCheckpointer:
    """Writes a run's checkpoints into its run directory (the Manager's ``checkpointer``).

    While agents play, a checkpoint pauses the run (``Manager.paused``) and takes the
    learner's state and every agent's snapshot at that one moment: replay buffers too
    unless ``with_buffers`` is off (then a resumed run refills them).
    """

    def __init__(
        self,
        run_dir: RunDirectory,
        keep: int = 3,
        with_buffers: bool = True,
        pause_timeout_s: float = 60.0,
    ) -> None:
        self.run_dir = run_dir
        self.keep = keep
        self.with_buffers = with_buffers
        self.pause_timeout_s = pause_timeout_s

    def __call__(self, manager: Manager) -> CheckpointInfo:
        started = time.monotonic()
        staging = self.run_dir.staging_checkpoint()
        try:
            saved: list[AgentsSaved] = []
            if manager.exact_checkpoints and manager.can_pause:
                with manager.paused(self.pause_timeout_s) as pause:
                    saved = pause.save_agents(staging, self.with_buffers, self.pause_timeout_s)
                    manager.catch_up(saved, pause.playing)
                    state = self._learner_state(manager)
                    torch.save(state, staging / LEARNER_STATE)
            elif manager.exact_checkpoints and not learner_alone_is_whole(manager):
                raise PauseError(
                    "the agents cannot be paused (the run is starting, stopping or failed) and "
                    "some have games left: the last checkpoint stands"
                )
            else:
                state = self._learner_state(manager)
                torch.save(state, staging / LEARNER_STATE)
                if manager.external.agents:  # (not playing: the run is over or not begun)
                    with manager.external.frozen():
                        agents = manager.external.agents
                        saved = [save_local_agents(agents, staging, self.with_buffers)]
            position = state["position"]
            summary = {
                "games": position["games"],
                "policy_version": position["learn_updates"],
                "wall_s": round(position["wall_s"], 3),
                "env_steps": position["env_steps"],
                "agent_games": state["agent_games"],
                "agents_saved": sorted(a for answer in saved for a in answer.agents),
                "agents_bytes": sum(answer.bytes for answer in saved),
                "with_buffers": self.with_buffers,
                "cts": sorted(manager.cts),
                "bytes": sum(p.stat().st_size for p in staging.iterdir()),
                "written_in_s": round(time.monotonic() - started, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            (staging / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        final = self.run_dir.commit_checkpoint(staging, position["games"], self.keep)
        logger.info(
            "checkpoint %s: %d games, %.1f MB of agents", final, position["games"],
            summary["agents_bytes"] / 1e6,
        )  # fmt: skip
        return CheckpointInfo(
            final, position["games"], position["learn_updates"], position["wall_s"]
        )

    @staticmethod
    def _learner_state(manager: Manager) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "cts": {name: ct.state_dict() for name, ct in manager.cts.items()},
            "position": dataclasses.asdict(run_position(manager)),
            "agent_games": agent_games(manager),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }


def learner_alone_is_whole(manager: Manager) -> bool:
    """Whether a checkpoint without the agents' snapshots loses nothing: every agent has
    played its budget, or none has begun (a new run's agents start as they were built).
    External agents are saved without a pause (their episodes are never taken up)."""
    games = agent_games(manager)
    external = manager.external.ids
    done = all(
        g >= a.num_games for g, a in zip(games, manager.agents, strict=True) if a.id not in external
    )
    fresh = not any(games) and not manager.agent_snapshots and not manager.position.games
    return done or fresh


def resume_from(manager: Manager, checkpoint: Path) -> RunPosition:
    """Take ``manager`` (built from the same config, not started) up where ``checkpoint``
    left its run: the CTs' state, the position, each agent's games."""
    state: dict[str, Any] = torch.load(checkpoint / LEARNER_STATE, weights_only=True)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{checkpoint}: unknown checkpoint format {state.get('format')}")
    saved, ours = set(state["cts"]), set(manager.cts)
    if saved != ours:
        raise CheckpointError(
            f"{checkpoint} holds the CTs {sorted(saved)}, the run has {sorted(ours)}"
        )
    games = state["agent_games"]
    if len(games) != len(manager.agents):
        raise CheckpointError(
            f"{checkpoint} holds {len(games)} agents, the run has {len(manager.agents)}"
        )
    for name, ct in manager.cts.items():
        ct.load_state_dict(state["cts"][name])
    for agent, played in zip(manager.agents, games, strict=True):
        agent.continue_after(min(int(played), agent.num_games))
    for path in sorted(checkpoint.glob("agents-*.npz")):
        first, snapshots, random_state = load_agent_snapshots(path)
        unknown = sorted(set(snapshots) - set(range(len(manager.agents))))
        if unknown:
            raise CheckpointError(f"{path} holds agents {unknown} the run does not have")
        manager.agent_snapshots.update(snapshots)
        manager.process_random[first] = random_state
    manager.exact_checkpoints = True
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    position = RunPosition(**_tuples(state["position"]))
    manager.continue_run(position)
    return position


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
