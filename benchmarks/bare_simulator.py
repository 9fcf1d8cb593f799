"""A ceiling for the bridge benchmark: gRPC handlers with no FLARE code at all.

They speak the same messages as the FLARE simulator but skip everything FLARE adds
(sessions, spec checks, error statuses, the Env interface): each request's actions are
read with ``np.frombuffer`` and fed straight to Gymnasium CartPole envs, in the same
threaded gRPC server FLARE uses. What they reach against the same references is what
FLARE could reach with no cost of its own, so the benchmark reports it beside FLARE's
figures (another server design, e.g. asyncio, may do somewhat better).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import gymnasium as gym
import numpy as np

from flare.bridge.codec import encode_into
from flare.simulator.v1 import simulator_pb2 as pb

SERVICE = "bench.Bare"
STEP_STREAM = f"/{SERVICE}/Session"  # one CartPole per stream, SessionRequest/Response
STEP_MANY_STREAM = f"/{SERVICE}/StepManyStream"  # one CartPole per session id


def _cartpole(seed: int) -> gym.Env:
    env = gym.make("CartPole-v0")
    env.reset(seed=seed)
    return env


def _session(requests: Iterator[pb.SessionRequest], context) -> Iterator[pb.SessionResponse]:
    env = _cartpole(0)
    for request in requests:
        response = pb.SessionResponse()
        if request.WhichOneof("request") == "step":
            action = np.frombuffer(request.step.actions["action"].data, np.int64)[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            encode_into(response.step.observations["sensor"], obs)
            encode_into(response.step.rewards["reward"], np.array([reward], np.float32))
            response.step.game_over = -1 if terminated else 0
            response.step.time_out = truncated
        elif request.WhichOneof("request") == "reset":
            obs, _ = env.reset()
            encode_into(response.reset.observations["sensor"], obs)
        yield response


def _step_many(requests: Iterator[pb.StepManyRequest], context) -> Iterator[pb.StepManyResponse]:
    envs: list[gym.Env] = []
    for request in requests:
        n = len(request.session_ids)
        while len(envs) < n:
            envs.append(_cartpole(len(envs)))
        actions = np.frombuffer(request.actions["action"].data, np.int64)
        observations = np.empty((n, 4), np.float32)
        rewards = np.empty((n, 1), np.float32)
        game_over = np.zeros(n, np.int32)
        time_out = np.zeros(n, np.bool_)
        response = pb.StepManyResponse()
        for row in range(n):
            obs, reward, terminated, truncated, _ = envs[row].step(actions[row])
            if terminated or truncated:
                response.reset_rows.append(row)
                obs, _ = envs[row].reset()
            observations[row] = obs
            rewards[row] = reward
            game_over[row] = -1 if terminated else 0
            time_out[row] = truncated
        encode_into(response.observations["sensor"], observations)
        encode_into(response.rewards["reward"], rewards)
        encode_into(response.game_over, game_over)
        encode_into(response.time_out, time_out)
        yield response


def serve_bare() -> tuple[grpc.Server, int]:
    """Start the bare handlers on a free loopback port; the server and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Session": grpc.stream_stream_rpc_method_handler(
            _session,
            request_deserializer=pb.SessionRequest.FromString,
            response_serializer=pb.SessionResponse.SerializeToString,
        ),
        "StepManyStream": grpc.stream_stream_rpc_method_handler(
            _step_many,
            request_deserializer=pb.StepManyRequest.FromString,
            response_serializer=pb.StepManyResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port
