"""SARSA (SimpleSARSA: on-policy TD on the action taken next) on CartPole.

Shares the model and the agents with the DQN, SARSA, C51, QR-DQN and IQN examples
(cartpole_setup.train_value_based); only ``choose_algorithm`` differs.

    python examples/sarsa_example.py
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.q_learning import SimpleSARSA
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.manager import Manager

from cartpole_setup import replay_settings, train_value_based, value_based_main


def choose_algorithm(model) -> dict:
    algorithm = SimpleSARSA(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=8000),
        target_update_interval=50,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    return replay_settings(algorithm)


def train(num_games: int = 300, seed: int = 0, **kwargs) -> Manager:
    return train_value_based(choose_algorithm, num_games, seed, **kwargs)


if __name__ == "__main__":
    value_based_main(__doc__, choose_algorithm)
