"""Steps of many sessions on one server in one ``StepManyStream`` message.

``RemoteEnv.step`` hands a ``StepCall`` to its agent group (``flare.framework.
batched_calls``); the group gives every call of one server, spec and actrep to that
server's ``StepBatcher``, which sends them as one StepMany request (row ``i`` is call
``i``'s session) and splits the answer back into rows. So k agents of a process that
share a server pay one round trip per step instead of k, and each session steps exactly
as it would alone.

The server checks every row before it steps any, so a refused row (named in the status
message) costs its own call only: the others are sent again without it.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from flare.bridge.codec import decode, encode_into
from flare.bridge.connection import ChannelSettings
from flare.bridge.errors import SimulatorError
from flare.bridge.stream import QueuedStream, StreamClosed
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

_ROW = re.compile(r"session_ids\[(\d+)\]")

# the codes whose message names the refused row (every row is checked before any steps)
_ROW_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


@dataclass(frozen=True)
class RowResult:
    """One session's part of a StepMany answer (numpy arrays by name)."""

    observations: dict[str, np.ndarray]
    rewards: dict[str, np.ndarray]
    game_over: int
    time_out: bool


class StepCall:
    """One session's step, to be sent with others of the same server, spec and actrep."""

    __slots__ = ("session_id", "actions", "actrep", "address", "settings", "spec")

    def __init__(
        self,
        session_id: str,
        actions: dict[str, np.ndarray],
        actrep: int,
        address: str,
        settings: ChannelSettings,
        spec: EnvSpec,
    ) -> None:
        self.session_id = session_id
        self.actions = actions  # (already of the spec's dtypes)
        self.actrep = actrep
        self.address = address
        self.settings = settings
        self.spec = spec

    @property
    def batch_key(self) -> Hashable:
        return (self.address, self.settings, self.spec, self.actrep)

    def new_batcher(self) -> StepBatcher:
        return StepBatcher(self.address, self.settings)


class StepBatcher:
    """One ``StepManyStream`` to one server, carrying the steps of a process's sessions.

    The stream is opened on first use and again after a failure (the server restarted,
    a deadline passed): a failed call is every row's error, never a hang.
    """

    def __init__(self, address: str, settings: ChannelSettings) -> None:
        self.address = address
        self.settings = settings
        self._channel: grpc.Channel | None = None
        self._stream: QueuedStream | None = None

    def run(self, calls: Sequence[StepCall]) -> list[object]:
        outcomes: list[object] = [None] * len(calls)
        pending = list(range(len(calls)))
        while pending:  # (at most one pass per refused row)
            try:
                rows = self._step([calls[i] for i in pending])
            except SimulatorError as err:
                refused = _refused_row(err, len(pending))
                if refused is None and err.code in _ROW_CODES and len(pending) > 1:
                    for i in pending:  # (some row's, unnamed: each row alone says whose)
                        outcomes[i] = self._alone(calls[i])
                    return outcomes
                if refused is None:  # (the server, not a row: every row has the error)
                    for i in pending:
                        outcomes[i] = err
                    return outcomes
                outcomes[pending.pop(refused)] = _without_row_prefix(err)
                continue
            for i, row in zip(pending, rows, strict=True):
                outcomes[i] = row
            return outcomes
        return outcomes

    def _alone(self, call: StepCall) -> object:
        try:
            return self._step([call])[0]
        except SimulatorError as err:
            return _without_row_prefix(err)

    def _step(self, calls: Sequence[StepCall]) -> list[RowResult]:
        request = pb.StepManyRequest(actrep=calls[0].actrep)
        request.session_ids.extend(call.session_id for call in calls)
        for name in calls[0].actions:
            stacked = np.stack([call.actions[name] for call in calls])
            encode_into(request.actions[name], stacked, f"actions[{name!r}]")
        response = self.exchange(request)
        return _split(response, len(calls))

    def exchange(self, request: pb.StepManyRequest) -> pb.StepManyResponse:
        """One StepMany request on the stream, and its answer (a failure as SimulatorError)."""
        self.send(request)
        return self.receive()

    def send(self, request: pb.StepManyRequest) -> None:
        """Send without waiting (``receive`` takes the answer): a client of several servers
        sends to each before it waits on any, so they step at the same time."""
        self._open().send(request)

    def receive(self) -> pb.StepManyResponse:
        stream = self._stream
        assert stream is not None, "receive() before send()"
        try:
            return stream.receive()
        except grpc.RpcError as err:
            self._drop()
            if stream.timed_out:
                raise SimulatorError(grpc.StatusCode.DEADLINE_EXCEEDED, stream.late) from None
            raise SimulatorError.from_rpc_error(err) from None
        except StreamClosed:
            self._drop()
            raise SimulatorError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the StepManyStream"
            ) from None

    def _open(self) -> QueuedStream:
        if self._stream is None:
            if self._channel is None:
                self._channel = self.settings.open(self.address)
            stub = pb_grpc.SimulatorStub(self._channel)
            metadata = self.settings.metadata
            self._stream = QueuedStream(
                lambda requests: stub.StepManyStream(requests, metadata=metadata),
                self.settings.timeout_s,
            )
        return self._stream

    def _drop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def close(self) -> None:
        self._drop()
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def _split(response: pb.StepManyResponse, n: int) -> list[RowResult]:
    observations = {k: decode(v, f"observations[{k!r}]") for k, v in response.observations.items()}
    rewards = {k: decode(v, f"rewards[{k!r}]") for k, v in response.rewards.items()}
    game_over = decode(response.game_over, "game_over")
    time_out = decode(response.time_out, "time_out")
    for name, batch in (*observations.items(), *rewards.items(), ("game_over", game_over)):
        if batch.shape[:1] != (n,):
            raise SimulatorError(
                grpc.StatusCode.INTERNAL,
                f"StepMany answered {name!r} with shape {list(batch.shape)} for {n} sessions",
            )
    return [
        RowResult(
            {k: v[i] for k, v in observations.items()},
            {k: v[i] for k, v in rewards.items()},
            int(game_over[i]),
            bool(time_out[i]),
        )
        for i in range(n)
    ]


def _refused_row(err: SimulatorError, rows: int) -> int | None:
    """The row a StepMany refusal names, when the refusal is that row's alone."""
    if err.code not in _ROW_CODES:
        return None
    match = _ROW.search(err.message)
    if match is None:
        return None
    row = int(match.group(1))
    return row if row < rows else None


def _without_row_prefix(err: SimulatorError) -> SimulatorError:
    """The error as the session's own (its row number means nothing to its agent)."""
    return SimulatorError(err.code, _ROW.sub("this session", err.message, count=1))
