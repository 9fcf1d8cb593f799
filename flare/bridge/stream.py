"""A session driven over the bidirectional ``Session`` stream, with a deadline per call.

gRPC deadlines cover a whole stream, so each request/response pair gets its own: a
small watchdog cancels the stream when an answer is late, and the caller sees
DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import queue
import threading
import time

import grpc

from flare.bridge.errors import SimulatorError
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

_END = object()


class Watchdog:
    """Calls ``on_expiry`` if ``disarm`` does not follow ``arm`` within the timeout."""

    def __init__(self, on_expiry) -> None:
        self._on_expiry = on_expiry
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self.fired = False
        threading.Thread(target=self._run, name="flare-stream-watchdog", daemon=True).start()

    def arm(self, timeout_s: float) -> None:
        with self._cond:
            self._deadline = time.monotonic() + timeout_s
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._deadline = None
                self.fired = True
                self._on_expiry()


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
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._call = stub.Session(
            iter(self._requests.get, _END), wait_for_ready=True, metadata=metadata
        )
        self._watchdog = Watchdog(self._call.cancel)
        try:
            self.opened = self.request(pb.SessionRequest(open=open_request)).open
        except BaseException:
            self.close()  # no stream, no watchdog thread left behind
            raise

    def request(self, message: pb.SessionRequest) -> pb.SessionResponse:
        self._requests.put(message)
        self._watchdog.arm(self.timeout_s)
        try:
            return next(self._call)
        except grpc.RpcError as err:
            if self._watchdog.fired:
                raise SimulatorError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no answer within {self.timeout_s}s; the stream was cancelled",
                ) from None
            raise SimulatorError.from_rpc_error(err) from None
        except StopIteration:
            raise SimulatorError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the stream"
            ) from None
        finally:
            self._watchdog.disarm()

    def close(self) -> None:
        """End the stream; the server closes the session with it."""
        self._requests.put(_END)
        self._watchdog.close()
        self._call.cancel()
