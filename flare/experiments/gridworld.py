"""The bundled Node.js grid world over gRPC: go to the square the instruction names.

The simulator is written in JavaScript (simulators/gridworld) and speaks FLARE's wire
contract; the agents see its top-down image and read its instruction ("go to the red
square", as token ids) with ``ImageInstructionModelAC``, learned by ``SimpleAC``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.optim as optim

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge import RemoteEnv
from flare.experiments import train_on_env
from flare.framework.agent import OnlineHelper
from flare.framework.env_spec import EnvSpec, Language
from flare.framework.manager import Manager
from flare.model_zoo.image_language_models import ImageInstructionModelAC

WINDOW = 100


def success_rate(manager: Manager, window: int = WINDOW) -> float:
    """Share of the last ``window`` games that reached the named square (return +1)."""
    returns = [record.return_ for record in manager.stats[-window:]]
    return float(np.mean([r > 0 for r in returns])) if returns else 0.0


def train(
    address: str,
    level: str = "1",
    num_agents: int = 16,
    num_games: int = 400,
    stop_at_success: float | None = 0.9,
    seed: int = 0,
    log_dir: str | None = None,
    model_dir: str | None = None,
    batch_wait_s: float = 0.01,
    agents_per_process: int = 1,
) -> Manager:
    """Train ``num_agents`` agents against the grid world at ``address`` on ``level``,
    stopping once the mean return of 100 games reaches ``stop_at_success`` (if given);
    ``agents_per_process`` agents share a process (with full batches: the same games)."""
    probe = RemoteEnv(address, level=level)
    spec = probe.spec()
    probe.close()
    ct_settings = gridworld_settings(spec, seed, num_agents, batch_wait_s)
    # returns are +1 (success), -1 (wrong square) or 0 (time-out), so a mean return of
    # s over the window means at least s of those games succeeded
    return train_on_env(
        ct_settings, RemoteEnv, dict(address=address, level=level), num_agents, num_games,
        seed, stop_at_success, log_dir=log_dir, print_interval_s=10.0, model_dir=model_dir,
        agents_per_process=agents_per_process,
    )  # fmt: skip


def gridworld_settings(
    spec: EnvSpec, seed: int, num_agents: int, batch_wait_s: float
) -> dict[str, dict]:
    """The CT of every grid-world run: ``ImageInstructionModelAC`` learned by SimpleAC
    (torch seeded with ``seed`` first)."""
    torch.manual_seed(seed)
    image, instruction = (s for s in spec.observations)
    if not isinstance(instruction.kind, Language):
        raise ValueError(f"the simulator's second observation is not language: {instruction}")
    model = ImageInstructionModelAC(
        image_shape=image.shape,
        instruction_length=instruction.shape[0],
        vocabulary_size=instruction.kind.vocabulary_size,
        num_actions=spec.action_dims()["action"],
    )
    # a little entropy keeps the policy exploring until it has found what the words mean
    alg = SimpleAC(
        model, discount_factor=0.95, entropy_weight=0.02, optim=(optim.Adam, dict(lr=1e-3))
    )
    return {
        "RL": dict(
            algorithm=alg,
            agent_helper=OnlineHelper,
            sample_interval=4,
            num_agents=num_agents,
            batch_wait_s=batch_wait_s,
        )
    }


def train_client_mode(
    level: str = "1",
    num_agents: int = 16,
    num_games: int = 400,
    stop_at_success: float | None = 0.9,
    seed: int = 0,
    run_dir: str | Path | None = None,
    batch_wait_s: float = 0.01,
) -> Manager:
    """``train``'s run with the grid world in client mode: it drives its own loop and
    plays through the learner's Act stream. The learner takes ``num_agents`` Act streams
    and ``num_agents * num_games`` games in all; one Node process (``client.js --streams
    num_agents``) plays them, stream ``i`` seeded ``1000 * seed + i`` as agent ``i`` is in
    ``train``. A grid-world server is started only to read the level's spec."""
    from flare.bridge.launch import gridworld_client_command, gridworld_command, simulator_process
    from flare.learner.learner import Learner, LearnerSettings
    from flare.learner.run_dir import RunDirectory

    with simulator_process(gridworld_command()) as address:
        probe = RemoteEnv(address, level=level)
        spec = probe.spec()
        probe.close()
    ct_settings = gridworld_settings(spec, seed, num_agents, batch_wait_s)
    manager = Manager(ct_settings, dict(print_interval_s=10.0, window=WINDOW))
    agents = [SimpleRLAgent(2**62) for _ in range(num_agents)]
    manager.add_external_agents(agents, games=num_agents * num_games)
    with tempfile.TemporaryDirectory() as tmp:
        directory = RunDirectory.create(Path(run_dir or Path(tmp) / "run"), None, sys.argv)
        settings = LearnerSettings(progress="plain", tensorboard=False)
        learner = Learner(manager, directory, settings, env_spec=spec)
        thread = threading.Thread(
            target=learner.run, kwargs={"stop_at_mean_return": stop_at_success}
        )
        thread.start()
        client: subprocess.Popen | None = None
        try:
            deadline = time.monotonic() + 60
            while learner.address is None and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if learner.address is None:
                raise RuntimeError("the learner did not start within 60 s")
            client = subprocess.Popen(
                gridworld_client_command(
                    learner.address, level=level, seed=1000 * seed, streams=num_agents
                )
            )
            while thread.is_alive() and client.poll() is None:
                thread.join(0.5)
            if client.poll() not in (None, 0):
                raise RuntimeError(f"the grid world's client exited with {client.returncode}")
        finally:
            if thread.is_alive():  # (the client failed: the run cannot go on)
                manager.request_stop("the grid world's client ended")
            thread.join()
            if client is not None:
                try:
                    client.wait(30)
                except subprocess.TimeoutExpired:
                    client.terminate()
                    client.wait(10)
    return manager
