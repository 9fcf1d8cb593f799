"""Successor-feature Q-learning (Q = psi . w, psi learned by TD on phi) on CartPole.

The reward weights w are fitted by regressing the reward on phi; acting is epsilon-greedy on
Q with a target network, as in DQN.

    python examples/sr_q_example.py [--prioritized] [--reconstruction 1.0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from flare.algorithm_zoo.successor_representation import SuccessorRepresentationQ
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.manager import Manager
from flare.model_zoo.successor_models import SimpleModelSR

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
    """Rewards of 1 per step put Q = psi . w near 100; scaled by 1/100 it stays near 1."""
    return reward / 100.0


def train(
    num_games: int = 300,
    seed: int = 0,
    prioritized: bool = False,
    num_agents: int = NUM_AGENTS,
    lr: float = 1e-3,
    feature_dim: int = 16,
    reconstruction_cost_weight: float = 0.0,
    decay_steps: int = 8000,
    target_update_interval: int = 50,
    num_experiences: int = 8,
    sample_interval: int = 2,
    **run_kwargs,
) -> Manager:
    """Train on CartPole; ``run_kwargs`` go to ``cartpole_setup.run``."""
    torch.manual_seed(seed)
    model = SimpleModelSR(
        OBSERVATION_DIMS,
        NUM_ACTIONS,
        perception_net(),
        feature_dim,
        reconstruct=reconstruction_cost_weight > 0,
    )
    algorithm = SuccessorRepresentationQ(
        model,
        discount_factor=0.99,
        exploration=EpsilonGreedy(start=1.0, end=0.02, decay_steps=decay_steps),
        target_update_interval=target_update_interval,
        reconstruction_cost_weight=reconstruction_cost_weight,
        optim=(torch.optim.Adam, dict(lr=lr)),
    )
    settings = replay_settings(
        algorithm,
        num_experiences=num_experiences,  # x 8 agents per update
        sample_interval=sample_interval,
        prioritized=prioritized,
        batch_wait_s=1.0,  # every update holds every agent's samples
    )
    run_kwargs.setdefault("reward_shaping_f", shape_reward)
    return run(settings, num_agents, num_games, seed, **run_kwargs)


def _extra_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prioritized", action="store_true", help="prioritized replay")
    parser.add_argument(
        "--reconstruction", type=float, default=0.0, help="weight of phi's decoder cost"
    )


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], num_games=300, extra=_extra_flags)
    manager = train(
        args.num_games,
        args.seed,
        args.prioritized,
        reconstruction_cost_weight=args.reconstruction,
        log_dir=args.log_dir,
    )
    print(report(manager))
