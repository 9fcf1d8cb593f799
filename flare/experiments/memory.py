"""An agent with memory solves a task a memoryless agent cannot.

``CueMemoryEnv`` shows a cue at the first step only and asks for it after ``delay``
blank steps. The same algorithm learns it with a GRU (``SimpleRNNModelAC`` /
``SimpleRNNModelQ``, ``SimpleRNNRLAgent``) and without one (``SimpleModelAC`` /
``SimpleModelQ``, ``SimpleRLAgent``): only the first gets past a coin flip. The
algorithms: ``"ac"`` (SimpleAC), ``"ppo"`` (PPO on minibatches of whole runs) and ``"q"``
(Q-learning on replayed runs, ``ExpReplayHelper`` with ``sequence_length``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent, SimpleRNNRLAgent
from flare.algorithm_zoo.ppo import PPO
from flare.algorithm_zoo.q_learning import SimpleQ
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.env_zoo.memory_cue import CueMemoryEnv
from flare.experiments import train_on_env
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.algorithm import Algorithm
from flare.framework.manager import Manager
from flare.model_zoo.q_models import SimpleModelQ
from flare.model_zoo.rnn_models import SimpleRNNModelAC, SimpleRNNModelQ
from flare.model_zoo.simple_models import SimpleModelAC

WINDOW = 100
ALGORITHMS = ("ac", "ppo", "q")


def perception_net(inputs: int) -> nn.Module:
    """The body of every memory experiment's model: one hidden layer of 32."""
    return nn.Sequential(nn.Linear(inputs, 32), nn.ReLU())


def choose_algorithm(
    algorithm: str, memory: bool, dims: tuple[int, ...], actions: int
) -> Algorithm:
    """The same algorithm (one of ``ALGORITHMS``) with or without a GRU in its model."""
    net = perception_net(dims[0])
    if algorithm == "ac":
        model_class = SimpleRNNModelAC if memory else SimpleModelAC
        return SimpleAC(
            model_class(dims, actions, net),
            discount_factor=0.95,
            entropy_weight=0.01,
            optim=(optim.Adam, dict(lr=1e-3)),
        )
    if algorithm == "ppo":
        model_class = SimpleRNNModelAC if memory else SimpleModelAC
        return PPO(
            model_class(dims, actions, net),
            discount_factor=0.95,
            num_epochs=4,
            minibatch_size=64,
            entropy_weight=0.01,
            optim=(optim.Adam, dict(lr=1e-3)),
        )
    if algorithm == "q":
        model = SimpleRNNModelQ(dims, actions, net) if memory else SimpleModelQ(dims, actions, net)
        return SimpleQ(
            model,
            discount_factor=0.95,
            exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=3000),
            target_update_interval=50,
            optim=(optim.Adam, dict(lr=1e-3)),
        )
    raise ValueError(f"unknown algorithm {algorithm!r}: 'ac', 'ppo' or 'q'")


def helper_settings(algorithm: str, delay: int) -> dict[str, Any]:
    """The helper of ``algorithm`` and its schedule, sized by the episode (``delay + 2``)."""
    episode = delay + 2
    if algorithm == "ac":
        # two episodes per learn: most batches hold a whole episode, cue to question
        return dict(agent_helper=OnlineHelper, sample_interval=2 * episode + 2)
    if algorithm == "ppo":
        return dict(agent_helper=OnlineHelper, sample_interval=4 * episode)
    # replayed runs as long as an episode, so one can go from the cue to the question
    return dict(
        agent_helper=ExpReplayHelper,
        buffer_capacity=2000,
        num_experiences=8,
        sequence_length=episode,
        sample_interval=4,
    )


def train(
    memory: bool,
    algorithm: str = "ac",
    delay: int = 4,
    num_agents: int = 8,
    num_games: int = 300,
    seed: int = 0,
    batch_wait_s: float = 0.01,
    stop_at_success: float | None = None,
    print_interval_s: float = 10.0,
) -> Manager:
    """Train ``num_agents`` agents with (``memory``) or without a GRU; returns the Manager."""
    torch.manual_seed(seed)
    probe = CueMemoryEnv(delay)
    dims, actions = probe.observation_dims()["sensor"], probe.action_dims()["action"]
    settings = dict(
        algorithm=choose_algorithm(algorithm, memory, dims, actions),
        num_agents=num_agents,
        batch_wait_s=batch_wait_s,
        **helper_settings(algorithm, delay),
    )
    agent_class = SimpleRNNRLAgent if memory else SimpleRLAgent
    return train_on_env(
        {"RL": settings}, CueMemoryEnv, dict(delay=delay), num_agents, num_games, seed,
        window=WINDOW, print_interval_s=print_interval_s, agent_factory=agent_class,
        stop_at_success_rate=stop_at_success,
    )  # fmt: skip


def success_rates(manager: Manager, window: int = WINDOW) -> tuple[float, float]:
    """Success rate of the last ``window`` games, and the best over any ``window`` games."""
    wins = np.array([r.success for r in manager.stats], dtype=float)
    if len(wins) < window:
        return float(wins.mean()), float(wins.mean())
    rolling = np.convolve(wins, np.ones(window) / window, mode="valid")
    return float(rolling[-1]), float(rolling.max())
