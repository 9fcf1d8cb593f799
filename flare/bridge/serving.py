"""What every FLARE gRPC server shares, the simulator's and the learner's: the trust rule
for its address, binding its port, its connection options, health and reflection.

One copy, so the two servers cannot drift apart on who may reach them.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from flare.bridge.security import TLSFiles, is_loopback_host

# A client may ping this often without calls in flight (RemoteEnv never pings on its own;
# gRPC's default, 5 minutes, makes a pinging client's channel fail with "too many pings").
MIN_CLIENT_PING_INTERVAL_MS = 10_000


def host_of_address(address: str) -> str:
    """The host of a ``HOST:PORT`` address (``[v6]:port`` keeps its brackets)."""
    return address.rsplit(":", 1)[0]


def refuse_untrusted_exposure(
    address: str, tls: TLSFiles | None, token: str | None, insecure: bool
) -> None:
    """Binding beyond loopback needs TLS and a bearer token, or an explicit ``insecure``:
    anyone on the network could otherwise call the server."""
    host = host_of_address(address)
    if not is_loopback_host(host) and not insecure and not (tls and token):
        raise ValueError(
            f"refusing to serve on {host!r} without TLS and a bearer token: bind 127.0.0.1, "
            "give tls= and token= (--tls-cert, --tls-key, --token-file), or pass "
            "insecure=True (--insecure) if this network is trusted"
        )


def connection_options(
    max_message_bytes: int, keepalive_s: float, keepalive_timeout_s: float, idle_timeout_s: float
) -> list[tuple[str, int]]:
    """A server's channel options: message limits, keepalive pings that close the
    connections of stopped or cut-off clients, and the idle-connection timeout (0: none)."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
        # ping every connection (also between calls) and close it when no answer comes:
        # a stopped or cut-off client's streams then end and free their threads
        ("grpc.keepalive_time_ms", int(keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(keepalive_timeout_s * 1000)),
        # (gRPC >= 1.6x waits for any ping's answer this long, keepalive's included)
        ("grpc.http2.ping_timeout_ms", int(keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
    ]
    if idle_timeout_s > 0:  # a connection with no call for this long is closed
        options.append(("grpc.max_connection_idle_ms", int(idle_timeout_s * 2000)))
    return options


def refuse_a_busy_port(address: str) -> None:
    """Say so in one line when the port is taken (gRPC would also log a C-level error)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise OSError(f"could not bind {address}: {err}") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(sockaddr)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise OSError(f"port {port} is already in use ({address})") from None
                raise OSError(f"could not bind {address}: {err.strerror}") from None


def bind(server: grpc.Server, address: str, tls: TLSFiles | None) -> int:
    """Add the port (over TLS when ``tls`` is given); the port bound, or a one-line
    ``OSError``."""
    refuse_a_busy_port(address)
    try:
        if tls is not None:
            port = server.add_secure_port(address, tls.server_credentials())
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as err:  # grpcio raises on a busy or bad address
        raise OSError(f"could not bind {address}: {err}") from None
    if port == 0:
        raise OSError(f"could not bind {address}")
    return port


def add_health_and_reflection(server: grpc.Server, service_name: str) -> health.HealthServicer:
    """The standard services, so load balancers and grpcurl work: health (answered by the
    returned servicer; see ``set_serving``) and reflection listing ``service_name``."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            service_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return health_servicer


def set_serving(health_servicer: health.HealthServicer, names: Iterable[str]) -> None:
    """Report SERVING for each service name (``""`` is the whole server)."""
    for name in names:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
