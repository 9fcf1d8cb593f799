"""LearnerClient: ask a running learner about its run, checkpoint it, stop it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from flare.bridge.errors import WireError
from flare.bridge.security import bearer, check_token_channel, open_channel
from flare.framework.run_events import CheckpointInfo
from flare.learner.messages import checkpoint_from_proto, event_from_proto, status_from_proto
from flare.learner.status import ProgressEvent, RunStatus
from flare.learner.v1 import learner_pb2 as pb
from flare.learner.v1 import learner_pb2_grpc as pb_grpc

_Reply = TypeVar("_Reply")


class LearnerError(WireError):
    """A learner call failed with a gRPC status; ``code`` says which, the message why
    (UNAVAILABLE: no learner answers at the address)."""


class LearnerClient:
    """The ``flare.learner.v1.Learner`` service of one learner, as Python calls that
    answer with the learner's own data classes (``RunStatus``, ``ProgressEvent``,
    ``CheckpointInfo``). Every failure is a ``LearnerError``.

    Args:
        address: ``host:port`` of the learner.
        tls_root_cert: a PEM file of the certificate(s) to trust; connects over TLS.
        token: the learner's bearer token, sent with every call. Without TLS it may go
            only to a loopback address: elsewhere the network could read it, so that is
            a ``ValueError``, before any connection.
        insecure: send ``token`` without TLS beyond loopback anyway (a trusted network).
        timeout_s: the deadline of every call but ``watch``.
    """

    def __init__(
        self,
        address: str,
        tls_root_cert: str | Path | None = None,
        token: str | None = None,
        insecure: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        check_token_channel(address, token, tls=tls_root_cert is not None, insecure=insecure)
        self.address = address
        self.timeout_s = timeout_s
        self._metadata = bearer(token) if token else ()
        self._channel = open_channel(address, tls_root_cert)
        self._stub = pb_grpc.LearnerStub(self._channel)

    def status(self) -> RunStatus:
        """The run's status now."""
        return status_from_proto(self._call(self._stub.GetStatus, pb.GetStatusRequest()))

    def watch(self, timeout_s: float | None = None) -> Iterator[ProgressEvent]:
        """The run's progress events from now on, until the FINISHED one. No deadline
        unless ``timeout_s`` (a stream lasts as long as the run); leaving the loop (or
        closing the iterator) cancels the stream."""
        call = self._stub.WatchProgress(
            pb.WatchProgressRequest(), timeout=timeout_s, metadata=self._metadata
        )
        try:
            for message in call:
                yield event_from_proto(message)
        except grpc.RpcError as err:
            raise LearnerError.from_rpc_error(err) from None
        finally:
            call.cancel()

    def save_checkpoint(self, timeout_s: float | None = None) -> CheckpointInfo:
        """Write a checkpoint of the run now; answers once it is on disk (within
        ``timeout_s``, by default the client's)."""
        reply = self._call(self._stub.SaveCheckpoint, pb.SaveCheckpointRequest(), timeout_s)
        return checkpoint_from_proto(reply.checkpoint)

    def stop(self, reason: str = "") -> RunStatus:
        """Stop the run gracefully, as SIGTERM would; the status just after the request
        (STOPPING). ``watch`` says when it has finished."""
        reply = self._call(self._stub.Stop, pb.StopRequest(reason=reason))
        return status_from_proto(reply.status)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LearnerClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self, method: Callable[..., _Reply], request: Any, timeout_s: float | None = None
    ) -> _Reply:
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as err:
            raise LearnerError.from_rpc_error(err) from None
