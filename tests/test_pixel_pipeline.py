"""The seed's Atari pipeline, smoke-run in-process and over gRPC: frames are uint8 from the
game through the agents, the pipes (and the wire) to the CT, and floats in [0, 1] in the
model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.bridge.launch import flare_command, simulator_process
from flare.env_zoo.gym_env import GymEnvImage
from flare.experiments.atari import seed_cnn
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC

pytestmark = pytest.mark.slow

STEPS = 120  # per game: 2 games of 2 agents, ~500 agent steps (2,000 frames) in all
GAME = "Breakout"


class Seen(nn.Module):
    """The first layer of the CNN: records what the model is given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[torch.dtype, tuple[int, ...], float, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append((x.dtype, tuple(x.shape), float(x.min()), float(x.max())))
        return x


def _run(env_class, **env_kwargs) -> tuple[Manager, Seen, list[tuple[np.dtype, tuple]]]:
    torch.manual_seed(0)
    seen = Seen()
    cnn = nn.Sequential(seen, *seed_cnn())  # (the seed's CNN behind the spy)
    alg = SimpleAC(
        model=SimpleModelAC(dims=(4, 84, 84), num_actions=4, perception_net=cnn),
        optim=(torch.optim.RMSprop, dict(lr=1e-4)),
        grad_clip=5.0,
    )
    seen.batches.clear()  # (the model's own dummy pass, sizing its heads)
    ct_settings = {
        "RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=5, num_agents=2)
    }
    manager = Manager(ct_settings, dict(print_interval_s=0), agents_per_process=2)
    arrived: list[tuple[np.dtype, tuple]] = []
    ct = manager.cts["RL"]
    to_tensors = ct._to_tensors

    def spy(arrays, specs, field):  # what crossed the pipes into the CT
        if "sensor" in arrays:
            sensor = np.asarray(arrays["sensor"])
            arrived.append((sensor.dtype, sensor.shape))
        return to_tensors(arrays, specs, field)

    ct._to_tensors = spy
    for i in range(2):
        agent = SimpleRLAgent(2, reward_shaping_f=np.sign)
        agent.set_env(env_class, seed=i, **env_kwargs)
        manager.add_agent(agent)
    manager.start()
    return manager, seen, arrived


def _check(manager: Manager, seen: Seen, arrived: list) -> None:
    assert manager.games_played == 4 and manager.env_steps > 100
    assert all(r.length <= STEPS for r in manager.stats)
    assert arrived and all(dtype == np.uint8 for dtype, _ in arrived)  # bytes in the pipes
    assert {shape[1:] for _, shape in arrived} == {(4, 84, 84)}
    learn_batches = [b for b in seen.batches if b[1][0] > 2]
    assert seen.batches and learn_batches  # predictions (<= 2 rows) and updates (10 rows)
    for dtype, shape, low, high in seen.batches:
        assert dtype == torch.float32 and shape[1:] == (4, 84, 84)
        assert 0.0 <= low <= high <= 1.0
    assert max(high for *_, high in seen.batches) > 0.1  # (the screen, not only padding)


def test_the_seed_pixel_pipeline_in_process(no_stray_processes):
    manager, seen, arrived = _run(
        GymEnvImage, game_name=GAME, contexts=4, height=84, width=84, gray=True,
        max_episode_steps=STEPS,
    )  # fmt: skip
    _check(manager, seen, arrived)


def test_the_seed_pixel_pipeline_over_grpc(no_stray_processes):
    command = [*flare_command(), "serve", "gym", "--game", GAME, "--image", "--gray",
               "--address", "127.0.0.1:0"]  # fmt: skip
    with simulator_process(command) as address:
        probe = RemoteEnv(address, game_name=GAME, max_episode_steps=STEPS)
        try:
            sensor = probe.spec().observations[0]
            assert sensor.dtype == np.uint8 and sensor.shape == (4, 84, 84)  # on the wire
            frames = probe.reset()["sensor"]
            assert frames.dtype == np.uint8 and frames.shape == (4, 84, 84)
        finally:
            probe.close()
        manager, seen, arrived = _run(
            RemoteEnv, address=address, game_name=GAME, max_episode_steps=STEPS
        )
    _check(manager, seen, arrived)


def test_a_time_budget_stops_the_run(no_stray_processes):
    """``stop_after_s``: a run of effectively endless games ends at its budget."""
    import time

    from flare.env_zoo.gym_env import GymEnv
    from flare.experiments import train_on_env

    torch.manual_seed(0)
    model = SimpleModelAC(dims=[4], num_actions=2, perception_net=nn.Linear(4, 8))
    settings = dict(algorithm=SimpleAC(model), agent_helper=OnlineHelper, sample_interval=2)
    start = time.perf_counter()
    manager = train_on_env({"RL": settings}, GymEnv, dict(game_name="CartPole-v0"), 2, 10**6,
                           stop_after_s=3.0)  # fmt: skip
    assert time.perf_counter() - start < 30
    assert manager.stop_reason == "the time budget" and 0 < manager.games_played < 2 * 10**6
