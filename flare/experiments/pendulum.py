"""The continuous-action algorithms on Pendulum-v1, each with the settings its example runs.

They share the game, its bounds, the agents and the Manager (``run``): an experiment only
chooses its model, algorithm and helper. Every episode is 200 steps, ended by a time-out
(never a game over), with rewards in [-16.3, 0]: acting at random scores about -1200 per
game, a swing-up about -150.

- ``train_ddpg``: DDPG with Gaussian or Ornstein-Uhlenbeck noise, from replay;
- ``train_gaussian_ac``: the on-policy Gaussian actor-critic (GAE, minibatch epochs).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch

from flare.algorithm_zoo.ddpg import DDPG
from flare.algorithm_zoo.gaussian_ac import GaussianAC
from flare.common.noises import GaussianNoise, OrnsteinUhlenbeckNoise
from flare.experiments import RewardShaping, add_common_flags, train_agents
from flare.experiments import report as gym_report
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.continuous_models import SimpleModelDeterministic, SimpleModelGaussian

GAME = "Pendulum-v1"
OBSERVATION_DIMS = (3,)  # cos(theta), sin(theta), angular velocity
ACTION_DIMS = 1  # the torque
ACTION_LOW, ACTION_HIGH = (-2.0,), (2.0,)
EPISODE_STEPS = 200
WINDOW = 20

DDPG_AGENTS = 4
DDPG_TARGET = -300.0  # mean return of 20 games; acting at random scores about -1200
GAUSSIAN_AC_AGENTS = 8
GAUSSIAN_AC_TARGET = -400.0  # mean return of 20 games


def scale_reward(reward: np.ndarray) -> np.ndarray:
    """Rewards in [-1.6, 0] for learning (logged returns stay raw)."""
    return reward / 10.0


def make_parser(description: str, num_games: int) -> argparse.ArgumentParser:
    """The options every Pendulum example takes; an example may add its own."""
    parser = add_common_flags(argparse.ArgumentParser(description=description), num_games)
    parser.add_argument("--no-stop", action="store_true", help="play every game")
    return parser


def run(
    rl_settings: dict[str, Any],
    num_agents: int,
    num_games: int,
    seed: int = 0,
    stop_at_mean_return: float | None = None,
    window: int = WINDOW,
    reward_shaping_f: RewardShaping | None = scale_reward,
    log_dir: str | None = None,
    print_interval_s: float = 10.0,
    agents_per_process: int = 4,
) -> Manager:
    """Train ``num_agents`` agents on Pendulum with the one CT ``rl_settings`` describes;
    see ``flare.experiments.train_agents``. Pendulum steps are cheap: 4 agents share a
    process."""
    return train_agents(
        rl_settings, GAME, num_agents, num_games, seed, stop_at_mean_return, window,
        reward_shaping_f, log_dir, print_interval_s, agents_per_process,
    )  # fmt: skip


def report(manager: Manager, window: int = WINDOW) -> str:
    """One line: games and steps played, best mean return over ``window`` games, wall time."""
    return gym_report(manager, window)


def make_noise(kind: str, num_agents: int, seed: int) -> GaussianNoise | OrnsteinUhlenbeckNoise:
    """DDPG's exploration noise, ``"gaussian"`` or ``"ou"``: one row per agent (DDPG's
    predict batches hold every agent, in id order)."""
    size = (num_agents, ACTION_DIMS)
    if kind == "gaussian":
        return GaussianNoise(size, sigma=0.1, seed=seed)
    if kind == "ou":
        # dt=0.05 is Pendulum's time step: correlated over ~1 / theta = 1 s (20 steps),
        # with a stationary std of 0.2 / sqrt(2 theta) = 0.14
        return OrnsteinUhlenbeckNoise(size, theta=1.0, sigma=0.2, dt=0.05, seed=seed)
    raise ValueError(f"unknown noise {kind!r}; use 'gaussian' or 'ou'")


def train_ddpg(
    num_games: int = 100,
    seed: int = 0,
    stop: bool = True,
    noise: str = "gaussian",
    num_agents: int = DDPG_AGENTS,
    **run_kwargs: Any,
) -> Manager:
    """DDPG (deterministic actor, Q critic, soft target updates) from replay, stopping at
    ``DDPG_TARGET`` unless ``stop`` is False; ``run_kwargs`` go to ``run``."""
    torch.manual_seed(seed)
    model = SimpleModelDeterministic(OBSERVATION_DIMS, ACTION_LOW, ACTION_HIGH, hidden=(64, 64))
    algorithm = DDPG(
        model,
        discount_factor=0.99,
        tau=0.01,
        actor_lr=1e-3,
        critic_lr=1e-3,
        noise=make_noise(noise, num_agents, seed),
    )
    settings = dict(
        algorithm=algorithm,
        agent_helper=ExpReplayHelper,
        buffer_capacity=20_000,  # per agent: every step of the run
        num_experiences=64,  # x 4 agents: 256 transitions per update
        sample_interval=1,
        warmup=200,
        batch_wait_s=1.0,  # every batch holds every agent: one noise row each, repeatable
    )
    return run(
        settings,
        num_agents,
        num_games,
        seed,
        stop_at_mean_return=DDPG_TARGET if stop else None,
        **run_kwargs,
    )


def train_gaussian_ac(
    num_games: int = 100,
    seed: int = 0,
    stop: bool = True,
    num_agents: int = GAUSSIAN_AC_AGENTS,
    sample_interval: int = 64,
    **run_kwargs: Any,
) -> Manager:
    """GaussianAC (on-policy actor-critic, Gaussian policy, GAE) with ``OnlineHelper``,
    stopping at ``GAUSSIAN_AC_TARGET`` unless ``stop`` is False; ``run_kwargs`` go to
    ``run``."""
    torch.manual_seed(seed)
    model = SimpleModelGaussian(
        OBSERVATION_DIMS, ACTION_LOW, ACTION_HIGH, hidden=(64, 64), init_log_std=-0.5
    )
    algorithm = GaussianAC(
        model,
        discount_factor=0.9,  # a short horizon, as rl-baselines3-zoo's PPO on Pendulum
        gae_lambda=0.95,
        num_epochs=10,
        minibatch_size=64,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    settings = dict(
        algorithm=algorithm,
        agent_helper=OnlineHelper,
        sample_interval=sample_interval,  # 8 agents x 64 steps: 512 transitions per update
        batch_wait_s=1.0,  # one update holds every agent's runs: repeatable
    )
    return run(
        settings,
        num_agents,
        num_games,
        seed,
        stop_at_mean_return=GAUSSIAN_AC_TARGET if stop else None,
        **run_kwargs,
    )
