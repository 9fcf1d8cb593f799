"""RemoteEnv: an ``Env`` whose simulator runs behind a gRPC address."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import numpy as np

from flare.bridge.codec import decode, encode_into
from flare.bridge.errors import SimulatorError
from flare.bridge.security import bearer, check_token_channel, open_channel
from flare.bridge.specs import spec_from_proto
from flare.bridge.stream import StreamSession
from flare.framework.env import ActionDict, Env, EnvInterrupted, ObservationDict, RewardDict
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

# The simulator went away, restarted (its sessions are gone) or hangs: worth reconnecting.
RECOVERABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)


class RemoteEnv(Env):
    """One session on a simulator server, behind FLARE's Env interface.

    ``agent.set_env(RemoteEnv, address="127.0.0.1:50051", game_name="CartPole-v0")``
    replaces ``agent.set_env(GymEnv, game_name="CartPole-v0")``. Keyword arguments other
    than the ones below become the session's config (as strings).

    When the simulator dies or restarts mid-episode, ``step`` raises ``EnvInterrupted``
    (the agent drops the episode, never storing a false game over) and the next
    ``reset`` reconnects with exponential backoff, for up to ``reconnect_timeout_s``.

    Args:
        address: ``host:port`` of the simulator.
        seed: seeds the session's environment.
        timeout_s: the deadline of every call.
        max_message_bytes: the largest message sent or received.
        stream: drive the session over the bidirectional stream (lowest latency; the
            session closes when the stream ends) instead of unary calls.
        reconnect_timeout_s: how long ``reset`` keeps trying to reach a lost simulator.
        tls_root_cert: a PEM file of the certificate(s) to trust; connects over TLS.
        token: the simulator's bearer token, sent with every call. Without TLS it may
            go only to a loopback address (127.0.0.0/8, ::1, localhost): elsewhere the
            network could read it, so that is a ``ValueError``, before any connection.
        insecure: send ``token`` without TLS beyond loopback anyway (a trusted network).
    """

    def __init__(
        self,
        address: str,
        seed: int | None = None,
        timeout_s: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        stream: bool = True,
        reconnect_timeout_s: float = 60.0,
        tls_root_cert: str | None = None,
        token: str | None = None,
        insecure: bool = False,
        **config: Any,
    ) -> None:
        check_token_channel(address, token, tls=tls_root_cert is not None, insecure=insecure)
        self.address = address
        self.timeout_s = timeout_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self._metadata = bearer(token) if token else ()
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        self._channel = open_channel(address, tls_root_cert, options)
        self._stub = pb_grpc.SimulatorStub(self._channel)
        self._open_request = pb.OpenSessionRequest(
            protocol_version=pb.PROTOCOL_VERSION_1, config={k: str(v) for k, v in config.items()}
        )
        if seed is not None:
            self._open_request.seed = seed
        self._use_stream = stream
        self._stream: StreamSession | None = None
        self.session_id: str | None = None
        self._spec: EnvSpec | None = None
        self._time_out = False
        self._closed = False
        try:
            self._open_session()
        except BaseException:
            self._channel.close()  # a failed construction leaves nothing open
            raise

    # ----- sessions -----------------------------------------------------------------------
    def _call(self, method, request, wait_for_ready: bool = False):
        try:
            return method(
                request,
                timeout=self.timeout_s,
                wait_for_ready=wait_for_ready,
                metadata=self._metadata,
            )
        except grpc.RpcError as err:
            raise SimulatorError.from_rpc_error(err) from None

    def _open_session(self) -> None:
        if self._use_stream:
            self._stream = StreamSession(
                self._stub, self._open_request, self.timeout_s, self._metadata
            )
            response = self._stream.opened
        else:
            response = self._call(self._stub.OpenSession, self._open_request, wait_for_ready=True)
        spec = spec_from_proto(response.spec)
        if self._spec is not None and spec != self._spec:
            raise SimulatorError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the simulator at {self.address} came back with another spec",
            )
        self.session_id = response.session_id
        self._spec = spec
        self._action_dtypes = {s.name: s.dtype for s in spec.actions}

    def _drop_session(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001 - the stream is already broken
                pass
            self._stream = None
        self.session_id = None

    # ----- Env ----------------------------------------------------------------------------
    def spec(self) -> EnvSpec:
        assert self._spec is not None
        return self._spec

    def observation_dims(self) -> dict[str, tuple[int, ...]]:
        return self.spec().observation_dims()

    def action_dims(self) -> dict[str, int]:
        return self.spec().action_dims()

    def reset(self) -> ObservationDict:
        deadline = time.monotonic() + self.reconnect_timeout_s
        delay = 0.1
        while True:
            try:
                if self.session_id is None:
                    self._open_session()
                return self._reset_once()
            except SimulatorError as err:
                if err.code not in RECOVERABLE or time.monotonic() + delay > deadline:
                    raise
                logger.warning(
                    "simulator at %s: %s; reconnecting in %.1fs", self.address, err, delay
                )
                self._drop_session()
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    def _reset_once(self) -> ObservationDict:
        request = pb.ResetRequest(session_id=self.session_id)
        if self._stream is not None:
            response = self._stream.request(pb.SessionRequest(reset=request)).reset
        else:
            response = self._call(self._stub.Reset, request)
        self._time_out = False
        return {k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()}

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if self.session_id is None:
            raise EnvInterrupted(f"no session on {self.address}: call reset()")
        request = pb.StepRequest(session_id=self.session_id, actrep=actrep)
        for name, value in actions.items():
            dtype = self._action_dtypes.get(name)
            if dtype is None:
                continue  # e.g. log-probabilities an algorithm adds; the simulator never sees them
            array = np.asarray(value)
            if dtype != np.dtype(object):
                array = array.astype(dtype, copy=False)
            encode_into(request.actions[name], array, f"actions[{name!r}]")
        try:
            if self._stream is not None:
                response = self._stream.request(pb.SessionRequest(step=request)).step
            else:
                response = self._call(self._stub.Step, request)
        except SimulatorError as err:
            if err.code in RECOVERABLE:
                self._drop_session()
                raise EnvInterrupted(f"simulator at {self.address}: {err}") from err
            raise
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
        if self._stream is None and self.session_id is not None:
            try:
                self._stub.CloseSession(
                    pb.CloseSessionRequest(session_id=self.session_id),
                    timeout=self.timeout_s,
                    metadata=self._metadata,
                )
            except grpc.RpcError:
                pass  # the server may be gone already; its idle timeout frees the session
        self._drop_session()
        self._channel.close()
