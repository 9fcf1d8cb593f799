"""RemoteEnv: an ``Env`` whose simulator runs behind a gRPC address."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from flare.bridge.codec import decode, encode
from flare.bridge.errors import SimulatorError
from flare.bridge.specs import spec_from_proto
from flare.bridge.stream import StreamSession
from flare.framework.env import ActionDict, Env, ObservationDict, RewardDict
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc


class RemoteEnv(Env):
    """One session on a simulator server, behind FLARE's Env interface.

    ``agent.set_env(RemoteEnv, address="127.0.0.1:50051", game_name="CartPole-v0")``
    replaces ``agent.set_env(GymEnv, game_name="CartPole-v0")``. Keyword arguments other
    than the ones below become the session's config (as strings).

    Args:
        address: ``host:port`` of the simulator.
        seed: seeds the session's environment.
        timeout_s: the deadline of every call.
        max_message_bytes: the largest message sent or received.
        stream: drive the session over the bidirectional stream (lowest latency; the
            session closes when the stream ends) instead of unary calls.
    """

    def __init__(
        self,
        address: str,
        seed: int | None = None,
        timeout_s: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        stream: bool = True,
        **config: Any,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self._stub = pb_grpc.SimulatorStub(self._channel)
        request = pb.OpenSessionRequest(
            protocol_version=pb.PROTOCOL_VERSION_1, config={k: str(v) for k, v in config.items()}
        )
        if seed is not None:
            request.seed = seed
        self._stream = StreamSession(self._stub, request, timeout_s) if stream else None
        if self._stream is not None:
            response = self._stream.opened
        else:
            response = self._call(self._stub.OpenSession, request, wait_for_ready=True)
        self.session_id = response.session_id
        self._spec = spec_from_proto(response.spec)
        self._action_dtypes = {s.name: s.dtype for s in self._spec.actions}
        self._time_out = False
        self._closed = False

    def _call(self, method, request, wait_for_ready: bool = False):
        try:
            return method(request, timeout=self.timeout_s, wait_for_ready=wait_for_ready)
        except grpc.RpcError as err:
            raise SimulatorError.from_rpc_error(err) from None

    def spec(self) -> EnvSpec:
        return self._spec

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return self._spec.observation_dims()

    def action_dims(self) -> dict[str, int]:
        return self._spec.action_dims()

    def reset(self) -> ObservationDict:
        request = pb.ResetRequest(session_id=self.session_id)
        if self._stream is not None:
            response = self._stream.request(pb.SessionRequest(reset=request)).reset
        else:
            response = self._call(self._stub.Reset, request)
        self._time_out = False
        return {k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()}

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        request = pb.StepRequest(session_id=self.session_id, actrep=actrep)
        for name, value in actions.items():
            dtype = self._action_dtypes.get(name)
            if dtype is None:
                continue  # e.g. log-probabilities an algorithm adds; the simulator never sees them
            array = np.asarray(value)
            if dtype != np.dtype(object):
                array = array.astype(dtype, copy=False)
            request.actions[name].CopyFrom(encode(array, f"actions[{name!r}]"))
        if self._stream is not None:
            response = self._stream.request(pb.SessionRequest(step=request)).step
        else:
            response = self._call(self._stub.Step, request)
        self._time_out = response.time_out
        observations = {
            k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()
        }
        rewards = {k: decode(v, f"rewards[{k!r}]") for k, v in response.rewards.items()}
        return observations, rewards, response.game_over

    def time_out(self) -> bool:
        return self._time_out

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            self._stream.close()
            self._channel.close()
            return
        try:
            self._stub.CloseSession(
                pb.CloseSessionRequest(session_id=self.session_id), timeout=self.timeout_s
            )
        except grpc.RpcError:
            pass  # the server may be gone already; its idle timeout frees the session
        finally:
            self._channel.close()
