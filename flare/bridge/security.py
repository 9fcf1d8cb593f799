"""Trust for simulators beyond loopback: TLS for the channel, a bearer token for calls."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import grpc

from flare.simulator.v1 import SERVICE_NAME

SIMULATOR_SERVICE = SERVICE_NAME  # (its earlier name here)
AUTH_HEADER = "authorization"

logger = logging.getLogger(__name__)

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
    """Calls of ``service`` (the simulator's by default) must carry ``authorization:
    Bearer <token>``; health checks and reflection stay open, so load balancers and grpcurl
    still work."""

    def __init__(self, token: str, service: str = SERVICE_NAME) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._guarded = f"/{service}/"

        self._denials: dict[tuple[bool, bool], grpc.RpcMethodHandler[Any, Any]] = {
            (False, False): grpc.unary_unary_rpc_method_handler(_deny),
            (False, True): grpc.unary_stream_rpc_method_handler(_deny),
            (True, False): grpc.stream_unary_rpc_method_handler(_deny),
            (True, True): grpc.stream_stream_rpc_method_handler(_deny),
        }

    def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], grpc.RpcMethodHandler[_Request, _Response] | None
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        if not handler_call_details.method.startswith(self._guarded):
            return continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get(AUTH_HEADER, "")
        # a key without the "-bin" suffix always has a str value; the stubs say str | bytes
        if hmac.compare_digest(presented.encode(), self._expected):  # type: ignore[union-attr]
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:  # an unknown method: UNIMPLEMENTED, as without a token
            return None
        # the denial must stream as the method does (a unary denial of a stream never answers)
        return self._denials[(handler.request_streaming, handler.response_streaming)]


def _deny(request: object, context: grpc.ServicerContext) -> NoReturn:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


# ----- the client's side: where a token may go, and the file it comes from -----------------
def open_channel(
    address: str, tls_root_cert: str | Path | None = None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A channel to ``address``: over TLS, trusting the PEM file ``tls_root_cert``, when it
    is given; in the clear otherwise."""
    if tls_root_cert is not None:
        credentials = grpc.ssl_channel_credentials(Path(tls_root_cert).read_bytes())
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


def is_loopback_address(address: str) -> bool:
    """Whether the gRPC target ``address`` stays on this machine (127.0.0.0/8, ::1,
    localhost, a unix socket), where a token sent without TLS is seen by no network.

    Accepts ``host:port``, ``[v6]:port`` and the ``dns:``, ``ipv4:``, ``ipv6:`` and
    ``unix:`` schemes; anything it cannot read counts as beyond loopback.
    """
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    scheme, sep, rest = address.partition(":")
    if sep and scheme in ("ipv4", "ipv6"):
        targets = rest.split(",")
    elif sep and scheme == "dns":
        if rest.startswith("//"):  # dns://[authority]/host:port
            _, slash, rest = rest[2:].partition("/")
            if not slash:
                return False
        targets = [rest]
    else:
        targets = [address]
    return all(is_loopback_host(_host_of(target)) for target in targets)


def _host_of(target: str) -> str:
    if target.startswith("["):  # [v6]:port
        return target[1:].partition("]")[0]
    if target.count(":") > 1:  # a bare IPv6 address, without a port
        return target
    return target.partition(":")[0]


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this
    machine only."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_channel(
    address: str, token: str | None, tls: bool, insecure: bool, how: str = "insecure=True"
) -> None:
    """Refuse to send a bearer token in the clear beyond loopback: anyone on the path could
    read it and call the simulator. ``how`` names the override in the error."""
    if token and not tls and not insecure and not is_loopback_address(address):
        raise ValueError(
            f"refusing to send the bearer token to {address!r} without TLS, where the network "
            f"can read it: connect over TLS (tls_root_cert, --tls-root-cert), or pass {how} "
            "if this network is trusted"
        )


def token_file_warning(path: Path) -> str | None:
    """A warning when the token file is open to its group or others (mode & 0o077): the
    token is a password to the simulator."""
    mode = Path(path).stat().st_mode & 0o777
    if not mode & 0o077:
        return None
    return (
        f"the token file {path} is open to its group or others (mode {mode:04o}); "
        f"keep it to its owner: chmod 600 {path}"
    )


def read_token_file(path: Path, warn: bool = True) -> str:
    """The bearer token in ``path`` (white space stripped); logs ``token_file_warning``
    unless ``warn`` is false (the command line prints it instead)."""
    if warn:
        warning = token_file_warning(path)
        if warning:
            logger.warning(warning)
    token = Path(path).read_text().strip()
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token
