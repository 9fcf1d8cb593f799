"""The Pendulum set-up every continuous-action example shares: the game, its bounds, the
agents, the Manager. An example only chooses its model, algorithm and helper.

    from pendulum_setup import ACTION_HIGH, ACTION_LOW, OBSERVATION_DIMS, run
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from flare.framework.manager import Manager

from gym_setup import report as gym_report
from gym_setup import train_agents

GAME = "Pendulum-v1"
OBSERVATION_DIMS = (3,)  # cos(theta), sin(theta), angular velocity
ACTION_DIMS = 1  # the torque
ACTION_LOW, ACTION_HIGH = (-2.0,), (2.0,)
# Every episode is 200 steps, ended by a time-out (never a game over), with rewards in
# [-16.3, 0]: acting at random scores about -1200 per game, a swing-up about -150.
EPISODE_STEPS = 200


def scale_reward(reward: np.ndarray) -> np.ndarray:
    """Rewards in [-1.6, 0] for learning (logged returns stay raw)."""
    return reward / 10.0


def make_parser(description: str, num_games: int) -> argparse.ArgumentParser:
    """The options every Pendulum example takes; an example may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--num-games", type=int, default=num_games, help="games per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    parser.add_argument("--no-stop", action="store_true", help="play every game")
    return parser


def run(
    rl_settings: dict[str, Any],
    num_agents: int,
    num_games: int,
    seed: int = 0,
    stop_at_mean_return: float | None = None,
    window: int = 20,
    reward_shaping_f: Callable[[np.ndarray], np.ndarray] | None = scale_reward,
    log_dir: str | None = None,
    print_interval_s: float = 10.0,
    agents_per_process: int = 4,
) -> Manager:
    """Train ``num_agents`` agents on Pendulum with the one CT ``rl_settings`` describes;
    see ``gym_setup.train_agents``. Pendulum steps are cheap: 4 agents share a process."""
    return train_agents(
        rl_settings, GAME, num_agents, num_games, seed, stop_at_mean_return, window,
        reward_shaping_f, log_dir, print_interval_s, agents_per_process,
    )  # fmt: skip


def report(manager: Manager, window: int = 20) -> str:
    """One line: games and steps played, best mean return over ``window`` games, wall time."""
    return gym_report(manager, window)
