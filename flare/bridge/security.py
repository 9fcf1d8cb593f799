"""Trust for simulators beyond loopback: TLS for the channel, a bearer token for calls."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc

from flare.simulator.v1 import SERVICE_NAME

SIMULATOR_SERVICE = SERVICE_NAME  # (its earlier name here)
AUTH_HEADER = "authorization"

_Request = TypeVar("_Request")
_Response = TypeVar("_Response")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of the server's certificate chain and private key."""

    cert: Path
    key: Path

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(Path(self.key).read_bytes(), Path(self.cert).read_bytes())]
        )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries a bearer token."""
    return ((AUTH_HEADER, f"Bearer {token}"),)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Simulator calls must carry ``authorization: Bearer <token>``; health checks and
    reflection stay open, so load balancers and grpcurl still work."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()

        def deny(request: object, context: grpc.ServicerContext) -> NoReturn:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny_unary: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
            deny
        )
        self._deny_stream: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(
            deny
        )

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[_Request, _Response] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        if not handler_call_details.method.startswith(f"/{SERVICE_NAME}/"):
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(AUTH_HEADER, "")
        # a key without the "-bin" suffix always has a str value; the stubs say str | bytes
        if hmac.compare_digest(presented.encode(), self._expected):  # type: ignore[union-attr]
            return continuation(handler_call_details)
        if handler_call_details.method.endswith("/Session"):
            return self._deny_stream
        return self._deny_unary
