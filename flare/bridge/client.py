"""RemoteEnv: an ``Env`` whose simulator runs behind a gRPC address, or a farm of them."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import numpy as np

from flare.bridge.codec import decode, encode_into
from flare.bridge.connection import ChannelSettings
from flare.bridge.errors import SimulatorError
from flare.bridge.farm import Addresses, Farm, FarmSettings, farm_addresses, is_farm_file
from flare.bridge.specs import spec_from_proto
from flare.bridge.step_batch import RowResult, StepBatcher, StepCall
from flare.bridge.stream import StreamSession
from flare.framework.batched_calls import NOT_IN_A_GROUP, call_batched
from flare.framework.env import ActionDict, Env, EnvInterrupted, ObservationDict, RewardDict
from flare.framework.env_spec import EnvSpec
from flare.framework.reports import ServerHealth
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
    """One session on a simulator server (or on one server of a farm), behind FLARE's
    Env interface.

    ``agent.set_env(RemoteEnv, address="127.0.0.1:50051", game_name="CartPole-v0")``
    replaces ``agent.set_env(GymEnv, game_name="CartPole-v0")``. Keyword arguments other
    than the ones below become the session's config (as strings).

    ``address`` may name a farm: a list of addresses, or a farm file
    (``flare.bridge.farm``). The session then opens on the least loaded live server; when
    that server dies, ``step`` raises ``EnvInterrupted`` (the agent drops the episode,
    never storing a false game over) and the next ``reset`` opens a session on a live
    server. A failing server is backed off, and dropped past ``max_server_failures``
    (never the last one). With one server, ``reset`` reconnects with exponential backoff
    for up to ``reconnect_timeout_s``, as for a farm whose servers are all down.

    Steps of the agents of one process that share a server go as one ``StepManyStream``
    message (``batch``, the default; ``flare.bridge.step_batch``): one round trip per
    step for all of them, each session stepping exactly as it would alone.

    Args:
        address: ``host:port`` of the simulator, a list of them, or a farm file.
        seed: seeds the session's environment (and spreads sessions over a farm).
        timeout_s: the deadline of every call.
        max_message_bytes: the largest message sent or received.
        stream: drive the session over a stream (lowest latency) instead of unary calls.
        batch: with ``stream``, step over a ``StepManyStream`` shared by the agents of the
            process (the session is opened with a unary call and closed by ``close``);
            False: a ``Session`` stream of its own (the session closes with the stream).
        reconnect_timeout_s: how long ``reset`` keeps trying to reach a live simulator.
        max_server_failures: a farm server that failed more often is dropped.
        tls_root_cert: a PEM file of the certificate(s) to trust; connects over TLS.
        token: the simulator's bearer token, sent with every call. Without TLS it may
            go only to a loopback address (127.0.0.0/8, ::1, localhost): elsewhere the
            network could read it, so that is a ``ValueError``, before any connection.
        insecure: send ``token`` without TLS beyond loopback anyway (a trusted network).
    """

    def __init__(
        self,
        address: Addresses,
        seed: int | None = None,
        timeout_s: float = 30.0,
        max_message_bytes: int = 64 * 1024 * 1024,
        stream: bool = True,
        batch: bool = True,
        reconnect_timeout_s: float = 60.0,
        max_server_failures: int = 5,
        tls_root_cert: str | None = None,
        token: str | None = None,
        insecure: bool = False,
        **config: Any,
    ) -> None:
        addresses = farm_addresses(address)
        self._settings = ChannelSettings(
            timeout_s, max_message_bytes, tls_root_cert, token, insecure
        )
        for each in addresses:
            self._settings.check(each)
        self.address = addresses[0]  # (the server of the current session)
        self.timeout_s = timeout_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self._metadata = self._settings.metadata
        self._farm = Farm(
            addresses,
            self._settings,
            FarmSettings(max_server_failures),
            spread=seed or 0,
            farm_file=address if isinstance(address, str) and is_farm_file(address) else None,
        )
        self._channels: dict[str, grpc.Channel] = {}
        self._open_request = pb.OpenSessionRequest(
            protocol_version=pb.PROTOCOL_VERSION_1, config={k: str(v) for k, v in config.items()}
        )
        if seed is not None:
            self._open_request.seed = seed
        self._use_stream = stream and not batch
        self._batch = stream and batch
        self._own_batcher: StepBatcher | None = None  # (stepping outside an agent group)
        self._stream: StreamSession | None = None
        self.session_id: str | None = None
        self._spec: EnvSpec | None = None
        self._time_out = False
        self._next_seed: int | None = None  # (the next reset's, from reseed)
        self._closed = False
        try:
            self._open_session()
        except BaseException:
            self._close_channels()  # a failed construction leaves nothing open
            raise

    # ----- servers and sessions -----------------------------------------------------------
    @property
    def addresses(self) -> tuple[str, ...]:
        """The servers this env may open its session on."""
        return self._farm.addresses

    def farm_health(self) -> tuple[ServerHealth, ...]:
        """What this env knows of each of its servers (live, backing off, dropped)."""
        return self._farm.health()

    @property
    def settings(self) -> ChannelSettings:
        """How this env connects (deadline, TLS, token): a client stepping its session
        on its own stream opens it with these."""
        return self._settings

    def lost_server(self, why: str) -> None:
        """The session's server failed (as a step of its own would find): count it
        against the server and drop the session; the next ``reset`` opens one on a
        live server."""
        self._farm.failed(self.address, why)
        self._drop_session()

    def _channel(self, address: str) -> grpc.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = self._settings.open(address)
        return channel

    def _stub(self) -> pb_grpc.SimulatorStub:
        return pb_grpc.SimulatorStub(self._channel(self.address))

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
        """Open the session on the best server that answers; the last error if none."""
        choices = self._farm.choices(self._channel)
        if not choices:
            raise SimulatorError(
                grpc.StatusCode.UNAVAILABLE,
                f"no simulator of {list(self.addresses)} is left (all dropped)",
            )
        error: SimulatorError | None = None
        for address in choices:
            try:
                self._open_session_on(address, wait_for_ready=len(self.addresses) == 1)
            except SimulatorError as err:
                if err.code not in RECOVERABLE and err.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                if err.code != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self._farm.failed(address, f"{err.code.name}: {err.message}")
                error = err
                continue
            self._farm.succeeded(address)
            return
        assert error is not None
        raise error

    def _open_session_on(self, address: str, wait_for_ready: bool) -> None:
        stub = pb_grpc.SimulatorStub(self._channel(address))
        if self._use_stream:
            self._stream = StreamSession(stub, self._open_request, self.timeout_s, self._metadata)
            response = self._stream.opened
        else:
            response = self._call(stub.OpenSession, self._open_request, wait_for_ready)
        spec = spec_from_proto(response.spec)
        if self._spec is not None and spec != self._spec:
            self.address, self.session_id = address, response.session_id
            self._drop_session()
            raise SimulatorError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the simulator at {address} serves another spec than this env's",
            )
        self.address = address
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
        elif self.session_id is not None:
            self._close_unary_session()
        self.session_id = None

    def _close_unary_session(self) -> None:
        try:
            self._stub().CloseSession(
                pb.CloseSessionRequest(session_id=self.session_id),
                timeout=min(self.timeout_s, 2.0),
                metadata=self._metadata,
            )
        except grpc.RpcError:
            pass  # the server may be gone already; its idle timeout frees the session

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
                if self.session_id is not None:  # (the reset failed: so did its server)
                    self._farm.failed(self.address, f"Reset: {err.code.name}")
                    self._drop_session()
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    def reseed(self, seed: int) -> bool:
        """The next reset sends ``seed``: the server starts the episode a session opened
        with that seed would start with."""
        self._next_seed = seed
        return True

    def _reset_once(self) -> ObservationDict:
        request = pb.ResetRequest(session_id=self.session_id)
        if self._next_seed is not None:
            request.seed = self._next_seed
        if self._stream is not None:
            response = self._stream.request(pb.SessionRequest(reset=request)).reset
        else:
            response = self._call(self._stub().Reset, request)
        self._next_seed = None
        self._time_out = False
        return {k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()}

    def step(self, actions: ActionDict, actrep: int = 1) -> tuple[ObservationDict, RewardDict, int]:
        if self.session_id is None:
            raise EnvInterrupted(f"no session on {self.address}: call reset()")
        try:
            if self._batch:
                result = self._step_batched(actions, actrep)
            else:
                result = self._step_alone(actions, actrep)
        except SimulatorError as err:
            if err.code in RECOVERABLE:
                self.lost_server(f"a session lost: {err.code.name}")
                raise EnvInterrupted(f"simulator at {self.address}: {err}") from err
            raise
        self._time_out = result.time_out
        return result.observations, result.rewards, result.game_over

    def _typed_actions(self, actions: ActionDict) -> dict[str, np.ndarray]:
        typed = {}
        for name, value in actions.items():
            dtype = self._action_dtypes.get(name)
            if dtype is None:
                continue  # e.g. log-probabilities an algorithm adds; the simulator never sees them
            array = np.asarray(value)
            if dtype != np.dtype(object):
                array = array.astype(dtype, copy=False)
            typed[name] = array
        return typed

    def _step_batched(self, actions: ActionDict, actrep: int) -> RowResult:
        assert self.session_id is not None
        call = StepCall(
            self.session_id,
            self._typed_actions(actions),
            actrep,
            self.address,
            self._settings,
            self.spec(),
        )
        outcome = call_batched(call)  # (raises the call's error)
        if outcome is NOT_IN_A_GROUP:
            if self._own_batcher is None or self._own_batcher.address != self.address:
                self._close_own_batcher()
                self._own_batcher = call.new_batcher()
            outcome = self._own_batcher.run([call])[0]
            if isinstance(outcome, SimulatorError):
                raise outcome
        assert isinstance(outcome, RowResult)
        return outcome

    def _step_alone(self, actions: ActionDict, actrep: int) -> RowResult:
        request = pb.StepRequest(session_id=self.session_id, actrep=actrep)
        for name, array in self._typed_actions(actions).items():
            encode_into(request.actions[name], array, f"actions[{name!r}]")
        if self._stream is not None:
            response = self._stream.request(pb.SessionRequest(step=request)).step
        else:
            response = self._call(self._stub().Step, request)
        return RowResult(
            {k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()},
            {k: decode(v, f"rewards[{k!r}]") for k, v in response.rewards.items()},
            response.game_over,
            response.time_out,
        )

    def time_out(self) -> bool:
        return self._time_out

    def _close_own_batcher(self) -> None:
        if self._own_batcher is not None:
            self._own_batcher.close()
            self._own_batcher = None

    def _close_channels(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_session()
        self._close_own_batcher()
        self._close_channels()
