"""The discrete-action algorithms on CartPole-v0, each with the settings its example runs.

They share the network body (``perception_net``), the agents and the Manager (``run``):
an experiment only chooses its model head, algorithm and helper. CartPole-v0 is solved at
a mean return of 195 over 100 games; every experiment stops there by default.

- ``train_value_based(name)``: DQN, SARSA, C51, QR-DQN or IQN (``VALUE_BASED``), one
  model (``q_model``) and one replay set-up (``replay_settings``) for all five;
- ``train_ppo``, ``train_off_policy_ac``, ``train_sr_q``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.algorithm_zoo.distributional_q import C51, IQN, QRDQN
from flare.algorithm_zoo.off_policy_ac import OffPolicyAC
from flare.algorithm_zoo.ppo import PPO
from flare.algorithm_zoo.q_learning import SimpleQ, SimpleSARSA
from flare.algorithm_zoo.successor_representation import SuccessorRepresentationQ
from flare.algorithm_zoo.value_based import EpsilonGreedy, ValueBasedAlgorithm
from flare.experiments import RewardShaping, add_common_flags, train_agents
from flare.experiments import report as gym_report
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.algorithm import Algorithm, Model
from flare.framework.manager import Manager
from flare.model_zoo.q_models import SimpleModelQ
from flare.model_zoo.simple_models import SimpleModelAC
from flare.model_zoo.successor_models import SimpleModelSR

GAME = "CartPole-v0"
OBSERVATION_DIMS = (4,)
NUM_ACTIONS = 2
TARGET = 195.0  # CartPole-v0 is solved at a mean return of 195 over 100 games
WINDOW = 100
NUM_AGENTS = 8  # every CartPole experiment's default


def perception_net(hidden: int = 64) -> nn.Module:
    """The shared body: a two-layer MLP over CartPole's four state variables."""
    return nn.Sequential(
        nn.Linear(OBSERVATION_DIMS[0], hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()
    )


def parse_args(
    description: str, num_games: int, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The flags every CartPole example takes; ``extra`` adds an example's own."""
    parser = add_common_flags(argparse.ArgumentParser(description=description), num_games)
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def run(
    rl_settings: dict[str, Any],
    num_agents: int,
    num_games: int,
    seed: int = 0,
    stop_at_mean_return: float | None = TARGET,
    reward_shaping_f: RewardShaping | None = None,
    log_dir: str | None = None,
    print_interval_s: float = 10.0,
    game: str = GAME,
    agents_per_process: int = 4,
) -> Manager:
    """Train ``num_agents`` agents on CartPole with the one CT ``rl_settings`` describes,
    judged (and stopped) on the mean return of 100 games; see ``train_agents``.
    CartPole steps cost ~10 us, a pipe round trip ~130 us: 4 agents share a process
    (the games are the same as with one agent per process, only sooner)."""
    return train_agents(
        rl_settings, game, num_agents, num_games, seed, stop_at_mean_return, WINDOW,
        reward_shaping_f, log_dir, print_interval_s, agents_per_process,
    )  # fmt: skip


def report(manager: Manager, window: int = WINDOW) -> str:
    """One line: games and steps played, best mean return over ``window`` games, wall time."""
    return gym_report(manager, window)


def tenth(reward: np.ndarray) -> np.ndarray:
    """Rewards of 0.1 a step: returns up to 10 keep TD errors (and C51's support) small."""
    return reward / 10.0


def hundredth(reward: np.ndarray) -> np.ndarray:
    """Rewards of 1 per step put values near 100; scaled by 1/100 they stay near 1."""
    return reward / 100.0


def replay_settings(algorithm: Algorithm, **overrides: Any) -> dict[str, Any]:
    """The CT settings of a replay experiment: its algorithm and the replay helper they
    share (8 transitions per agent, so 64 per update with 8 agents), with any overrides."""
    settings = dict(
        algorithm=algorithm,
        agent_helper=ExpReplayHelper,
        buffer_capacity=5000,
        num_experiences=8,
        sample_interval=2,
        warmup=250,
    )
    return {**settings, **overrides}


# --- the value-based algorithms: one model, one replay set-up, five objectives ---


def q_model(embedding_dim: int = 64) -> SimpleModelQ:
    """The one model every value-based experiment uses (DQN, SARSA, C51, QR-DQN, IQN)."""
    return SimpleModelQ(OBSERVATION_DIMS, NUM_ACTIONS, perception_net(), embedding_dim)


# name: (the algorithm's class, its own settings, overrides of replay_settings); every one
# learns with gamma 0.99, epsilon from 1 to 0.02 over 8000 steps and Adam at 1e-3:
# - dqn: SimpleQ, double Q-learning with a target network;
# - sarsa: SimpleSARSA, on-policy TD on the action taken next;
# - c51: categorical distributional Q-learning over 51 atoms;
# - qr-dqn: quantile-regression distributional Q-learning;
# - iqn: implicit quantile networks.
VALUE_BASED: dict[str, tuple[type[ValueBasedAlgorithm], dict[str, Any], dict[str, Any]]] = {
    "dqn": (SimpleQ, dict(target_update_interval=50), {}),
    "sarsa": (SimpleSARSA, dict(target_update_interval=50), {}),
    # a return of 0.1 a step stays below 0.1 / (1 - 0.99)
    "c51": (C51, dict(v_min=0.0, v_max=10.0, target_update_interval=20), {"sample_interval": 1}),
    "qr-dqn": (QRDQN, dict(target_update_interval=20), {}),
    "iqn": (IQN, dict(target_update_interval=20), {}),
}


def value_based_algorithm(name: str, model: Model) -> ValueBasedAlgorithm:
    """Value-based algorithm ``name`` (a key of ``VALUE_BASED``) on ``model``."""
    if name not in VALUE_BASED:
        raise ValueError(f"unknown value-based algorithm {name!r}; one of {sorted(VALUE_BASED)}")
    algorithm_class, own, _ = VALUE_BASED[name]
    return algorithm_class(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=8000),
        optim=(torch.optim.Adam, dict(lr=1e-3)),
        **own,
    )


def value_based_settings(name: str, model: Model, prioritized: bool = False) -> dict[str, Any]:
    """The CT settings of value-based algorithm ``name`` (a key of ``VALUE_BASED``) on
    ``model``, with uniform or ``prioritized`` replay."""
    algorithm = value_based_algorithm(name, model)
    return replay_settings(algorithm, **VALUE_BASED[name][2], prioritized=prioritized)


def train_value_based(
    name: str,
    num_games: int = 300,
    seed: int = 0,
    prioritized: bool = False,
    num_agents: int = NUM_AGENTS,
    **run_kwargs: Any,
) -> Manager:
    """Train value-based algorithm ``name`` (``"dqn"``, ``"sarsa"``, ``"c51"``,
    ``"qr-dqn"``, ``"iqn"``) on CartPole with full batches; ``run_kwargs`` go to ``run``."""
    torch.manual_seed(seed)
    settings = value_based_settings(name, q_model(), prioritized)
    settings.setdefault("batch_wait_s", 1.0)  # every update holds every agent's samples
    run_kwargs.setdefault("reward_shaping_f", tenth)
    return run(settings, num_agents, num_games, seed, **run_kwargs)


# --- the actor-critics and successor features ---


def train_ppo(
    num_games: int = 200,
    seed: int = 0,
    num_agents: int = NUM_AGENTS,
    sample_interval: int = 32,
    num_epochs: int = 10,
    minibatch_size: int = 128,
    lr: float = 2.5e-3,
    **run_kwargs: Any,
) -> Manager:
    """PPO (clipped objective, GAE, minibatch epochs) with ``OnlineHelper``; ``run_kwargs``
    go to ``run``."""
    torch.manual_seed(seed)
    model = SimpleModelAC(OBSERVATION_DIMS, NUM_ACTIONS, perception_net())
    algorithm = PPO(
        model,
        discount_factor=0.98,
        gae_lambda=0.8,
        num_epochs=num_epochs,
        minibatch_size=minibatch_size,
        optim=(torch.optim.Adam, dict(lr=lr, fused=True)),
    )
    settings = dict(
        algorithm=algorithm,
        agent_helper=OnlineHelper,
        sample_interval=sample_interval,  # 8 agents x 32 steps: 256 transitions per update
        batch_wait_s=1.0,  # one update holds every agent's runs
    )
    # the value head shares the body with the policy: small returns keep its cost from
    # swamping the policy's gradient
    run_kwargs.setdefault("reward_shaping_f", tenth)
    return run(settings, num_agents, num_games, seed, **run_kwargs)  # 4 agents per process


def train_off_policy_ac(
    num_games: int = 300,
    seed: int = 0,
    prioritized: bool = False,
    num_agents: int = NUM_AGENTS,
    lr: float = 1e-3,
    truncation: float = 2.0,
    entropy_weight: float = 0.01,
    buffer_capacity: int = 2000,
    num_experiences: int = 8,
    sample_interval: int = 2,
    **run_kwargs: Any,
) -> Manager:
    """Off-policy actor-critic (truncated importance weights) on replayed samples; the
    behaviour policy's log-probability is stored with each step. ``run_kwargs`` go to
    ``run``."""
    torch.manual_seed(seed)
    algorithm = OffPolicyAC(
        SimpleModelAC(OBSERVATION_DIMS, NUM_ACTIONS, perception_net()),
        discount_factor=0.99,
        truncation=truncation,
        value_cost_weight=0.5,
        entropy_weight=entropy_weight,
        target_tau=0.05,
        optim=(torch.optim.Adam, dict(lr=lr)),
    )
    settings = replay_settings(
        algorithm,
        buffer_capacity=buffer_capacity,  # per agent: recent samples, pi stays close to mu
        num_experiences=num_experiences,  # x 8 agents per update
        sample_interval=sample_interval,
        warmup=100,
        prioritized=prioritized,
        batch_wait_s=1.0,  # every update holds every agent's samples
    )
    run_kwargs.setdefault("reward_shaping_f", hundredth)
    return run(settings, num_agents, num_games, seed, **run_kwargs)


def train_sr_q(
    num_games: int = 300,
    seed: int = 0,
    prioritized: bool = False,
    num_agents: int = NUM_AGENTS,
    lr: float = 1e-3,
    feature_dim: int = 16,
    reconstruction_cost_weight: float = 0.0,
    decay_steps: int = 8000,
    target_update_interval: int = 50,
    num_experiences: int = 8,
    sample_interval: int = 2,
    **run_kwargs: Any,
) -> Manager:
    """Successor-feature Q-learning (Q = psi . w, psi learned by TD on phi, w by regressing
    the reward on phi), epsilon-greedy with a target network. ``run_kwargs`` go to
    ``run``."""
    torch.manual_seed(seed)
    model = SimpleModelSR(
        OBSERVATION_DIMS,
        NUM_ACTIONS,
        perception_net(),
        feature_dim,
        reconstruct=reconstruction_cost_weight > 0,
    )
    algorithm = SuccessorRepresentationQ(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=decay_steps),
        target_update_interval=target_update_interval,
        reconstruction_cost_weight=reconstruction_cost_weight,
        optim=(torch.optim.Adam, dict(lr=lr)),
    )
    settings = replay_settings(
        algorithm,
        num_experiences=num_experiences,  # x 8 agents per update
        sample_interval=sample_interval,
        prioritized=prioritized,
        batch_wait_s=1.0,  # every update holds every agent's samples
    )
    run_kwargs.setdefault("reward_shaping_f", hundredth)
    return run(settings, num_agents, num_games, seed, **run_kwargs)
