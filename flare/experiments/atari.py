"""The seed's Atari actor-critic (examples/img_ac_example.py) as a function: benchmarks and
long runs train exactly what the example trains, with the knobs the example leaves at
their defaults (agents per process, a time budget, the env class for a remote game).

Breakout-v0 from 4 stacked 84x84 gray frames, the standard Atari preprocessing, rewards
through ``np.sign``, 16 agents, the seed's CNN, SimpleAC with RMSprop (lr 1e-4) and
gradients clipped at 5, learning every 5 steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.env_zoo.gym_env import GymEnvImage
from flare.experiments import train_on_env
from flare.framework.agent import OnlineHelper
from flare.framework.common_functions import Flatten
from flare.framework.env import Env
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

GAME = "Breakout-v0"
NUM_AGENTS = 16
FRAMES = (4, 84, 84)  # contexts, height, width
FRAME_SKIP = 4  # emulator frames per agent step (the standard preprocessing)
SAMPLE_INTERVAL = 5


def seed_cnn(channels: int = FRAMES[0]) -> nn.Sequential:
    """The seed's perception net: three convolutions, then 512 units."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1),
        nn.ReLU(),
        Flatten(),
        nn.Linear(7 * 7 * 64, 512),
        nn.ReLU(),
    )


def seed_algorithm(num_actions: int, gpu_id: int = -1) -> SimpleAC:
    return SimpleAC(
        model=SimpleModelAC(dims=FRAMES, num_actions=num_actions, perception_net=seed_cnn()),
        optim=(torch.optim.RMSprop, dict(lr=1e-4)),
        grad_clip=5.0,
        gpu_id=gpu_id,
    )


def image_env_kwargs(game: str) -> dict[str, Any]:
    """GymEnvImage's arguments for ``game`` as the seed plays it."""
    contexts, height, width = FRAMES
    return dict(game_name=game, contexts=contexts, height=height, width=width, gray=True)


def train_atari(
    game: str = GAME,
    num_games: int = 8000,
    seed: int = 0,
    gpu_id: int = -1,
    num_agents: int = NUM_AGENTS,
    agents_per_process: int = 1,
    env_class: Callable[..., Env] = GymEnvImage,
    env_kwargs: Mapping[str, Any] | None = None,
    num_actions: int | None = None,
    learn_beside_acting: bool = False,
    batch_wait_s: float = 0.01,
    **run_kwargs: Any,
) -> Manager:
    """The seed's run on ``game``; ``env_kwargs`` replace GymEnvImage's (e.g. a RemoteEnv's
    address and config), ``run_kwargs`` go to ``train_on_env`` (``stop_after_s``,
    ``log_dir``, ``print_interval_s``, ``torch_threads``, ...). ``learn_beside_acting``
    and ``batch_wait_s`` are the CT's (``CTSettings``)."""
    if num_actions is None:
        probe = GymEnvImage(**image_env_kwargs(game))
        num_actions = probe.action_dims()["action"]
        probe.close()
    torch.manual_seed(seed)
    settings = dict(
        algorithm=seed_algorithm(num_actions, gpu_id),
        agent_helper=OnlineHelper,
        sample_interval=SAMPLE_INTERVAL,
        num_agents=num_agents,
        learn_beside_acting=learn_beside_acting,
        batch_wait_s=batch_wait_s,
    )
    return train_on_env(
        {"RL": settings},
        env_class,
        image_env_kwargs(game) if env_kwargs is None else dict(env_kwargs),
        num_agents,
        num_games,
        seed,
        reward_shaping_f=np.sign,
        agents_per_process=agents_per_process,
        **run_kwargs,
    )
