"""The CartPole set-up every discrete-action example shares: the network body, the agents,
the Manager. An example only chooses its model head, algorithm and helper.

    from cartpole_setup import perception_net, run
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.framework.manager import Manager

from gym_setup import report as gym_report
from gym_setup import train_agents

GAME = "CartPole-v0"
OBSERVATION_DIMS = (4,)
NUM_ACTIONS = 2
TARGET = 195.0  # CartPole-v0 is solved at a mean return of 195 over 100 games
WINDOW = 100


def perception_net(hidden: int = 64) -> nn.Module:
    """The shared body: a two-layer MLP over CartPole's four state variables."""
    return nn.Sequential(
        nn.Linear(OBSERVATION_DIMS[0], hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
    )


def parse_args(
    description: str, num_games: int, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The flags every CartPole example takes; ``extra`` adds an example's own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--num-games", type=int, default=num_games, help="games per agent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", help="append every finished game to LOG_DIR/games.csv")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def run(
    rl_settings: dict[str, Any],
    num_agents: int,
    num_games: int,
    seed: int = 0,
    stop_at_mean_return: float | None = TARGET,
    reward_shaping_f: Callable[[np.ndarray], np.ndarray] | None = None,
    log_dir: str | None = None,
    print_interval_s: float = 10.0,
    game: str = GAME,
    agents_per_process: int = 4,
) -> Manager:
    """Train ``num_agents`` agents on CartPole with the one CT ``rl_settings`` describes,
    judged (and stopped) on the mean return of 100 games; see ``gym_setup.train_agents``.
    CartPole steps cost ~10 us, a pipe round trip ~130 us: 4 agents share a process
    (the games are the same as with one agent per process, only sooner)."""
    return train_agents(
        rl_settings, game, num_agents, num_games, seed, stop_at_mean_return, WINDOW,
        reward_shaping_f, log_dir, print_interval_s, agents_per_process,
    )  # fmt: skip


def report(manager: Manager, window: int = WINDOW) -> str:
    """One line: games and steps played, best mean return over ``window`` games, wall time."""
    return gym_report(manager, window)


def q_model(embedding_dim: int = 64) -> nn.Module:
    """The one model every value-based example uses (DQN, SARSA, C51, QR-DQN, IQN)."""
    from flare.model_zoo.q_models import SimpleModelQ

    return SimpleModelQ(OBSERVATION_DIMS, NUM_ACTIONS, perception_net(), embedding_dim)


def train_value_based(
    choose_algorithm: Callable[[nn.Module], dict[str, Any]],
    num_games: int,
    seed: int = 0,
    num_agents: int = 8,
    **run_kwargs: Any,
) -> Manager:
    """What the value-based examples share: the model, the agents, full batches. Only
    ``choose_algorithm`` (model -> the CT's settings: algorithm and helper) differs."""
    torch.manual_seed(seed)
    settings = choose_algorithm(q_model())
    settings.setdefault("batch_wait_s", 1.0)  # every update holds every agent's samples
    run_kwargs.setdefault("reward_shaping_f", tenth)
    return run(settings, num_agents, num_games, seed, **run_kwargs)


def tenth(reward: np.ndarray) -> np.ndarray:
    """Rewards of 0.1 a step: returns up to 10 keep TD errors (and C51's support) small."""
    return reward / 10.0


def replay_settings(algorithm: Any, **overrides: Any) -> dict[str, Any]:
    """The CT settings of a replay example: its algorithm and the replay helper they
    share (8 transitions per agent, so 64 per update with 8 agents), with any overrides."""
    from flare.framework.agent import ExpReplayHelper

    settings = dict(
        algorithm=algorithm,
        agent_helper=ExpReplayHelper,
        buffer_capacity=5000,
        num_experiences=8,
        sample_interval=2,
        warmup=250,
    )
    return {**settings, **overrides}


def value_based_main(doc: str, choose_algorithm: Callable[[nn.Module], dict[str, Any]]) -> None:
    """A value-based example's command line: train, then print the one-line report."""
    args = parse_args(doc.splitlines()[0], num_games=300)
    manager = train_value_based(choose_algorithm, args.num_games, args.seed, log_dir=args.log_dir)
    print(report(manager))
