"""Two computation tasks in one agent: actor-critic on Catch plus UNREAL's reward prediction.

Catch (``flare.testing.sparse_reward_envs.CatchEnv``, 10 x 5): one reward per episode,
+1 if the paddle catches the falling ball, -1 if not. Each agent learns two CTs:

- ``RL``: ``SimpleAC`` on every step (``OnlineHelper``), the agent acts with it;
- ``reward_prediction``: ``RewardPrediction`` on the rewarding steps only, sampled half
  positive and half negative (``RewardReplayHelper``), never asked to act.

Both models hold the same perception net (one ``nn.Module`` object), so the auxiliary
task shapes the features the policy and the value read. Each CT has its own optimizer,
helper and schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.agent_zoo.auxiliary_agents import RewardPredictionAgent
from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.reward_prediction import RewardPrediction
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.experiments import train_on_env
from flare.framework.agent import Agent, OnlineHelper
from flare.framework.manager import Manager
from flare.framework.reports import in_play_order
from flare.framework.reward_replay import RewardReplayHelper
from flare.model_zoo.auxiliary_models import RewardPredictionModel
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing.sparse_reward_envs import CatchEnv

ROWS, COLUMNS = 10, 5
NUM_ACTIONS = 3
STEPS_PER_GAME = ROWS  # ROWS - 1 steps, plus the final observation: stores per game
WINDOW = 100
TARGET = 0.8  # mean return of 100 games: 90% of the balls caught


def build_ct_settings(aux: bool = True, batch_wait_s: float = 1.0) -> dict[str, dict[str, Any]]:
    """The CTs: ``RL`` and, with ``aux``, ``reward_prediction`` sharing its perception net.

    The caller seeds torch first. ``batch_wait_s=1`` makes every batch hold every agent
    (agents play in step: same-length games, same schedules), so a seeded run is the same
    on any machine."""
    dims = (ROWS * COLUMNS,)
    perception = nn.Sequential(nn.Linear(dims[0], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
    rl_model = SimpleModelAC(dims, NUM_ACTIONS, perception)
    settings: dict[str, dict[str, Any]] = {
        "RL": dict(
            algorithm=SimpleAC(
                rl_model,
                discount_factor=0.95,
                entropy_weight=0.01,
                optim=(torch.optim.Adam, dict(lr=1e-3)),
            ),
            agent_helper=OnlineHelper,
            sample_interval=STEPS_PER_GAME,  # learn from each whole game
            batch_wait_s=batch_wait_s,
        )
    }
    if aux:
        aux_model = RewardPredictionModel(dims, NUM_ACTIONS, perception_net=rl_model.perception_net)
        settings["reward_prediction"] = dict(
            algorithm=RewardPrediction(aux_model, optim=(torch.optim.Adam, dict(lr=1e-3))),
            agent_helper=RewardReplayHelper,
            buffer_capacity=50,  # rewarding steps kept per sign, per agent
            num_experiences=8,  # per agent: 4 positive + 4 negative
            sample_interval=STEPS_PER_GAME,  # once per game, after the RL task's learn
            warmup=2,
            batch_wait_s=batch_wait_s,
        )
    return settings


def train(
    num_games: int = 150,
    seed: int = 0,
    num_agents: int = 8,
    aux: bool = True,
    stop_at_mean_return: float | None = None,
    batch_wait_s: float = 1.0,
    log_dir: str | None = None,
    print_interval_s: float = 10.0,
) -> Manager:
    """Train ``num_agents`` agents for ``num_games`` games each (or until the mean return of
    100 games reaches ``stop_at_mean_return``); returns the Manager (``stats``, ``cts``).
    Without ``aux``, the RL task alone (``SimpleRLAgent``)."""
    torch.manual_seed(seed)

    def agent(games: int) -> Agent:
        return RewardPredictionAgent(games) if aux else SimpleRLAgent(games)

    return train_on_env(
        build_ct_settings(aux, batch_wait_s), CatchEnv, dict(rows=ROWS, columns=COLUMNS),
        num_agents, num_games, seed, stop_at_mean_return, WINDOW, log_dir=log_dir,
        print_interval_s=print_interval_s, agent_factory=agent,
    )  # fmt: skip


def cost_series(manager: Manager, key: str) -> np.ndarray:
    """Per game (in play order), the mean of one CT's cost, e.g. ``"RL/cost"`` or
    ``"reward_prediction/cost"``; games without a learn of that CT are skipped."""
    values = [r.costs.get(key) for r in in_play_order(manager.stats)]
    return np.array([v for v in values if v is not None])


def games_to_mean_return(manager: Manager, target: float, window: int = WINDOW) -> int | None:
    """The number of games (in play order) after which the mean return of the last
    ``window`` first reached ``target`` (None if it never did)."""
    returns = np.array([r.return_ for r in in_play_order(manager.stats)])
    if len(returns) < window:
        return None
    means = np.convolve(returns, np.ones(window) / window, mode="valid")
    reached = np.flatnonzero(means >= target)
    return int(reached[0]) + window if len(reached) else None


def report(
    manager: Manager, keys: Sequence[str] = ("RL/value_cost", "RL/cost", "reward_prediction/cost")
) -> str:
    """Games, the game at which the target was reached, each cost's first vs last 100."""
    lines = [
        f"{len(manager.stats)} games; mean return of {WINDOW} reached {TARGET} after "
        f"{games_to_mean_return(manager, TARGET)} games; last {WINDOW}: "
        f"{np.mean([r.return_ for r in in_play_order(manager.stats)[-WINDOW:]]):.2f}"
    ]
    for key in keys:
        series = cost_series(manager, key)
        if len(series):
            lines.append(
                f"{key}: first {WINDOW} games {series[:WINDOW].mean():.4f}, "
                f"last {WINDOW} {series[-WINDOW:].mean():.4f}"
            )
    return "\n".join(lines)
