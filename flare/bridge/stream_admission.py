"""Streams on a threaded gRPC server: a bounded number, each freed when it ends or idles.

Every open stream (a ``Session``, a ``StepManyStream``, a health ``Watch``) holds one of
the server's threads for its whole life. Unbounded, a client could open more streams
than there are threads and starve every other call, health checks included. So the
server has one thread per admitted stream on top of those for unary calls, and this
interceptor admits at most ``max_streams`` streams (``max_per_client`` per client): the
next one is RESOURCE_EXHAUSTED at once, never queued behind the others.

A bidirectional stream that carries no message for ``idle_timeout_s`` is cancelled by
``reap_idle`` (called by the server's reaper), so a paused client cannot hold a slot
forever; keepalive pings close the connections of clients that vanished.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

logger = logging.getLogger(__name__)


def client_of(context: grpc.ServicerContext) -> str:
    """The caller's host, as gRPC names its peer without the port (``ipv4:127.0.0.1:5000``
    -> ``ipv4:127.0.0.1``); an IPv4-mapped IPv6 peer is its IPv4 host, as in Node."""
    peer = context.peer() or ""
    if peer.startswith("ipv4:"):
        return peer.rsplit(":", 1)[0]
    if peer.startswith("ipv6:"):
        host = peer[len("ipv6:") :].rsplit(":", 1)[0].strip("[]")
        try:
            mapped = ipaddress.IPv6Address(host.split("%", 1)[0]).ipv4_mapped
        except ValueError:
            mapped = None
        return f"ipv4:{mapped}" if mapped is not None else f"ipv6:{host}"
    return peer  # e.g. unix:/path: the peer is the client


@dataclass
class StreamTicket:
    """One admitted stream: whose it is, how to cancel it, and when it last moved."""

    number: int
    client: str
    method: str
    cancel: Callable[[], object]
    reapable: bool  # a bidirectional stream; a health Watch may rightly idle forever
    last_active: float = field(default_factory=time.monotonic)


class StreamAdmission(grpc.ServerInterceptor):
    """Admits at most ``max_streams`` open streams (``max_per_client`` per client, 0: no
    quota); see the module docstring."""

    def __init__(self, max_streams: int, max_per_client: int = 0, idle_timeout_s: float = 0):
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self.max_streams = max_streams
        self.max_per_client = max_per_client
        self.idle_timeout_s = idle_timeout_s
        self._open: dict[int, StreamTicket] = {}
        self._per_client: dict[str, int] = {}
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    @property
    def num_streams(self) -> int:
        with self._lock:
            return len(self._open)

    # ----- admission ----------------------------------------------------------------------
    def _admit(self, context: grpc.ServicerContext, method: str, reapable: bool) -> StreamTicket:
        client = client_of(context)
        with self._lock:
            if len(self._open) >= self.max_streams:
                refusal = (
                    f"this server already carries its maximum of {self.max_streams} open "
                    "streams; close one or use another server"
                )
            elif 0 < self.max_per_client <= self._per_client.get(client, 0):
                refusal = (
                    f"this client already holds its quota of {self.max_per_client} open "
                    "streams on this server"
                )
            else:
                ticket = StreamTicket(next(self._numbers), client, method, context.cancel, reapable)
                self._open[ticket.number] = ticket
                self._per_client[client] = self._per_client.get(client, 0) + 1
                return ticket
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        raise AssertionError("unreachable: abort raises")

    def _release(self, ticket: StreamTicket) -> None:
        with self._lock:
            if self._open.pop(ticket.number, None) is None:
                return
            left = self._per_client[ticket.client] - 1
            if left:
                self._per_client[ticket.client] = left
            else:
                del self._per_client[ticket.client]

    def reap_idle(self, now: float | None = None) -> int:
        """Cancel bidirectional streams idle past the timeout; how many were cancelled."""
        timeout = self.idle_timeout_s
        if timeout <= 0:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [t for t in self._open.values() if t.reapable and now - t.last_active > timeout]
        for ticket in stale:
            logger.warning(
                "cancelling a %s stream of %s: no message for %.0fs",
                ticket.method,
                ticket.client,
                timeout,
            )
            ticket.cancel()
            self._release(ticket)  # its thread frees itself; the slot is free now
        return len(stale)

    # ----- wrapping the handlers ----------------------------------------------------------
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not handler.response_streaming:
            return handler  # a unary answer holds its thread only while it is computed
        method = handler_call_details.method
        if handler.request_streaming and handler.stream_stream is not None:
            return handler._replace(  # type: ignore[attr-defined]  # (a namedtuple)
                stream_stream=self._bidirectional(handler.stream_stream, method)
            )
        if handler.unary_stream is not None:
            return handler._replace(  # type: ignore[attr-defined]
                unary_stream=self._server_streaming(handler.unary_stream, method)
            )
        return handler

    def _bidirectional(self, behavior: Callable[..., Iterator[Any]], method: str):
        def handle(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            ticket = self._admit(context, method, reapable=True)
            try:
                for response in behavior(_touching(requests, ticket), context):
                    ticket.last_active = time.monotonic()
                    yield response
            finally:
                self._release(ticket)

        return handle

    def _server_streaming(self, behavior: Callable[..., Iterator[Any]], method: str):
        def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            ticket = self._admit(context, method, reapable=False)
            try:
                yield from behavior(request, context)
            finally:
                self._release(ticket)

        return handle


def _touching(requests: Iterator[Any], ticket: StreamTicket) -> Iterator[Any]:
    for request in requests:
        ticket.last_active = time.monotonic()
        yield request
