"""Ready-made experiments: seeded agents on one environment, the Manager, a report.

The examples (``examples/*_example.py``) are thin command lines over these functions, and
the tests train the same functions, so what an example runs is what the tests check.

- ``flare.experiments`` (this module): ``train_on_env`` (any ``Env``), ``train_agents``
  (a Gymnasium game), ``best_mean``, ``report`` and the common command-line flags.
- ``flare.experiments.cartpole``: the discrete-action algorithms on CartPole-v0 (PPO, DQN,
  SARSA, C51, QR-DQN, IQN, off-policy actor-critic, successor-feature Q-learning).
- ``flare.experiments.pendulum``: the continuous-action ones on Pendulum-v1 (DDPG,
  Gaussian actor-critic).
- ``flare.experiments.catch``: actor-critic plus UNREAL's reward prediction on Catch.
- ``flare.experiments.memory``: agents with and without a GRU on a cue-memory task.
- ``flare.experiments.gridworld``, ``flare.experiments.babyai``: agents that follow
  instructions, against simulators served over gRPC.

Every function seeds torch before it builds its model, and seeds agent ``i``'s env with
``1000 * seed + i``, so a seeded run with full batches plays the same games anywhere.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.common.curves import moving_average
from flare.env_zoo.gym_env import GymEnv
from flare.framework.agent import Agent
from flare.framework.env import Env
from flare.framework.manager import Manager

RewardShaping = Callable[[np.ndarray], np.ndarray]

__all__ = [
    "RewardShaping",
    "add_common_flags",
    "best_mean",
    "report",
    "train_agents",
    "train_on_env",
]


def train_on_env(
    ct_settings: Mapping[str, dict[str, Any]],
    env_class: Callable[..., Env],
    env_kwargs: Mapping[str, Any],
    num_agents: int,
    num_games: int,
    seed: int = 0,
    stop_at_mean_return: float | None = None,
    window: int = 100,
    reward_shaping_f: RewardShaping | None = None,
    log_dir: str | None = None,
    print_interval_s: float = 0.0,
    agents_per_process: int = 1,
    agent_factory: Callable[[int], Agent] | None = None,
    stop_at_success_rate: float | None = None,
    model_dir: str | None = None,
    stop_after_s: float | None = None,
    torch_threads: int | None = 1,
) -> Manager:
    """Train ``num_agents`` agents for ``num_games`` games each on ``env_class(**env_kwargs,
    seed=1000 * seed + i)`` with the CTs ``ct_settings`` describes; returns the Manager
    (its ``stats``, ``cts``, ``reached_target``).

    The run stops early once the mean return of the last ``window`` games reaches
    ``stop_at_mean_return``, or their success rate ``stop_at_success_rate`` (if given),
    or after ``stop_after_s`` seconds (a time budget: the agents' unfinished games are cut).
    Each agent is ``agent_factory(num_games)`` (by default a ``SimpleRLAgent`` whose
    stored rewards go through ``reward_shaping_f``); ``agents_per_process`` agents share a
    process; ``torch_threads`` are the learner's (see ``Manager``). The caller seeds torch
    before it builds the CTs' models.
    """
    manager = Manager(
        dict(ct_settings),
        dict(
            log_dir=log_dir, model_dir=model_dir, print_interval_s=print_interval_s, window=window
        ),
        agents_per_process=agents_per_process,
        torch_threads=torch_threads,
    )
    if agent_factory is None:
        shaping_f = reward_shaping_f

        def agent_factory(games: int) -> Agent:
            if shaping_f is None:
                return SimpleRLAgent(games)
            return SimpleRLAgent(games, reward_shaping_f=shaping_f)

    for i in range(num_agents):
        agent = agent_factory(num_games)
        agent.set_env(env_class, **env_kwargs, seed=1000 * seed + i)
        manager.add_agent(agent)
    budget = None
    if stop_after_s is not None:
        budget = threading.Timer(stop_after_s, manager.request_stop, args=("the time budget",))
        budget.daemon = True
        budget.start()
    try:
        manager.start(
            stop_at_mean_return=stop_at_mean_return, stop_at_success_rate=stop_at_success_rate
        )
    finally:
        if budget is not None:
            budget.cancel()
    return manager


def train_agents(
    rl_settings: dict[str, Any],
    game: str,
    num_agents: int,
    num_games: int,
    seed: int,
    stop_at_mean_return: float | None,
    window: int,
    reward_shaping_f: RewardShaping | None,
    log_dir: str | None,
    print_interval_s: float,
    agents_per_process: int = 1,
) -> Manager:
    """Train ``num_agents`` agents on the Gymnasium ``game`` with the one CT (``"RL"``)
    ``rl_settings`` describes; see ``train_on_env``."""
    return train_on_env(
        {"RL": rl_settings}, GymEnv, {"game_name": game}, num_agents, num_games, seed,
        stop_at_mean_return, window, reward_shaping_f, log_dir, print_interval_s,
        agents_per_process,
    )  # fmt: skip


def best_mean(manager: Manager, window: int) -> float:
    """The best mean return over ``window`` consecutive games (over all, if fewer; NaN if
    no game finished)."""
    returns = np.array([r.return_ for r in manager.stats])
    if len(returns) == 0:
        return float("nan")
    if len(returns) < window:
        return float(returns.mean())
    return float(moving_average(returns, window)[window - 1 :].max())


def report(manager: Manager, window: int) -> str:
    """One line: games and steps played, best mean return over ``window`` games, wall time."""
    steps = sum(r.length for r in manager.stats)
    wall = manager.stats[-1].wall_s if manager.stats else 0.0
    reached = "reached" if manager.reached_target else "did not reach"
    return (
        f"{len(manager.stats)} games, {steps} steps, {wall:.0f} s, best mean of {window}: "
        f"{best_mean(manager, window):.1f} ({reached} the target)"
    )


def add_common_flags(parser: argparse.ArgumentParser, num_games: int) -> argparse.ArgumentParser:
    """The flags every Gymnasium example takes: ``--num-games`` (per agent, default
    ``num_games``), ``--seed`` and ``--log-dir``."""
    parser.add_argument("--num-games", type=int, default=num_games, help="games per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    return parser
