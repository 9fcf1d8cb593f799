"""DQN (SimpleQ: double Q-learning, target network, epsilon-greedy) on CartPole with replay.

The DQN, SARSA, C51, QR-DQN and IQN examples share the model and the agents
(cartpole_setup); only ``choose_algorithm`` differs.

    python examples/dqn_example.py [--prioritized]
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.q_learning import SimpleQ
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.manager import Manager

from cartpole_setup import parse_args, replay_settings, report, train_value_based


def choose_algorithm(model, prioritized: bool = False) -> dict:
    algorithm = SimpleQ(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=8000),
        target_update_interval=50,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    return replay_settings(algorithm, prioritized=prioritized)


def train(num_games: int = 300, seed: int = 0, prioritized: bool = False, **kwargs) -> Manager:
    return train_value_based(lambda m: choose_algorithm(m, prioritized), num_games, seed, **kwargs)


if __name__ == "__main__":
    args = parse_args(
        __doc__.splitlines()[0],
        num_games=300,
        extra=lambda p: p.add_argument("--prioritized", action="store_true"),
    )
    manager = train(args.num_games, args.seed, args.prioritized, log_dir=args.log_dir)
    print(report(manager))
