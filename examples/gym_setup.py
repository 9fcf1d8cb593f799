"""What the CartPole and Pendulum set-ups share: seeded agents on one Gymnasium game, the
Manager, and a one-line report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.common.curves import moving_average
from flare.env_zoo.gym_env import GymEnv
from flare.framework.manager import Manager


def train_agents(
    rl_settings: dict[str, Any],
    game: str,
    num_agents: int,
    num_games: int,
    seed: int,
    stop_at_mean_return: float | None,
    window: int,
    reward_shaping_f: Callable[[np.ndarray], np.ndarray] | None,
    log_dir: str | None,
    print_interval_s: float,
    agents_per_process: int = 1,
) -> Manager:
    """Train ``num_agents`` agents on ``game`` with the one CT ``rl_settings`` describes,
    stopping once the mean return of the last ``window`` games reaches
    ``stop_at_mean_return`` (if given); ``agents_per_process`` agents share a process.

    The caller seeds torch before building its model; each agent's env is seeded from
    ``seed``, so a run is repeatable.
    """
    manager = Manager(
        {"RL": rl_settings},
        dict(log_dir=log_dir, print_interval_s=print_interval_s, window=window),
        agents_per_process=agents_per_process,
    )
    shaping = {} if reward_shaping_f is None else {"reward_shaping_f": reward_shaping_f}
    for i in range(num_agents):
        agent = SimpleRLAgent(num_games, **shaping)
        agent.set_env(GymEnv, game_name=game, seed=1000 * seed + i)
        manager.add_agent(agent)
    manager.start(stop_at_mean_return=stop_at_mean_return)
    return manager


def best_mean(manager: Manager, window: int) -> float:
    """The best mean return over ``window`` consecutive games (over all, if fewer)."""
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
