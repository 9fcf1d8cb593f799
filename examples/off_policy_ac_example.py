"""Off-policy actor-critic (truncated importance weights, replay) on CartPole.

The behaviour policy's log-probability of each action is stored with the step, so a
replayed sample is reweighted by min(c, pi/mu) however old it is.

    python examples/off_policy_ac_example.py [--prioritized]
"""

from __future__ import annotations

import numpy as np
import torch

from flare.algorithm_zoo.off_policy_ac import OffPolicyAC
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

from cartpole_setup import (
    NUM_ACTIONS,
    OBSERVATION_DIMS,
    parse_args,
    perception_net,
    replay_settings,
    report,
    run,
)

NUM_AGENTS = 8


def shape_reward(reward: np.ndarray) -> np.ndarray:
    """Rewards of 1 per step put V near 100; scaled by 1/100 it stays near 1."""
    return reward / 100.0


def train(
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
    **run_kwargs,
) -> Manager:
    """Train on CartPole; ``run_kwargs`` go to ``cartpole_setup.run``."""
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
    run_kwargs.setdefault("reward_shaping_f", shape_reward)
    return run(settings, num_agents, num_games, seed, **run_kwargs)


if __name__ == "__main__":
    args = parse_args(
        __doc__.splitlines()[0],
        num_games=300,
        extra=lambda p: p.add_argument("--prioritized", action="store_true"),
    )
    manager = train(args.num_games, args.seed, args.prioritized, log_dir=args.log_dir)
    print(report(manager))
