"""C51 (categorical distributional Q-learning over 51 atoms) on CartPole.

Shares the model and the agents with the DQN, SARSA, C51, QR-DQN and IQN examples
(cartpole_setup.train_value_based); only ``choose_algorithm`` differs.

    python examples/c51_example.py
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.distributional_q import C51
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.manager import Manager

from cartpole_setup import replay_settings, train_value_based, value_based_main


def choose_algorithm(model) -> dict:
    algorithm = C51(
        model,
        v_min=0.0,
        v_max=10.0,  # a return of 0.1 a step stays below 0.1 / (1 - 0.99)
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=8000),
        target_update_interval=20,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    return replay_settings(algorithm, sample_interval=1)


def train(num_games: int = 300, seed: int = 0, **kwargs) -> Manager:
    return train_value_based(choose_algorithm, num_games, seed, **kwargs)


if __name__ == "__main__":
    value_based_main(__doc__, choose_algorithm)
