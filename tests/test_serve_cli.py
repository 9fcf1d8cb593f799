"""`flare serve`: prints its address, serves, and shuts down cleanly on SIGTERM."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.framework.agent import OnlineHelper
from flare.framework.manager import Manager
from flare.model_zoo.simple_models import SimpleModelAC
from tests.conftest import flare_serve

ROOT = Path(__file__).resolve().parents[1]


def _remote_manager(address: str, num_agents: int, num_games: int, **config) -> Manager:
    """A small actor-critic whose agents play over gRPC against ``address``."""
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
    alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
    manager = Manager(
        {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=2)},
        dict(print_interval_s=0),
    )
    for _ in range(num_agents):
        agent = SimpleRLAgent(num_games)
        agent.set_env(RemoteEnv, address=address, **config)
        manager.add_agent(agent)
    return manager


def test_serve_gym_then_sigterm():
    with flare_serve("gym", "--game", "CartPole-v0") as (proc, address):
        env = RemoteEnv(address, game_name="CartPole-v0", seed=1)
        assert env.observation_dims() == {"sensor": (4,)}
        env.reset()
        _, rewards, _ = env.step({"action": np.array([0])})
        assert rewards["reward"].tolist() == [1.0]
        env.close()
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        output, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, output
        assert time.monotonic() - start < 10
        assert "stopped" in output


def test_serve_gym_images():
    with flare_serve(
        # gymnasium's MODULE:ID form imports flare.testing, which registers the env
        "gym",
        "--game",
        "flare.testing:flare/PatternImage-v0",
        "--image",
        "--height",
        "42",
        "--width",
        "42",
        "--gray",
        "--contexts",
        "2",
    ) as (_, address):
        env = RemoteEnv(address)
        assert env.observation_dims() == {"sensor": (2, 42, 42)}
        assert env.reset()["sensor"].shape == (2, 42, 42)
        env.close()


def test_serve_bad_game_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "flare", "serve", "gym", "--game", "Nope-v9"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot build 'Nope-v9'" in result.stderr


@pytest.mark.slow
def test_agents_train_against_a_served_factory(no_stray_processes):
    with flare_serve("tests.scripts.sim_factory:make_env") as (_, address):
        manager = _remote_manager(address, num_agents=4, num_games=3, max_steps=5)
        manager.start()
    assert len(manager.stats) == 12
    assert all(r.length == 5 and r.return_ == 5.0 for r in manager.stats)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_training_survives_a_simulator_restart(no_stray_processes):
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "flare",
        "serve",
        "tests.scripts.sim_factory:make_env",
        "--address",
        f"127.0.0.1:{port}",
    ]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert "listening" in first.stdout.readline()
    manager = _remote_manager(
        f"127.0.0.1:{port}", num_agents=3, num_games=60, max_steps=50, goal=1000
    )

    def kill_and_restart():
        # mid-run, whatever the machine's speed: after 20 of the 180 games
        deadline = time.monotonic() + 60
        while len(manager.stats) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill()
        first.wait()
        time.sleep(1.0)
        second = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        restarted.append(second)

    import threading

    restarted = []
    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    try:
        manager.start()
    finally:
        killer.join()
        for proc in restarted:
            proc.terminate()
            proc.wait(10)
    assert len(manager.stats) == 180  # every game was played to its end
    assert manager.interrupted_games >= 1  # the kill cut some episodes short
    assert all(r.length == 50 for r in manager.stats)  # none stored as a false game over


@pytest.mark.slow
def test_serve_with_env_processes_then_sigterm():
    with flare_serve("gym", "--game", "CartPole-v0", "--env-processes", "2") as (proc, address):
        workers = psutil.Process(proc.pid).children()
        assert len(workers) >= 2  # the env workers (spawn may add a resource tracker)
        envs = [RemoteEnv(address, game_name="CartPole-v0", seed=1) for _ in range(2)]
        first = [env.reset()["sensor"] for env in envs]
        np.testing.assert_array_equal(first[0], first[1])  # same seed, different workers
        for env in envs:
            env.step({"action": np.array([1])})
            env.close()
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, output
        assert "stopped" in output
        _, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"env workers left behind: {alive}"
