"""A connection to a learner under test, for the Act contract's checks (``check-learner``).

Like the simulator's probe, it speaks raw messages and sees exact status codes, never
through ``ActClient``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import numpy as np
from grpc_health.v1 import health_pb2_grpc

from flare.bridge.codec import encode
from flare.bridge.security import bearer, open_channel
from flare.bridge.specs import spec_from_proto, spec_to_proto
from flare.bridge.stream import QueuedStream, StreamClosed
from flare.compliance.probe import valid_action
from flare.framework.env_spec import EnvSpec
from flare.learner.v1 import learner_pb2 as pb
from flare.learner.v1 import learner_pb2_grpc as pb_grpc


class StreamEndedOK(Exception):  # noqa: N818 - an outcome the checks look for
    """The learner ended the stream with OK (the run needs no more of its games)."""


@dataclass(frozen=True)
class LearnerTarget:
    """A learner to check: its address, how to reach it, how long each answer may take.

    The learner must take Act streams (``[act] streams`` >= 1): the checks open streams
    and play a few steps on it, so point them at a run made for testing, not at a run
    whose games matter.
    """

    address: str
    tls_root_cert: Path | None = None
    token: str | None = None
    timeout_s: float = 10.0


class RawActStream:
    """One Act stream, a message at a time: ``send`` returns the reply, or raises the
    stream's status (``grpc.RpcError``) or ``StreamEndedOK``."""

    def __init__(
        self, stub: pb_grpc.LearnerStub, metadata: tuple[tuple[str, str], ...], timeout_s: float
    ) -> None:
        self.timeout_s = timeout_s
        self._stream = QueuedStream(
            lambda requests: stub.Act(requests, metadata=metadata), timeout_s
        )
        self.closed = False
        self.agent: int | None = None  # (once opened: the run's agent it plays as)

    def send(self, request: pb.ActRequest) -> pb.ActReply:
        try:
            return self._stream.exchange(request)
        except StreamClosed:
            raise StreamEndedOK("the learner ended the stream with OK") from None

    def open(
        self,
        spec: EnvSpec,
        version: int = pb.ACT_PROTOCOL_VERSION_1,
        config: Mapping[str, str] | None = None,
    ) -> pb.ActOpened:
        message = pb.ActOpen(
            protocol_version=cast("pb.ActProtocolVersion", version), spec=spec_to_proto(spec)
        )
        message.config.update(config or {})
        opened = self.send(pb.ActRequest(open=message)).opened
        self.agent = opened.agent
        return opened

    def step(self, message: pb.ActStep) -> pb.ActActions:
        return self.send(pb.ActRequest(step=message)).actions

    @property
    def code(self) -> grpc.StatusCode | None:
        """The stream's status once it ended (None while it is open)."""
        call = self._stream.call
        return call.code() if not call.is_active() else None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stream.close()


class LearnerProbe:
    """Opens Act streams on the target and asks it for its status; closes what it opened."""

    def __init__(self, target: LearnerTarget) -> None:
        self.target = target
        self.channel = open_channel(
            target.address,
            target.tls_root_cert,
            [("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        self.stub = pb_grpc.LearnerStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.metadata = bearer(target.token) if target.token else ()
        self._streams: list[RawActStream] = []

    def status(self) -> pb.RunStatus:
        return self.stub.GetStatus(
            pb.GetStatusRequest(), timeout=self.target.timeout_s, metadata=self.metadata
        )

    def act_spec(self) -> tuple[EnvSpec | None, int]:
        """The spec Act streams must declare, and how many the run takes at once."""
        reply = self.stub.GetActSpec(
            pb.GetActSpecRequest(), timeout=self.target.timeout_s, metadata=self.metadata
        )
        spec = spec_from_proto(reply.spec) if reply.HasField("spec") else None
        return spec, reply.act_streams_max

    def stream(self) -> RawActStream:
        stream = RawActStream(self.stub, self.metadata, self.target.timeout_s)
        self._streams.append(stream)
        return stream

    def close_all(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()
        self.channel.close()


def valid_observations(spec: EnvSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Observations of the spec's dtypes and shapes, inside their kinds' bounds."""
    return {s.name: valid_action(s, rng) for s in spec.observations}


def step_message(
    spec: EnvSpec,
    rng: np.random.Generator,
    rewards: bool = True,
    game_over: int = 0,
    time_out: bool = False,
) -> pb.ActStep:
    """A valid step: observations of the spec, and (``rewards``) a reward of 0.5 each."""
    message = pb.ActStep(game_over=game_over, time_out=time_out)
    for name, array in valid_observations(spec, rng).items():
        message.observations[name].CopyFrom(encode(array))
    if rewards:
        for name in spec.reward_names:
            message.rewards[name].CopyFrom(encode(np.array([0.5], dtype=np.float32)))
    return message
