"""GaussianAC (on-policy actor-critic, Gaussian policy, GAE) on Pendulum with OnlineHelper.

python examples/gaussian_ac_example.py
"""

from __future__ import annotations

import torch

from flare.algorithm_zoo.gaussian_ac import GaussianAC
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.continuous_models import SimpleModelGaussian

from pendulum_setup import ACTION_HIGH, ACTION_LOW, OBSERVATION_DIMS, make_parser, report, run

NUM_AGENTS = 8
TARGET = -400.0  # mean return of 20 games; acting at random scores about -1200


def train(
    num_games: int = 100,
    seed: int = 0,
    stop: bool = True,
    num_agents: int = NUM_AGENTS,
    sample_interval: int = 64,
    **run_kwargs,
) -> Manager:
    torch.manual_seed(seed)
    model = SimpleModelGaussian(
        OBSERVATION_DIMS, ACTION_LOW, ACTION_HIGH, hidden=(64, 64), init_log_std=-0.5
    )
    algorithm = GaussianAC(
        model,
        discount_factor=0.9,  # a short horizon, as rl-baselines3-zoo's PPO on Pendulum
        gae_lambda=0.95,
        num_epochs=10,
        minibatch_size=64,
        optim=(torch.optim.Adam, dict(lr=1e-3)),
    )
    settings = dict(
        algorithm=algorithm,
        agent_helper=OnlineHelper,
        sample_interval=sample_interval,  # 8 agents x 64 steps: 512 transitions per update
        batch_wait_s=1.0,  # one update holds every agent's runs: repeatable
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
    args = make_parser(__doc__.splitlines()[0], num_games=100).parse_args()
    manager = train(args.num_games, args.seed, not args.no_stop, log_dir=args.log_dir)
    print(report(manager))
