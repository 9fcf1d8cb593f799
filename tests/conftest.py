"""Shared fakes: an algorithm whose outputs are known functions of its inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import torch
import torch.nn as nn

from flare.framework.algorithm import Algorithm, Model

# Small models, and other processes (agents, servers) need the two cores: extra intra-op
# threads only spin (the Manager does the same for its runs).
torch.set_num_threads(1)


class EchoModel(Model):
    """``sensor`` of shape [2]; one trainable scalar so optimizers have something to step."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def get_input_specs(self):
        return [("sensor", dict(shape=[2]))]

    def get_action_specs(self):
        return [("action", dict(shape=[1], dtype="int64"))]


class EchoAlgorithm(Algorithm):
    """action = round(sum(sensor)); cost = reward + sensor[0] (so routing can be checked)."""

    def predict(self, inputs, states):
        return {"action": inputs["sensor"].sum(-1, keepdim=True).round().long()}, states

    def learn(
        self, inputs, next_inputs, states, next_states, next_alive, actions, next_actions, rewards
    ):
        cost = rewards["reward"] + inputs["sensor"][:, :1] + 0 * self.model.scale
        return {"cost": cost}


class FailingAlgorithm(EchoAlgorithm):
    def learn(self, *args, **kwargs):
        raise ValueError("simulated bug in learn()")


@pytest.fixture
def echo_alg() -> EchoAlgorithm:
    return EchoAlgorithm(EchoModel())


def _is_multiprocessing_service(process: psutil.Process) -> bool:
    """The forkserver and resource tracker live as long as the test session, by design."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing.forkserver" in command or "multiprocessing.resource_tracker" in command


@pytest.fixture
def no_stray_processes():
    """Fails the test if it leaves child processes behind."""
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    yield
    leftover = [
        p
        for p in me.children(recursive=True)
        if p.pid not in before and not _is_multiprocessing_service(p)
    ]
    gone, alive = psutil.wait_procs(leftover, timeout=3)
    assert not alive, f"stray processes left behind: {[p.pid for p in alive]}"


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def flare_serve(*args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``flare serve ARGS`` on a free loopback port, run from the repository's root:
    the process and its address, once it says it listens; killed afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flare", "serve", *args, "--address", "127.0.0.1:0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line + proc.stdout.read()
        yield proc, line.rsplit(" ", 1)[1].strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
