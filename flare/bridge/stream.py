"""A session driven over the bidirectional ``Session`` stream, with a deadline per call.

gRPC deadlines cover a whole stream, so each request/response pair gets its own: a
small watchdog cancels the stream when an answer is late, and the caller sees
DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from flare.bridge.errors import SimulatorError
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

_END = object()


class _Watchdog:
    """Calls ``on_expiry`` if ``disarm`` does not follow ``arm`` within the timeout.

    ``arm`` and ``disarm`` only write the deadline (no lock, no wake-up: they run on every
    request of a stream's hot path); the watchdog's thread looks at it a few times per
    timeout, so a late answer is caught within about 1.25 timeouts.
    """

    CHECKS_PER_TIMEOUT = 4

    def __init__(self, on_expiry, timeout_s: float) -> None:
        self._on_expiry = on_expiry
        self._poll_s = timeout_s / self.CHECKS_PER_TIMEOUT
        self._stop = threading.Event()
        self._deadline: float | None = None
        self.fired = False
        threading.Thread(target=self._run, name="flare-stream-watchdog", daemon=True).start()

    def arm(self, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s

    def disarm(self) -> None:
        self._deadline = None

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline:
                self._deadline = None
                self.fired = True
                self._on_expiry()


class StreamClosed(Exception):  # noqa: N818 - an outcome, not an error
    """The server ended the stream with OK: there are no more answers."""


class QueuedStream:
    """A bidirectional stream driven one request, one answer at a time: requests go
    through a queue that gRPC's request iterator reads, and each answer has its own
    deadline (``timeout_s``; None: none), past which a watchdog cancels the stream."""

    def __init__(self, open_call: Callable[[Iterator[Any]], Any], timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self.call = open_call(iter(self._requests.get, _END))
        self._watchdog = _Watchdog(self.call.cancel, timeout_s) if timeout_s is not None else None

    @property
    def timed_out(self) -> bool:
        """Whether the watchdog cancelled the stream (an answer came too late)."""
        return self._watchdog is not None and self._watchdog.fired

    @property
    def late(self) -> str:
        """What to say of an answer that came too late."""
        return f"no answer within {self.timeout_s}s; the stream was cancelled"

    def exchange(self, message: Any) -> Any:
        """Send ``message`` and return its answer. The stream's failure is raised as
        gRPC's ``RpcError`` (``timed_out`` says whether the deadline caused it); an end
        with OK as ``StreamClosed``."""
        self.send(message)
        return self.receive()

    def send(self, message: Any) -> None:
        """Send ``message`` without waiting for its answer (``receive`` takes it), e.g. to
        several servers before waiting on any."""
        self._requests.put(message)
        if self._watchdog is not None and self.timeout_s is not None:
            self._watchdog.arm(self.timeout_s)

    def receive(self) -> Any:
        """The answer to the oldest request sent (see ``exchange`` for failures)."""
        try:
            return next(self.call)
        except StopIteration:
            raise StreamClosed("the server ended the stream") from None
        finally:
            if self._watchdog is not None:
                self._watchdog.disarm()

    def close(self) -> None:
        """End the stream (and the watchdog's thread)."""
        self._requests.put(_END)
        if self._watchdog is not None:
            self._watchdog.close()
        self.call.cancel()


class StreamSession:
    """A session on a ``Session`` stream: ``request`` sends one message and returns its answer."""

    def __init__(
        self,
        stub: pb_grpc.SimulatorStub,
        open_request: pb.OpenSessionRequest,
        timeout_s: float,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.timeout_s = timeout_s
        self._stream = QueuedStream(
            lambda requests: stub.Session(requests, wait_for_ready=True, metadata=metadata),
            timeout_s,
        )
        try:
            self.opened = self.request(pb.SessionRequest(open=open_request)).open
        except BaseException:
            self.close()  # no stream, no watchdog thread left behind
            raise

    def request(self, message: pb.SessionRequest) -> pb.SessionResponse:
        try:
            return self._stream.exchange(message)
        except grpc.RpcError as err:
            if self._stream.timed_out:
                raise SimulatorError(grpc.StatusCode.DEADLINE_EXCEEDED, self._stream.late) from None
            raise SimulatorError.from_rpc_error(err) from None
        except StreamClosed:
            raise SimulatorError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the stream"
            ) from None

    def close(self) -> None:
        """End the stream; the server closes the session with it."""
        self._stream.close()
