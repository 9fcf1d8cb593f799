"""PPO (clipped objective, GAE, minibatch epochs) on CartPole with OnlineHelper.

python examples/ppo_example.py
"""

from __future__ import annotations

import numpy as np
import torch

from flare.algorithm_zoo.ppo import PPO
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

from cartpole_setup import NUM_ACTIONS, OBSERVATION_DIMS, parse_args, perception_net, report, run


def scale_reward(reward: np.ndarray) -> np.ndarray:
    # the value head shares the body with the policy: small returns keep its cost from
    # swamping the policy's gradient
    return reward / 10.0


def train(
    num_games: int = 200,
    seed: int = 0,
    num_agents: int = 8,
    sample_interval: int = 32,
    num_epochs: int = 10,
    minibatch_size: int = 128,
    lr: float = 2.5e-3,
    **run_kwargs,
) -> Manager:
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
    run_kwargs.setdefault("reward_shaping_f", scale_reward)
    return run(settings, num_agents, num_games, seed, **run_kwargs)  # 4 agents per process


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=200)
    manager = train(args.num_games, args.seed, log_dir=args.log_dir)
    print(report(manager))
