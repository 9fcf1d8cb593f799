"""Language-directed navigation in 3D: GFT agents with memory learn "go to the red ball"
in MiniWorld's rooms over gRPC, from first-person RGB frames.

The rooms run in a simulator server (``flare serve miniworld --level N``, see
``serve_miniworld``); the model is ``GFTModelAC(pixels=True)`` (strided convolutions to
a grid of features that the instruction's vector transforms, a GRU for memory), learned
by PPO on whole runs, as in the BabyAI tutorial (``flare.experiments.babyai``, whose
``train`` and ``summary`` this reuses). ``blind=True`` is the control: the same model
with every instruction read as padding. See docs/3d-simulators.md.
"""

from __future__ import annotations

from typing import Any

from flare.bridge.launch import flare_command
from flare.experiments import babyai
from flare.framework.manager import Manager

LEVEL = 1
summary = babyai.summary


def serve_miniworld(level: int = LEVEL, env_processes: int = 0) -> list[str]:
    """The command of ``flare serve miniworld --level LEVEL`` on a free loopback port
    (``env_processes``: that many render workers)."""
    workers = ["--env-processes", str(env_processes)] if env_processes else []
    command = [*flare_command(), "serve", "miniworld", "--level", str(level), *workers]
    return [*command, "--address", "127.0.0.1:0"]


def train(
    address: str,
    num_agents: int = 16,
    num_games: int = 1_000,
    stop_at_success: float | None = 0.9,
    seed: int = 0,
    blind: bool = False,
    learn_beside_acting: bool = True,
    **kwargs: Any,
) -> Manager:
    """Train ``num_agents`` GFT agents on the rooms at ``address`` (``kwargs``: those of
    ``flare.experiments.babyai.train``, e.g. ``lr``, ``sample_interval``, ``log_dir``,
    ``stop_after_s``). Learning runs beside acting: a CNN's PPO epochs on a CPU took
    most of the learner's time, with the agents and the renderer waiting on them."""
    return babyai.train(
        address, num_agents, num_games, stop_at_success, seed, blind=blind, pixels=True,
        learn_beside_acting=learn_beside_acting, **kwargs,
    )  # fmt: skip
