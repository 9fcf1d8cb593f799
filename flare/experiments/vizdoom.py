"""ViZDoom from pixels over gRPC: actor-critic agents learn a scenario that
``flare serve vizdoom`` serves (``serve_vizdoom``), seeing only its first-person frames.

Each scenario has its settings here (``SCENARIOS``): the frames the agents see, the
reward scale and the run's budget. The model is ``SimpleModelAC`` over a small CNN
(``vizdoom_cnn``) sized from the simulator's spec; frames travel as uint8 and the CT
scales them to [0, 1] once per batch. See docs/3d-simulators.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.bridge.launch import flare_command
from flare.common.curves import moving_average
from flare.experiments import train_on_env
from flare.framework.agent import OnlineHelper
from flare.framework.common_functions import Flatten
from flare.framework.manager import Manager
from flare.learner.build import Scaled
from flare.model_zoo.simple_models import SimpleModelAC

WINDOW = 100


@dataclass(frozen=True)
class ScenarioRun:
    """How a scenario is served and learned.

    Attributes:
        options: ``flare serve vizdoom`` options (without dashes), e.g. ``gray=True``.
        reward_scale: rewards are multiplied by it before learning (ViZDoom's rewards
            run into the hundreds).
        lr: the RMSprop learning rate.
        rmsprop_eps: RMSprop's epsilon (1e-5, as in A2C's reference code, rather than
            torch's 1e-8, which lets a step blow up once gradients have been small).
        entropy_weight: the entropy bonus (without one, basic's policy collapsed to
            moving only: the time-out's -300 avoids the -5 of each missed shot).
        num_games: games per agent.
        target: the mean return over ``WINDOW`` games the run stops at (raw rewards).
    """

    options: dict[str, Any] = field(default_factory=dict)
    reward_scale: float = 0.01
    lr: float = 3e-4
    rmsprop_eps: float = 1e-5
    entropy_weight: float = 0.01
    num_games: int = 200
    target: float | None = None


SCENARIOS: dict[str, ScenarioRun] = {
    # the monster stands somewhere across the room: one colour frame shows where (it is
    # brown on grey; in gray frames it is dim)
    "basic": ScenarioRun(
        options=dict(height=60, width=80, frame_skip=4),
        reward_scale=0.01,
        num_games=600,
        target=75.0,
    ),
    # acid floor, medkits to find: survive (the time-out) by walking over them; two
    # frames show where the view turns
    "health_gathering": ScenarioRun(
        options=dict(gray=False, height=60, width=80, frame_skip=4, contexts=2),
        reward_scale=0.01,
        num_games=150,
        target=None,
    ),
}


def serve_vizdoom(scenario: str, **options: Any) -> list[str]:
    """The command of ``flare serve vizdoom --scenario SCENARIO [options]`` on a free
    loopback port (``gray=True`` becomes ``--gray``, ``frame_skip=4`` ``--frame-skip 4``)."""
    argv = [*flare_command(), "serve", "vizdoom", "--scenario", scenario]
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            argv.append(flag)
        elif value is not False:
            argv += [flag, str(value)]
    return [*argv, "--address", "127.0.0.1:0"]


def vizdoom_cnn(channels: int) -> nn.Sequential:
    """Two strided convolutions and 256 units: enough to find a monster or a medkit in
    a 60x80 frame, and cheap on a CPU (the linear layer's width follows the frame)."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, kernel_size=8, stride=4),
        nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=4, stride=2),
        nn.ReLU(),
        Flatten(),
        nn.LazyLinear(256),
        nn.ReLU(),
    )


def build_algorithm(
    address: str, lr: float = 3e-4, entropy_weight: float = 0.01, rmsprop_eps: float = 1e-5
) -> SimpleAC:
    """SimpleModelAC over ``vizdoom_cnn``, sized from the simulator's spec; A2C (SimpleAC)
    with RMSprop and gradients clipped at 5."""
    probe = RemoteEnv(address)
    spec = probe.spec()
    probe.close()
    screen = next(s for s in spec.observations if s.name == "screen")
    model = SimpleModelAC(
        dims=screen.shape,
        num_actions=spec.action_dims()["action"],
        perception_net=vizdoom_cnn(screen.shape[0]),
        sensor_name="screen",
    )
    return SimpleAC(
        model=model,
        optim=(torch.optim.RMSprop, dict(lr=lr, eps=rmsprop_eps)),
        grad_clip=5.0,
        entropy_weight=entropy_weight,
    )


def train(
    address: str,
    scenario: str = "basic",
    num_agents: int = 16,
    agents_per_process: int = 8,
    num_games: int | None = None,
    seed: int = 0,
    stop_at_mean_return: float | None = None,
    **run_kwargs: Any,
) -> Manager:
    """Train ``num_agents`` agents against the ViZDoom server at ``address``, with the
    scenario's ``SCENARIOS`` settings; ``run_kwargs`` go to ``train_on_env``
    (``stop_after_s``, ``log_dir``, ``print_interval_s``, ``torch_threads``, ...)."""
    run = SCENARIOS[scenario]
    torch.manual_seed(seed)
    settings = dict(
        algorithm=build_algorithm(address, run.lr, run.entropy_weight, run.rmsprop_eps),
        agent_helper=OnlineHelper,
        sample_interval=5,
        num_agents=num_agents,
        batch_wait_s=0.01,
    )
    return train_on_env(
        {"RL": settings},
        RemoteEnv,
        dict(address=address),
        num_agents,
        run.num_games if num_games is None else num_games,
        seed,
        stop_at_mean_return=stop_at_mean_return,
        window=WINDOW,
        reward_shaping_f=Scaled(run.reward_scale),
        agents_per_process=agents_per_process,
        **run_kwargs,
    )


def summary(manager: Manager) -> str:
    """Games, frames and wall time; the best and the last mean return over WINDOW games."""
    stats = manager.stats
    if not stats:
        return "no game finished"
    returns = np.array([r.return_ for r in stats])
    steps = int(sum(r.length for r in stats))
    if len(returns) >= WINDOW:
        best = f"{moving_average(returns, WINDOW)[WINDOW - 1 :].max():.1f}"
    else:
        best = f"{returns.mean():.1f} (fewer games)"
    last = f"the last {min(WINDOW, len(stats))} {returns[-WINDOW:].mean():.1f}"
    return (
        f"{len(stats)} games, {steps:,} steps, {stats[-1].wall_s:.0f} s; best mean return "
        f"of {WINDOW} games {best}, {last}"
    )
