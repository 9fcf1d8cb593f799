"""Same seeds, same run: with every agent in each batch, results do not depend on timing."""

import torch
import torch.nn as nn
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.framework.agent import OnlineHelper
from flare.framework.env import GymEnv
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC


def _run(seed: int) -> dict[int, list[float]]:
    torch.manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(4, 32), nn.ReLU())
    alg = SimpleAC(
        SimpleModelAC(dims=(4,), num_actions=2, perception_net=mlp),
        optim=(optim.RMSprop, dict(lr=1e-3)),
    )
    settings = dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=4, batch_wait_s=5.0)
    manager = Manager({"RL": settings}, dict(print_interval_s=0))
    for i in range(4):
        agent = SimpleRLAgent(15)
        agent.set_env(GymEnv, game_name="CartPole-v0", seed=seed * 10 + i)
        manager.add_agent(agent)
    manager.start()
    per_agent: dict[int, list[float]] = {}
    for record in manager.stats:
        per_agent.setdefault(record.agent, []).append(record.return_)
    return per_agent


def test_same_seed_same_games_and_parameters():
    first, second = _run(3), _run(3)
    assert first == second
    assert _run(4) != first
