"""A simulator server under load: many streamed sessions at once, then thousands of
open/close cycles, and what the server holds (memory, file descriptors, threads)
before and after.

    python benchmarks/load.py [--sessions 64] [--seconds 10] [--cycles 2000]

The server is ``flare serve gym --game CartPole-v1`` in a child process (as a simulator
would be); the clients run here: ``--sessions`` RemoteEnv stream sessions stepping in
threads for ``--seconds``, with every step's latency recorded, then ``--cycles`` unary
OpenSession/Reset/CloseSession cycles and as many Session streams opened and closed.
Writes ``benchmarks/results/load.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flare.bridge import RemoteEnv
from flare.bridge.errors import SimulatorError
from flare.bridge.launch import flare_command, simulator_process
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

RESULTS = Path(__file__).parent / "results" / "load.json"


@dataclass
class Footprint:
    """What the server process holds."""

    rss_mb: float
    fds: int
    threads: int

    @classmethod
    def of(cls, process: psutil.Process) -> Footprint:
        return cls(
            round(process.memory_info().rss / 2**20, 1), process.num_fds(), process.num_threads()
        )


def server_process(address: str) -> psutil.Process:
    """The process listening on ``address`` (the ``flare serve`` child)."""
    port = int(address.rsplit(":", 1)[1])
    for connection in psutil.net_connections("tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on {address}")


def stepping(address: str, sessions: int, seconds: float) -> dict:
    """``sessions`` stream sessions stepping at once; steps/s, latency, errors, health."""
    envs = [RemoteEnv(address, seed=i, timeout_s=30) for i in range(sessions)]
    latencies: list[list[float]] = [[] for _ in range(sessions)]
    errors: list[str] = []
    stop = threading.Event()

    def play(index: int) -> None:
        env, seen = envs[index], latencies[index]
        try:
            env.reset()
            while not stop.is_set():
                started = time.perf_counter()
                _, _, game_over = env.step({"action": np.array([index % 2])})
                seen.append(time.perf_counter() - started)
                if game_over or env.time_out():
                    env.reset()
        except Exception as err:  # noqa: BLE001 - counted, reported
            errors.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=play, args=(i,)) for i in range(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    health = []
    channel = grpc.insecure_channel(address)
    stub = health_pb2_grpc.HealthStub(channel)
    while time.perf_counter() - started < seconds:
        asked = time.perf_counter()
        stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
        health.append(time.perf_counter() - asked)
        time.sleep(0.25)
    refused = ""
    try:
        RemoteEnv(address, timeout_s=10).close()
    except SimulatorError as err:
        refused = err.code.name
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.perf_counter() - started
    channel.close()
    for env in envs:
        env.close()
    every = np.concatenate([np.asarray(x) for x in latencies])
    per_session = [len(x) for x in latencies]
    return {
        "sessions": sessions,
        "seconds": round(elapsed, 2),
        "steps": int(every.size),
        "steps_per_s": round(every.size / elapsed, 1),
        "latency_ms_p50": round(float(np.percentile(every, 50)) * 1e3, 3),
        "latency_ms_p99": round(float(np.percentile(every, 99)) * 1e3, 3),
        "fewest_steps_of_a_session": min(per_session),
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "health_ms_max": round(max(health) * 1e3, 2),
        "one_more_session": refused or "accepted",
    }


def cycling(address: str, cycles: int) -> dict:
    """Sessions opened and closed, unary and streamed, one after another."""
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.SimulatorStub(channel)
    opening = pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1)
    errors = 0
    started = time.perf_counter()
    for _ in range(cycles):
        try:
            session_id = stub.OpenSession(opening, timeout=10).session_id
            stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
            stub.CloseSession(pb.CloseSessionRequest(session_id=session_id), timeout=10)
        except grpc.RpcError:
            errors += 1
    unary_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(cycles):
        try:
            messages = iter(
                [pb.SessionRequest(open=opening), pb.SessionRequest(reset=pb.ResetRequest())]
            )
            answers = list(stub.Session(messages, timeout=10))
            if len(answers) != 2:
                errors += 1
        except grpc.RpcError:
            errors += 1
    stream_s = time.perf_counter() - started
    channel.close()
    return {
        "cycles": cycles,
        "unary_cycles_per_s": round(cycles / unary_s, 1),
        "stream_cycles_per_s": round(cycles / stream_s, 1),
        "errors": errors,
    }


def _cpu_s(times) -> float:
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cycles", type=int, default=2000)
    args = parser.parse_args()
    command = [
        *flare_command(),
        "serve",
        "gym",
        "--game",
        "CartPole-v1",
        "--address",
        "127.0.0.1:0",
    ]
    command += ["--max-sessions", str(args.sessions)]
    with simulator_process(command) as address:
        server = server_process(address)
        time.sleep(1.0)
        before = Footprint.of(server)
        client = psutil.Process()
        cpu = server.cpu_times(), client.cpu_times()
        load = stepping(address, args.sessions, args.seconds)
        load["server_cpu_s"] = round(_cpu_s(server.cpu_times()) - _cpu_s(cpu[0]), 2)
        load["clients_cpu_s"] = round(_cpu_s(client.cpu_times()) - _cpu_s(cpu[1]), 2)
        during = Footprint.of(server)
        cycles = cycling(address, args.cycles)
        time.sleep(1.0)  # closed streams' threads go back to the pool
        after = Footprint.of(server)
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
        },
        "server": "flare serve gym --game CartPole-v1 (a child process)",
        "stepping": load,
        "open_close": cycles,
        "server_before": asdict(before),
        "server_after_stepping": asdict(during),
        "server_after_cycles": asdict(after),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
