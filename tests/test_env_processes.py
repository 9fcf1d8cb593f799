"""Envs in worker processes: the same results as in the server process, and a crashed
worker costs its sessions, never the server."""

import os
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest

from flare.bridge import ServerSettings, serve
from flare.bridge.codec import decode, encode
from flare.bridge.factories import GymEnvFactory
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv
from tests.conftest import _is_multiprocessing_service

CODE = grpc.StatusCode


class ExitingEnv(ChainEnv):
    """Ends its whole process on its first step, as a segfault in native code would."""

    def step(self, actions, actrep=1):
        os._exit(3)


class SpawningEnv(ChainEnv):
    """Starts a helper process that keeps every descriptor it may inherit, as a native
    simulator's engine may (ViZDoom's does); its pid goes to ``pid_file``."""

    def __init__(self, pid_file: str) -> None:
        super().__init__(goal=100, max_steps=100)
        helper = subprocess.Popen(["sleep", "30"], close_fds=False)
        Path(pid_file).write_text(str(helper.pid))


def make_env(kind: str = "chain", pid_file: str = "", **config):  # module-level: picklable
    if kind == "spawn":
        return SpawningEnv(pid_file)
    return ExitingEnv() if kind == "exit" else ChainEnv(goal=100, max_steps=100)


def _stub(server):
    return pb_grpc.SimulatorStub(grpc.insecure_channel(server.address))


def _open(stub, seed=None, **config) -> str:
    request = pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1, config=config)
    if seed is not None:
        request.seed = seed
    session_id = stub.OpenSession(request, timeout=30).session_id
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    return session_id


def _step(stub, session_id):
    request = pb.StepRequest(session_id=session_id, actions={"action": encode(np.array([1]))})
    return stub.Step(request, timeout=10)


def _as_lists(response: pb.StepManyResponse) -> dict:
    return {
        "observations": decode(response.observations["sensor"]).tolist(),
        "rewards": decode(response.rewards["reward"]).tolist(),
        "game_over": decode(response.game_over).tolist(),
        "time_out": decode(response.time_out).tolist(),
        "reset_rows": list(response.reset_rows),
        "final": decode(response.final_observations["sensor"]).tolist()
        if response.reset_rows
        else [],
    }


@pytest.mark.slow
def test_worker_processes_step_exactly_like_the_server_process():
    factory = GymEnvFactory("CartPole-v0")
    local = serve(factory)
    farm = serve(factory, settings=ServerSettings(env_processes=2))
    try:
        stubs = [_stub(local), _stub(farm)]
        ids = [[_open(stub, seed=seed) for seed in range(5)] for stub in stubs]
        rng = np.random.default_rng(0)
        resets = 0
        for _ in range(40):
            actions = {"action": encode(rng.integers(0, 2, (5, 1)))}
            answers = [
                _as_lists(
                    stub.StepMany(
                        pb.StepManyRequest(session_ids=i, actions=actions, auto_reset=True),
                        timeout=10,
                    )
                )
                for stub, i in zip(stubs, ids, strict=True)
            ]
            assert answers[0] == answers[1]
            resets += len(answers[0]["reset_rows"])
        assert resets >= 3  # episodes ended in both servers' rows, and were merged alike
        assert {w.num_sessions for w in farm.servicer.workers.workers} == {2, 3}  # spread
    finally:
        local.stop(0)
        farm.stop(0)


@pytest.mark.slow
def test_a_crashed_worker_costs_its_sessions_not_the_server():
    server = serve(make_env, settings=ServerSettings(env_processes=2, max_sessions=4))
    try:
        stub = _stub(server)
        witness = _open(stub)  # worker 0
        doomed = _open(stub, kind="exit")  # worker 1
        dead = server.servicer.workers.workers[1].process
        assert decode(_step(stub, witness).observations["sensor"]).tolist() == [1.0]
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.INTERNAL
        assert "died with exit code 3" in info.value.details()
        assert not dead.is_alive()
        # the session is gone (NOT_FOUND), the other worker's session steps on
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.NOT_FOUND
        assert decode(_step(stub, witness).observations["sensor"]).tolist() == [2.0]
        # the lost session frees its slot, and a new session gets a fresh worker
        server.servicer.reap_idle()
        assert server.servicer.num_sessions == 1
        fresh = _open(stub)
        assert decode(_step(stub, fresh).observations["sensor"]).tolist() == [1.0]
        assert server.servicer.workers.workers[1].process.is_alive()
    finally:
        server.stop(0)
    assert all(not w.process.is_alive() for w in server.servicer.workers.workers)


@pytest.mark.slow
def test_a_dead_worker_is_noticed_though_a_process_it_started_holds_its_pipe(tmp_path):
    server = serve(make_env, settings=ServerSettings(env_processes=1))
    pid_file = tmp_path / "helper.pid"
    try:
        stub = _stub(server)
        doomed = _open(stub, kind="spawn", pid_file=str(pid_file))
        helper = psutil.Process(int(pid_file.read_text()))
        worker = server.servicer.workers.workers[0].process
        assert helper.ppid() == worker.pid
        worker.kill()
        worker.join(10)
        assert helper.is_running()  # it lives on, and would hold an inherited pipe open
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.INTERNAL and "died" in info.value.details()
        assert time.monotonic() - started < 5  # an answer, not a hang
        # the worker's descriptors were closed on exec: the helper holds none of its pipes
        assert not [c for c in helper.net_connections(kind="unix")]
        fresh = _open(stub)
        assert decode(_step(stub, fresh).observations["sensor"]).tolist() == [1.0]
    finally:
        server.stop(0)
        if pid_file.exists():
            psutil.Process(int(pid_file.read_text())).kill()


def test_env_processes_need_a_picklable_factory():
    with pytest.raises(ValueError, match="picklable"):
        serve(lambda **config: ChainEnv(), settings=ServerSettings(env_processes=1))


@pytest.mark.slow
def test_a_server_that_cannot_bind_leaves_no_worker_behind():
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    holder = serve(make_env)
    try:
        with pytest.raises(OSError, match="already in use"):
            serve(make_env, holder.address, settings=ServerSettings(env_processes=2))
    finally:
        holder.stop(0)
    spawned = [
        p
        for p in me.children(recursive=True)
        if p.pid not in before and not _is_multiprocessing_service(p)
    ]
    _, alive = psutil.wait_procs(spawned, timeout=5)
    assert not alive, f"env workers left behind: {alive}"
