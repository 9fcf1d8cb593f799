"""DDPG (deterministic actor, Q critic, soft target updates) on Pendulum with replay.

python examples/ddpg_example.py [--noise gaussian|ou]
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.ddpg import DDPG
from flare.common.noises import GaussianNoise, OrnsteinUhlenbeckNoise
from flare.framework.agent import ExpReplayHelper
from flare.framework.manager import Manager
from flare.model_zoo.continuous_models import SimpleModelDeterministic

from pendulum_setup import (
    ACTION_DIMS,
    ACTION_HIGH,
    ACTION_LOW,
    OBSERVATION_DIMS,
    make_parser,
    report,
    run,
)

NUM_AGENTS = 4
TARGET = -300.0  # mean return of 20 games; acting at random scores about -1200


def make_noise(kind: str, num_agents: int, seed: int) -> GaussianNoise | OrnsteinUhlenbeckNoise:
    """One noise row per agent (DDPG's predict batches hold every agent, in id order)."""
    size = (num_agents, ACTION_DIMS)
    if kind == "gaussian":
        return GaussianNoise(size, sigma=0.1, seed=seed)
    if kind == "ou":
        # dt=0.05 is Pendulum's time step: correlated over ~1 / theta = 1 s (20 steps),
        # with a stationary std of 0.2 / sqrt(2 theta) = 0.14
        return OrnsteinUhlenbeckNoise(size, theta=1.0, sigma=0.2, dt=0.05, seed=seed)
    raise ValueError(f"unknown noise {kind!r}; use 'gaussian' or 'ou'")


def train(
    num_games: int = 100,
    seed: int = 0,
    stop: bool = True,
    noise: str = "gaussian",
    num_agents: int = NUM_AGENTS,
    **run_kwargs,
) -> Manager:
    torch.manual_seed(seed)
    model = SimpleModelDeterministic(OBSERVATION_DIMS, ACTION_LOW, ACTION_HIGH, hidden=(64, 64))
    algorithm = DDPG(
        model,
        discount_factor=0.99,
        tau=0.01,
        actor_lr=1e-3,
        critic_lr=1e-3,
        noise=make_noise(noise, num_agents, seed),
    )
    settings = dict(
        algorithm=algorithm,
        agent_helper=ExpReplayHelper,
        buffer_capacity=20_000,  # per agent: every step of the run
        num_experiences=64,  # x 4 agents: 256 transitions per update
        sample_interval=1,
        warmup=200,
        batch_wait_s=1.0,  # every batch holds every agent: one noise row each, repeatable
    )
    return run(
        settings,
        num_agents,
        num_games,
        seed,
        stop_at_mean_return=TARGET if stop else None,
        **run_kwargs,
    )


if __name__ == "__main__":
    parser = make_parser(__doc__.splitlines()[0], num_games=100)
    parser.add_argument("--noise", choices=("gaussian", "ou"), default="gaussian")
    args = parser.parse_args()
    manager = train(args.num_games, args.seed, not args.no_stop, args.noise, log_dir=args.log_dir)
    print(report(manager))
