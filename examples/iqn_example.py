"""IQN (implicit quantile networks) on CartPole.

Shares the model and the agents with the DQN, SARSA, C51, QR-DQN and IQN examples
(cartpole_setup.train_value_based); only ``choose_algorithm`` differs.

    python examples/iqn_example.py
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.distributional_q import IQN
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.agent import ExpReplayHelper
from flare.framework.manager import Manager

from cartpole_setup import parse_args, report, train_value_based


def choose_algorithm(model) -> dict:
    algorithm = IQN(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=8000),
        target_update_interval=20,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    return dict(
        algorithm=algorithm,
        agent_helper=ExpReplayHelper,
        buffer_capacity=5000,
        num_experiences=8,  # x 8 agents: 64 transitions per update
        sample_interval=2,
        warmup=250,
    )


def train(num_games: int = 300, seed: int = 0, **kwargs) -> Manager:
    return train_value_based(choose_algorithm, num_games, seed, **kwargs)


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=300)
    manager = train(args.num_games, args.seed, log_dir=args.log_dir)
    print(report(manager))
