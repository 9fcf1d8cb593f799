"""SimpleAC learns CartPole: the mean return of 100 games reaches 195 within a game budget."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.common.curves import moving_average
from flare.framework.agent import OnlineHelper
from flare.framework.env import GymEnv
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

NUM_AGENTS = 8
GAMES_PER_AGENT = 300  # budget: 2400 games; it typically needs 500-600
TARGET = 195.0


def _shape_reward(x):
    return x / 100.0


@pytest.mark.slow
def test_simple_ac_solves_cartpole_within_budget(no_stray_processes):
    torch.manual_seed(1)
    mlp = nn.Sequential(
        nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU()
    )
    alg = SimpleAC(
        SimpleModelAC(dims=(4,), num_actions=2, perception_net=mlp),
        optim=(optim.RMSprop, dict(lr=5e-4)),
    )
    manager = Manager(
        # a long batch wait: every batch holds all agents, so the run does not depend on
        # the machine's load (the CDP serves agents in id order)
        {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=4, batch_wait_s=5.0)},
        dict(print_interval_s=0),
    )
    for i in range(NUM_AGENTS):
        agent = SimpleRLAgent(GAMES_PER_AGENT, reward_shaping_f=_shape_reward)
        agent.set_env(GymEnv, game_name="CartPole-v0", seed=100 + i)
        manager.add_agent(agent)
    manager.start(stop_at_mean_return=TARGET)

    returns = np.array([r.return_ for r in manager.stats])
    assert manager.reached_target, f"best mean: {moving_average(returns, 100)[99:].max():.1f}"
    assert len(returns) <= NUM_AGENTS * GAMES_PER_AGENT
    assert moving_average(returns, 100)[99:].max() >= TARGET
