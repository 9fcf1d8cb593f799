"""Bridge speed, as ratios measured within one run on this machine (CartPole, loopback).

(a) one session stepped over the Session stream vs a bare gRPC bidirectional echo of the
    same message sizes;
(b) 64 sessions stepped per StepMany request on a StepManyStream (batched actions,
    auto-reset) vs in-process gymnasium SyncVectorEnv(64); once with the envs in the
    server process, once in two worker processes (env_processes=2);
(c) a step returning an 84x84x4 uint8 observation vs a CartPole step (over the stream).

Beside (a) and (b) it measures a ceiling: the same messages answered by bare gRPC
handlers with no FLARE code at all (``bare_simulator.py``: Gymnasium envs stepped
straight from the request bytes, in the same threaded gRPC server), against the same
references in the same run: what FLARE would reach if its own work cost nothing. For
(b) it also measures two ceilings through the Env interface (bare handlers stepping,
per row, FLARE's GymEnv and a CartPole Env cheaper than the contract allows): what any
server of FLARE Envs could reach at most.

The servers run in a child process (as a simulator would); the client measures. Each
pair is timed in alternating blocks, so a drift in machine speed hits both sides; each
repeat gives one ratio, and the median over the repeats is reported. Writes
benchmarks/results/bridge.json and prints a Markdown table.

    python benchmarks/bridge.py [--seconds 6] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import gymnasium as gym
import numpy as np
from bare_simulator import (
    STEP_MANY_GYM_ENV_STREAM,
    STEP_MANY_MINIMAL_ENV_STREAM,
    STEP_MANY_STREAM,
    STEP_STREAM,
    serve_bare,
)

from flare.bridge.codec import encode
from flare.bridge.factories import GymEnvFactory
from flare.bridge.server import ServerSettings, serve, serve_until_signal
from flare.framework.env import Env
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

ECHO_METHOD = "/bench.Echo/Echo"
FRAME_SHAPE = (84, 84, 4)
RESULTS = Path(__file__).resolve().parent / "results" / "bridge.json"
# (b)'s ceilings through the Env interface: bare handlers stepping Envs, no FLARE server
ENV_CEILINGS = {
    "b_bare_gym_env": STEP_MANY_GYM_ENV_STREAM,
    "b_bare_minimal_env": STEP_MANY_MINIMAL_ENV_STREAM,
}


class FrameEnv(Env):
    """CartPole's dynamics, seen as 84x84x4 uint8 frames (cycled from a pre-generated set),
    so a step differs from a CartPole step only in what it sends back."""

    def __init__(self, seed: int | None = None) -> None:
        self.game = GymEnvFactory("CartPole-v0")(seed=seed)
        rng = np.random.default_rng(seed or 0)
        self.frames = rng.integers(0, 256, (8, *FRAME_SHAPE), dtype=np.uint8)
        self.t = 0

    def reset(self):
        self.game.reset()
        self.t = 0
        return {"frame": self.frames[0]}

    def step(self, actions, actrep=1):
        _, rewards, game_over = self.game.step(actions, actrep)
        self.t += 1
        return {"frame": self.frames[self.t % 8]}, rewards, game_over

    def observation_dims(self):
        return {"frame": FRAME_SHAPE}

    def action_dims(self):
        return {"action": 2}

    def time_out(self):
        return self.game.time_out()

    def spec(self) -> EnvSpec:
        return EnvSpec(
            observations=(ArraySpec("frame", np.dtype(np.uint8), FRAME_SHAPE),),
            actions=(ArraySpec("action", np.dtype(np.int64), (1,), Discrete(2)),),
            max_episode_steps=200,
        )


def make_env(kind: str = "gym", seed: int | None = None, **config):
    if kind == "frames":
        return FrameEnv(seed)
    return GymEnvFactory("CartPole-v0")(seed=seed, **config)


def run_servers() -> None:
    """Child process: the FLARE simulators (envs in the server process, and envs in two
    worker processes) and a bare echo server, each on its own port."""
    simulator = serve(make_env, settings=ServerSettings(max_sessions=256))
    farm = serve(make_env, settings=ServerSettings(max_sessions=256, env_processes=2))
    echo = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.stream_stream_rpc_method_handler(lambda requests, ctx: (r for r in requests))
    echo.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),)
    )
    echo_port = echo.add_insecure_port("127.0.0.1:0")
    echo.start()
    bare, bare_port = serve_bare()
    print(f"{simulator.port} {farm.port} {echo_port} {bare_port}", flush=True)
    serve_until_signal(simulator, grace=1)
    farm.stop(grace=1)
    echo.stop(0)
    bare.stop(0)


def interleaved_rates(first, second, seconds: float, block: int) -> tuple[float, float]:
    """Calls per second of ``first`` and ``second``, timed in alternating blocks of
    ``block`` calls for about ``seconds`` in all, so drifts in machine speed hit both."""
    for _ in range(block):  # warm up
        first()
        second()
    totals = [0.0, 0.0]
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for index, step in enumerate((first, second)):
            began = time.perf_counter()
            for _ in range(block):
                step()
            totals[index] += time.perf_counter() - began
        count += block
    return count / totals[0], count / totals[1]


class StreamStepper:
    """Steps one session over the Session stream, resetting when an episode ends."""

    def __init__(self, channel: grpc.Channel, kind: str, bare: bool = False) -> None:
        self._queue = __import__("queue").SimpleQueue()
        if bare:  # the ceiling: no FLARE server, so no session to open
            method = channel.stream_stream(
                STEP_STREAM,
                request_serializer=pb.SessionRequest.SerializeToString,
                response_deserializer=pb.SessionResponse.FromString,
            )
            self.call = method(iter(self._queue.get, None))
        else:
            self.call = pb_grpc.SimulatorStub(channel).Session(iter(self._queue.get, None))
            self._send(
                pb.SessionRequest(
                    open=pb.OpenSessionRequest(
                        protocol_version=pb.PROTOCOL_VERSION_1, config={"kind": kind}
                    )
                )
            )
        self._send(pb.SessionRequest(reset=pb.ResetRequest()))
        # the two actions, encoded once: the client's own encoding is not the bridge's cost
        self.step_requests = [
            pb.SessionRequest(step=pb.StepRequest(actions={"action": encode(np.array([a]))}))
            for a in (0, 1)
        ]
        self.step_request = self.step_requests[0]
        self.reset_request = pb.SessionRequest(reset=pb.ResetRequest())
        self.last_response = None
        self.flip = 0

    def _send(self, message):
        self._queue.put(message)
        return next(self.call)

    def __call__(self) -> None:
        self.flip ^= 1
        response = self._send(self.step_requests[self.flip])
        self.last_response = response
        if response.step.game_over or response.step.time_out:
            self._send(self.reset_request)

    def close(self):
        self._queue.put(None)
        self.call.cancel()


def measure_a(channel, echo_channel, seconds, bare=False):
    flare_stepper = StreamStepper(channel, "gym", bare)
    flare_stepper()  # one step, to learn the message sizes
    request_size = flare_stepper.step_request.ByteSize()
    response_size = flare_stepper.last_response.ByteSize()
    # echo: the request carries the step's bytes, padded to the larger of the two sizes,
    # so each direction moves at least as many bytes as FLARE's step does
    payload = bytes(max(request_size, response_size))
    queue = __import__("queue").SimpleQueue()
    call = echo_channel.stream_stream(ECHO_METHOD)(iter(queue.get, None))

    def echo_step():
        queue.put(payload)
        next(call)

    flare_rate, echo_rate = interleaved_rates(flare_stepper, echo_step, seconds, block=200)
    flare_stepper.close()
    queue.put(None)
    call.cancel()
    return flare_rate, echo_rate, request_size, response_size


def measure_b(channel, seconds, num_envs=64, bare: str | None = None):
    """Env steps/s of StepManyStream x ``num_envs`` and of SyncVectorEnv(num_envs); with
    ``bare``, of that bare handler (one env per row, no sessions) instead."""
    stub = pb_grpc.SimulatorStub(channel)
    requests = __import__("queue").SimpleQueue()
    ids = []
    if bare:
        method = channel.stream_stream(
            bare,
            request_serializer=pb.StepManyRequest.SerializeToString,
            response_deserializer=pb.StepManyResponse.FromString,
        )
        call = method(iter(requests.get, None))
        request = pb.StepManyRequest(session_ids=[str(i) for i in range(num_envs)])
    else:
        for _ in range(num_envs):
            opened = stub.OpenSession(
                pb.OpenSessionRequest(
                    protocol_version=pb.PROTOCOL_VERSION_1, config={"kind": "gym"}
                )
            )
            ids.append(opened.session_id)
            stub.Reset(pb.ResetRequest(session_id=opened.session_id))
        call = stub.StepManyStream(iter(requests.get, None))
        request = pb.StepManyRequest(session_ids=ids)
    request.auto_reset = True
    rng = np.random.default_rng(0)

    def step_many():
        # like SyncVectorEnv: one batched action tensor in, batched results out, auto-reset
        request.actions["action"].CopyFrom(encode(rng.integers(0, 2, (num_envs, 1))))
        requests.put(request)
        next(call)

    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v0") for _ in range(num_envs)])
    envs.reset(seed=0)

    def vector_step():
        envs.step(rng.integers(0, 2, num_envs))

    flare_rate, vector_rate = interleaved_rates(step_many, vector_step, seconds, block=10)
    requests.put(None)
    call.cancel()
    envs.close()
    for sid in ids:
        stub.CloseSession(pb.CloseSessionRequest(session_id=sid))
    return flare_rate * num_envs, vector_rate * num_envs


def measure_c(channel, seconds):
    cartpole = StreamStepper(channel, "gym")
    frames = StreamStepper(channel, "frames")
    cartpole_rate, frame_rate = interleaved_rates(cartpole, frames, seconds, block=200)
    cartpole.close()
    frames.close()
    return cartpole_rate, frame_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement (both sides)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_servers()
        return 0

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        sim_port, farm_port, echo_port, bare_port = child.stdout.readline().split()
        channel = grpc.insecure_channel(f"127.0.0.1:{sim_port}")
        farm_channel = grpc.insecure_channel(f"127.0.0.1:{farm_port}")
        echo_channel = grpc.insecure_channel(f"127.0.0.1:{echo_port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        grpc.channel_ready_future(echo_channel).result(timeout=30)
        grpc.channel_ready_future(farm_channel).result(timeout=30)
        bare_channel = grpc.insecure_channel(f"127.0.0.1:{bare_port}")
        grpc.channel_ready_future(bare_channel).result(timeout=30)
        runs = {"a": [], "a_bare": [], "b": [], "b_farm": [], "b_bare": [], "c": []}
        runs.update({key: [] for key in ENV_CEILINGS})
        for i in range(args.repeats):
            runs["a"].append(measure_a(channel, echo_channel, args.seconds))
            runs["a_bare"].append(measure_a(bare_channel, echo_channel, args.seconds, bare=True))
            runs["b"].append(measure_b(channel, args.seconds))
            runs["b_farm"].append(measure_b(farm_channel, args.seconds))
            runs["b_bare"].append(measure_b(bare_channel, args.seconds, bare=STEP_MANY_STREAM))
            for key, method in ENV_CEILINGS.items():
                runs[key].append(measure_b(bare_channel, args.seconds, bare=method))
            runs["c"].append(measure_c(channel, args.seconds))
            print(f"repeat {i + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        child.terminate()
        child.wait(10)

    def median(values):
        return statistics.median(values)

    def ratio(key, top=0, bottom=1):  # each repeat's own ratio, then their median
        return median(r[top] / r[bottom] for r in runs[key])

    a_flare, a_echo = median(r[0] for r in runs["a"]), median(r[1] for r in runs["a"])
    b_flare, b_vec = median(r[0] for r in runs["b"]), median(r[1] for r in runs["b"])
    f_flare, f_vec = median(r[0] for r in runs["b_farm"]), median(r[1] for r in runs["b_farm"])
    c_cart, c_frame = median(r[0] for r in runs["c"]), median(r[1] for r in runs["c"])
    a_bare, b_bare = median(r[0] for r in runs["a_bare"]), median(r[0] for r in runs["b_bare"])
    a_ratio, b_ratio, f_ratio = ratio("a"), ratio("b"), ratio("b_farm")
    a_bare_ratio, b_bare_ratio = ratio("a_bare"), ratio("b_bare")
    c_ratio = ratio("c", top=0, bottom=1)  # CartPole rate / frame rate = the frame's cost
    results = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}",
        "seconds_per_measurement": args.seconds,
        "repeats": args.repeats,
        "a_stream_vs_echo": {
            "flare_steps_per_s": a_flare,
            "echo_per_s": a_echo,
            "ratio": a_ratio,
            "target": ">= 0.70",
            "request_bytes": runs["a"][0][2],
            "response_bytes": runs["a"][0][3],
        },
        "b_step_many_64_vs_sync_vector_env": {
            "flare_env_steps_per_s": b_flare,
            "sync_vector_env_steps_per_s": b_vec,
            "ratio": b_ratio,
            "target": ">= 0.50",
            "server": "envs in the server process (env_processes=0), StepManyStream",
        },
        "b_farm_step_many_64_two_env_processes_vs_sync_vector_env": {
            "flare_env_steps_per_s": f_flare,
            "sync_vector_env_steps_per_s": f_vec,
            "ratio": f_ratio,
            "target": ">= 0.50",
            "server": "envs in two worker processes (env_processes=2), StepManyStream",
        },
        "ceiling_bare_grpc_handlers_no_flare": {
            "what": "the same messages answered by gRPC handlers with no FLARE code "
            "(benchmarks/bare_simulator.py) in the same threaded gRPC server, against the "
            "same references: what FLARE would reach if its own work cost nothing",
            "a_steps_per_s": a_bare,
            "a_ratio_vs_echo": a_bare_ratio,
            "b_env_steps_per_s": b_bare,
            "b_ratio_vs_sync_vector_env": b_bare_ratio,
        },
        "ceiling_b_through_the_env_interface": {
            "what": "(b) answered by bare gRPC handlers (no sessions, checks or statuses) "
            "that step each row through the Env interface: FLARE's GymEnv, and "
            "MinimalCartPole (Gym's CartPole behind Env with no checks or conversions); "
            "what any server of FLARE Envs could reach at most",
            "gym_env_steps_per_s": median(r[0] for r in runs["b_bare_gym_env"]),
            "gym_env_ratio_vs_sync_vector_env": ratio("b_bare_gym_env"),
            "minimal_env_steps_per_s": median(r[0] for r in runs["b_bare_minimal_env"]),
            "minimal_env_ratio_vs_sync_vector_env": ratio("b_bare_minimal_env"),
        },
        "c_frame_step_cost_vs_cartpole": {
            "cartpole_steps_per_s": c_cart,
            "frame_steps_per_s": c_frame,
            "cost_ratio": c_ratio,
            "target": "<= 2.0",
        },
        "raw": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("| measure | FLARE | reference | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| (a) stream step vs bare echo | {a_flare:,.0f} steps/s | {a_echo:,.0f} msgs/s "
        f"| {a_ratio:.2f} | >= 0.70 |"
    )
    print(
        f"| (b) StepMany x64 vs SyncVectorEnv(64) | {b_flare:,.0f} env steps/s | "
        f"{b_vec:,.0f} env steps/s | {b_ratio:.2f} | >= 0.50 |"
    )
    print(
        f"| (b) same, envs in 2 worker processes | {f_flare:,.0f} env steps/s | "
        f"{f_vec:,.0f} env steps/s | {f_ratio:.2f} | >= 0.50 |"
    )
    print(
        f"| (a) ceiling: bare handler, no FLARE | {a_bare:,.0f} steps/s | "
        f"{median(r[1] for r in runs['a_bare']):,.0f} msgs/s | {a_bare_ratio:.2f} | - |"
    )
    for key, what in (
        ("b_bare", "no FLARE"),
        ("b_bare_gym_env", "rows through GymEnv"),
        ("b_bare_minimal_env", "rows through MinimalCartPole"),
    ):  # each against the SyncVectorEnv rate timed beside it
        print(
            f"| (b) ceiling: bare handler, {what} | "
            f"{median(r[0] for r in runs[key]):,.0f} env steps/s | "
            f"{median(r[1] for r in runs[key]):,.0f} env steps/s | {ratio(key):.2f} | - |"
        )
    print(
        f"| (c) 84x84x4 uint8 step cost vs CartPole | {c_frame:,.0f} steps/s | "
        f"{c_cart:,.0f} steps/s | {c_ratio:.2f}x | <= 2x |"
    )
    print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
