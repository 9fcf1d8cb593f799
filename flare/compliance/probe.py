"""A connection to a simulator under test, with the few calls every check is made of.

Checks speak the wire contract directly (raw messages, exact status codes), never
through ``RemoteEnv``, so they test the server and nothing in between.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2_grpc

from flare.bridge.codec import decode, encode
from flare.bridge.security import bearer, open_channel
from flare.bridge.specs import spec_from_proto
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc


class CheckFailed(AssertionError):
    """The simulator broke the contract; the message says how."""


class CheckSkipped(unittest.SkipTest):
    """The check does not apply to this simulator (e.g. it has no discrete action); a
    ``unittest.SkipTest``, so pytest reports it as skipped."""


@dataclass(frozen=True)
class Target:
    """A simulator to check: its address, the config its sessions are opened with, and
    how far the probes may go.

    Attributes:
        address: ``host:port``.
        config: session config (strings), e.g. ``{"game_name": "CartPole-v0"}``.
        tls_root_cert: PEM file to trust; connects over TLS.
        token: bearer token sent with every call.
        timeout_s: deadline of each call.
        max_sessions_probe: open at most this many sessions looking for the server's
            limit (RESOURCE_EXHAUSTED).
        max_message_probe_mb: send messages up to this size looking for the server's
            message size limit.
        episode_steps_probe: step at most this many times looking for episode ends.
    """

    address: str
    config: dict[str, str] = field(default_factory=dict)
    tls_root_cert: Path | None = None
    token: str | None = None
    timeout_s: float = 10.0
    max_sessions_probe: int = 256
    max_message_probe_mb: int = 256
    episode_steps_probe: int = 3000


@dataclass
class Step:
    """One step's answer, decoded."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: int
    time_out: bool

    @property
    def ended(self) -> bool:
        return self.game_over != 0 or self.time_out


class Probe:
    """Opens sessions on the target and calls it; closes what it opened."""

    def __init__(self, target: Target) -> None:
        self.target = target
        options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        self.channel = open_channel(target.address, target.tls_root_cert, options)
        self.stub = pb_grpc.SimulatorStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = bearer(target.token) if target.token else ()
        self._opened: list[str] = []

    def call(self, method: Callable, request, timeout_s: float | None = None):
        return method(request, timeout=timeout_s or self.target.timeout_s, metadata=self.metadata)

    # ----- sessions ---------------------------------------------------------------------
    def open_request(
        self, seed: int | None = None, config: Mapping[str, str] | None = None
    ) -> pb.OpenSessionRequest:
        """An OpenSession of the target's config (or ``config``, when given)."""
        request = pb.OpenSessionRequest(
            protocol_version=pb.PROTOCOL_VERSION_1,
            config=self.target.config if config is None else config,
        )
        if seed is not None:
            request.seed = seed
        return request

    def open(
        self, seed: int | None = None, config: Mapping[str, str] | None = None
    ) -> tuple[str, EnvSpec]:
        opened = self.call(self.stub.OpenSession, self.open_request(seed, config))
        self._opened.append(opened.session_id)
        return opened.session_id, spec_from_proto(opened.spec)

    def track(self, session_id: str) -> None:
        """Close this session with the others (one a check opened by a raw call)."""
        self._opened.append(session_id)

    def close(self, session_id: str) -> None:
        self.call(self.stub.CloseSession, pb.CloseSessionRequest(session_id=session_id))
        self._opened.remove(session_id)

    def close_all(self) -> None:
        for session_id in list(self._opened):
            try:
                self.close(session_id)
            except grpc.RpcError:
                self._opened.remove(session_id)  # already gone (e.g. the check closed it)
        self.channel.close()

    def reset(self, session_id: str, seed: int | None = None) -> dict[str, np.ndarray]:
        request = pb.ResetRequest(session_id=session_id)
        if seed is not None:
            request.seed = seed
        return decoded(self.call(self.stub.Reset, request).observations)

    def step(self, session_id: str, actions: dict[str, np.ndarray], actrep: int = 0) -> Step:
        request = pb.StepRequest(session_id=session_id, actrep=actrep)
        for name, array in actions.items():
            request.actions[name].CopyFrom(encode(array))
        return decoded_step(self.call(self.stub.Step, request))

    # ----- expectations -----------------------------------------------------------------
    def expect_status(self, code: grpc.StatusCode, what: str) -> AbstractContextManager[None]:
        """The block must fail with exactly ``code``."""
        return expect_status(code, what)


@contextmanager
def expect_status(code: grpc.StatusCode, what: str, names: str = "") -> Iterator[None]:
    """The block must fail with exactly ``code``, its message naming ``names`` (if given)."""
    try:
        yield
    except grpc.RpcError as err:
        if err.code() != code:
            raise CheckFailed(
                f"{what}: expected {code.name}, got {err.code().name} ({err.details()})"
            ) from None
        if names and names not in (err.details() or ""):
            raise CheckFailed(
                f"{what}: the message {err.details()!r} does not name {names!r}"
            ) from None
        return
    raise CheckFailed(f"{what}: expected {code.name}, but the call succeeded")


def decoded(tensors: Mapping[str, pb.Tensor]) -> dict[str, np.ndarray]:
    """A message's tensor map as arrays by name."""
    return {name: decode(tensor) for name, tensor in tensors.items()}


def decoded_step(answer: pb.StepResponse) -> Step:
    return Step(
        decoded(answer.observations),
        decoded(answer.rewards),
        answer.game_over,
        answer.time_out,
    )


def valid_action(spec: ArraySpec, rng: np.random.Generator) -> np.ndarray:
    """A random action inside the spec's bounds."""
    kind = spec.kind
    if spec.dtype == np.dtype(object):
        return np.full(spec.shape, "a", dtype=object)
    if isinstance(kind, Discrete):
        return rng.integers(0, kind.num_values, spec.shape).astype(spec.dtype)
    if isinstance(kind, Language):
        return rng.integers(0, kind.vocabulary_size, spec.shape).astype(spec.dtype)
    if isinstance(kind, Continuous):
        low = np.asarray(kind.low, dtype=np.float64)
        high = np.asarray(kind.high, dtype=np.float64)
        # within [-1, 1] where the bounds allow (infinite bounds are common), else inside them
        values = rng.uniform(np.clip(-1.0, low, high), np.clip(1.0, low, high))
        return values.reshape(spec.shape).astype(spec.dtype)
    return np.zeros(spec.shape, dtype=spec.dtype)


def valid_actions(spec: EnvSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {action.name: valid_action(action, rng) for action in spec.actions}


def action_plan(spec: EnvSpec, seed: int, length: int) -> list[dict[str, np.ndarray]]:
    """A reproducible sequence of valid actions."""
    rng = np.random.default_rng(seed)
    return [valid_actions(spec, rng) for _ in range(length)]
