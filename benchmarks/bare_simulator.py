"""Ceilings for the bridge benchmark: gRPC handlers with none of FLARE's server code.

They speak the same messages as the FLARE simulator but skip everything FLARE adds
(sessions, spec checks, error statuses, the Env interface): each request's actions are
read with ``np.frombuffer`` and fed straight to Gymnasium CartPole envs, in the same
threaded gRPC server FLARE uses. What they reach against the same references is what
FLARE could reach with no cost of its own, so the benchmark reports it beside FLARE's
figures (another server design, e.g. asyncio, may do somewhat better).

Two more StepMany handlers step their rows through the ``Env`` interface instead (a
dict of actions in, dicts of observations and rewards out, ``time_out()``), still with
no sessions, checks or statuses: one over FLARE's ``GymEnv`` (the adapter the bridge
serves CartPole with), one over ``MinimalCartPole``, the least an Env can do. What they
reach bounds what any server of FLARE Envs can reach on the same machine.

``python benchmarks/bare_simulator.py sessions`` serves a third kind for whole training
runs (benchmarks/farm.py): FLARE's sessions and StepMany (its ``SimulatorServicer``)
behind plain gRPC handlers of FLARE's service, with none of the server's own layers
(stream admission, safe parsing, error statuses, health, reflection, the idle reaper).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent import futures

import grpc
import gymnasium as gym
import numpy as np

from flare.bridge.codec import encode_into
from flare.env_zoo.gym_env import GymEnv
from flare.simulator.v1 import simulator_pb2 as pb

SERVICE = "bench.Bare"
STEP_STREAM = f"/{SERVICE}/Session"  # one CartPole per stream, SessionRequest/Response
STEP_MANY_STREAM = f"/{SERVICE}/StepManyStream"  # one CartPole per session id
STEP_MANY_GYM_ENV_STREAM = f"/{SERVICE}/StepManyGymEnvStream"  # a FLARE GymEnv per row
STEP_MANY_MINIMAL_ENV_STREAM = f"/{SERVICE}/StepManyMinimalEnvStream"  # MinimalCartPole


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

    def step(row: int, action: np.int64) -> tuple[np.ndarray, float, int, bool]:
        obs, reward, terminated, truncated, _ = envs[row].step(action)
        if terminated or truncated:
            obs, _ = envs[row].reset()
        return obs, reward, -1 if terminated else 0, truncated

    return _batched(requests, envs, _cartpole, step)


class MinimalCartPole:
    """Gymnasium's CartPole behind the Env interface with nothing else: no checks of the
    action, no conversions, no action repeat, and even its reward a bare float rather
    than the vector the contract asks for; cheaper than any conforming Env, so what it
    reaches is a generous bound."""

    def __init__(self, seed: int) -> None:
        self._env = _cartpole(seed)
        self._time_out = False

    def reset(self) -> dict[str, np.ndarray]:
        self._time_out = False
        return {"sensor": self._env.reset()[0]}

    def step(self, actions: dict[str, np.ndarray], actrep: int = 1):
        obs, reward, terminated, truncated, _ = self._env.step(actions["action"][0])
        self._time_out = truncated
        return {"sensor": obs}, {"reward": reward}, -int(terminated)

    def time_out(self) -> bool:
        return self._time_out


def _gym_env(seed: int) -> GymEnv:
    env = GymEnv("CartPole-v0", seed=seed)
    env.reset()
    return env


def _step_many_env(make):
    """A StepMany handler whose rows are ``make(seed)`` Envs, stepped through the Env
    interface and reset when their episode ends."""

    def handler(requests: Iterator[pb.StepManyRequest], context) -> Iterator:
        envs: list = []

        def step(row: int, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, bool]:
            env = envs[row]
            observations, rewards, game_over = env.step({"action": action}, 1)
            time_out = env.time_out()
            if game_over or time_out:
                observations = env.reset()
            return observations["sensor"], rewards["reward"], game_over, time_out

        return _batched(requests, envs, make, step, action_shape=(1,))

    return handler


def _batched(requests, envs, make, step, action_shape=()) -> Iterator[pb.StepManyResponse]:
    """Answer each request by ``step(row, action)`` on env ``row`` (made on first use),
    writing each row's results into batches as SyncVectorEnv does (auto-reset)."""
    for request in requests:
        n = len(request.session_ids)
        while len(envs) < n:
            envs.append(make(len(envs)))
        actions = np.frombuffer(request.actions["action"].data, np.int64)
        actions = actions.reshape(n, *action_shape)
        observations = np.empty((n, 4), np.float32)
        rewards = np.empty((n, 1), np.float32)
        game_over = np.zeros(n, np.int32)
        time_out = np.zeros(n, np.bool_)
        response = pb.StepManyResponse()
        for row in range(n):
            obs, reward, ended, truncated = step(row, actions[row])
            if ended or truncated:
                response.reset_rows.append(row)
            observations[row] = obs
            rewards[row] = reward
            game_over[row] = ended
            time_out[row] = truncated
        encode_into(response.observations["sensor"], observations)
        encode_into(response.rewards["reward"], rewards)
        encode_into(response.game_over, game_over)
        encode_into(response.time_out, time_out)
        yield response


def _step_many_handler(behaviour) -> grpc.RpcMethodHandler:
    return grpc.stream_stream_rpc_method_handler(
        behaviour,
        request_deserializer=pb.StepManyRequest.FromString,
        response_serializer=pb.StepManyResponse.SerializeToString,
    )


def serve_bare() -> tuple[grpc.Server, int]:
    """Start the bare handlers on a free loopback port; the server and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Session": grpc.stream_stream_rpc_method_handler(
            _session,
            request_deserializer=pb.SessionRequest.FromString,
            response_serializer=pb.SessionResponse.SerializeToString,
        ),
        "StepManyStream": _step_many_handler(_step_many),
        "StepManyGymEnvStream": _step_many_handler(_step_many_env(_gym_env)),
        "StepManyMinimalEnvStream": _step_many_handler(_step_many_env(MinimalCartPole)),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def serve_plain_sessions() -> tuple[grpc.Server, int]:
    """FLARE's servicer (CartPole-v0 sessions) behind plain handlers of FLARE's service:
    what a run over the bridge would cost with none of the server's layers."""
    from flare.bridge.server_settings import ServerSettings
    from flare.bridge.servicer import SimulatorServicer
    from flare.simulator.v1 import SERVICE_NAME

    servicer = SimulatorServicer(
        lambda seed=None, **_: GymEnv("CartPole-v0", seed=seed), ServerSettings()
    )

    def step_many_stream(requests, context):
        for request in requests:
            yield servicer.step_many(request)

    def unary(name: str, request_type, response_type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: getattr(servicer, name)(request, context),
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )

    handlers = {
        name: unary(name, getattr(pb, f"{name}Request"), getattr(pb, f"{name}Response"))
        for name in ("OpenSession", "CloseSession", "GetSpec", "Reset", "GetServerInfo")
    }
    handlers["StepManyStream"] = _step_many_handler(step_many_stream)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


if __name__ == "__main__":
    if sys.argv[1:] != ["sessions"]:
        sys.exit("usage: python benchmarks/bare_simulator.py sessions")
    plain, plain_port = serve_plain_sessions()
    print(f"plain sessions listening on 127.0.0.1:{plain_port}", flush=True)
    plain.wait_for_termination()
