"""A simulator server under load: every streamed session steps while health answers, and
a client that stops (SIGSTOP) or vanishes never freezes the server."""

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flare.bridge import RemoteEnv, ServerSettings, serve
from flare.bridge.errors import SimulatorError
from flare.bridge.launch import flare_serve_gym, simulator_process
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv

CLIENTS = Path(__file__).parent / "scripts" / "stream_clients.py"
CODE = grpc.StatusCode


def make_env(seed=None, **config):
    return ChainEnv(goal=1000, max_steps=100_000)


def start_clients(address: str, count: int, *flags: str) -> subprocess.Popen:
    """``count`` RemoteEnv stream sessions in another process; returns once all are open."""
    clients = subprocess.Popen(
        [sys.executable, str(CLIENTS), address, str(count), *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([clients.stdout], [], [], 120)
    line = clients.stdout.readline() if ready else ""
    if line.strip() != f"open {count}":
        clients.kill()
        raise AssertionError(f"the clients did not open their sessions: {line!r}")
    return clients


def health_latency(address: str) -> float:
    channel = grpc.insecure_channel(address)
    try:
        started = time.monotonic()
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        return time.monotonic() - started
    finally:
        channel.close()


def steps_a_session(address: str) -> None:
    env = RemoteEnv(address, timeout_s=10)
    try:
        env.reset()
        env.step({"action": np.array([1])})
    finally:
        env.close()


@pytest.mark.slow
def test_max_sessions_streamed_sessions_all_step_while_health_answers():
    with simulator_process(flare_serve_gym("CartPole-v1")) as address:  # --max-sessions 64
        clients = start_clients(address, 64)
        try:
            latencies = []
            for _ in range(10):
                latencies.append(health_latency(address))
                time.sleep(0.2)
            with pytest.raises(SimulatorError) as refused:
                RemoteEnv(address, timeout_s=10)  # the 65th session
            assert refused.value.code == CODE.RESOURCE_EXHAUSTED
            channel = grpc.insecure_channel(address)
            with pytest.raises(grpc.RpcError) as unary:
                pb_grpc.SimulatorStub(channel).OpenSession(
                    pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1), timeout=10
                )
            channel.close()
            assert unary.value.code() == CODE.RESOURCE_EXHAUSTED
        finally:
            out, _ = clients.communicate(input="", timeout=120)  # EOF: the clients stop
        counts = [int(c) for c in out.split("steps", 1)[1].split()]
        assert len(counts) == 64
        assert min(counts) >= 5, counts  # every session stepped, all at the same time
        assert max(latencies) < 1.0, latencies
        steps_a_session(address)  # the freed slots serve again


@pytest.mark.slow
@pytest.mark.parametrize("freed_by", ["keepalive", "idle-reaper"])
def test_a_stopped_client_does_not_freeze_the_server(freed_by):
    """A SIGSTOPped client holds every session and stream slot: keepalive (no answer to
    the server's pings) or the idle reaper (its sessions unused) must free them all."""
    if freed_by == "keepalive":
        settings = ServerSettings(
            max_sessions=4, max_streams=4, max_workers=2, idle_timeout_s=0,
            keepalive_s=0.5, keepalive_timeout_s=0.5,
        )  # fmt: skip
    else:
        settings = ServerSettings(
            max_sessions=4, max_streams=4, max_workers=2, idle_timeout_s=1.0,
            keepalive_s=3600, keepalive_timeout_s=3600,
        )  # fmt: skip
    running = serve(make_env, settings=settings)
    clients = start_clients(running.address, 4, "--idle")
    try:
        assert running.servicer.num_sessions == 4 and running.streams.num_streams == 4
        os.kill(clients.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            running.servicer.num_sessions or running.streams.num_streams
        ):
            time.sleep(0.1)
        assert running.servicer.num_sessions == 0
        assert running.streams.num_streams == 0
        assert health_latency(running.address) < 1.0
        for _ in range(4):  # every slot is free again
            steps_a_session(running.address)
        fresh = [RemoteEnv(running.address, timeout_s=10) for _ in range(4)]
        for env in fresh:
            env.reset()
            env.step({"action": np.array([1])})
            env.close()
    finally:
        clients.kill()  # (SIGKILL works on a stopped process)
        clients.wait(timeout=30)
        running.stop(0)
