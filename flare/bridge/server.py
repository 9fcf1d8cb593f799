"""Serve any FLARE ``Env`` as a gRPC simulator: start, run until a signal, stop.

The calls are answered by ``flare.bridge.servicer.SimulatorServicer``; this module owns
the process side: binding, TLS and token, health and reflection, the idle reaper, and a
graceful stop.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from flare.bridge.security import TLSFiles, TokenAuthInterceptor, is_loopback_host
from flare.bridge.server_settings import ServerSettings
from flare.bridge.service_handlers import add_simulator_service
from flare.bridge.servicer import EnvFactory, SimulatorServicer
from flare.bridge.stream_admission import StreamAdmission
from flare.simulator.v1 import SERVICE_NAME

__all__ = [
    "SERVICE_NAME",
    "EnvFactory",
    "ServerSettings",
    "SimulatorServer",
    "SimulatorServicer",
    "serve",
    "serve_until_signal",
]

logger = logging.getLogger(__name__)


class SimulatorServer:
    """A running simulator server: its address, its servicer, and how to stop it."""

    def __init__(
        self,
        server: grpc.Server,
        servicer: SimulatorServicer,
        health_servicer: health.HealthServicer,
        address: str,
        streams: StreamAdmission,
    ) -> None:
        self.server = server
        self.servicer = servicer
        self.health = health_servicer
        self.address = address
        self.streams = streams
        self._stop_reaper = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="flare-idle-reaper", daemon=True)
        self._reaper.start()

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def _reap(self) -> None:
        timeout = self.servicer.settings.idle_timeout_s
        interval = min(max(timeout / 4, 0.05), 5.0) if timeout > 0 else 5.0
        while not self._stop_reaper.wait(interval):
            try:
                self.servicer.reap_idle()
                self.streams.reap_idle()
            except Exception:  # noqa: BLE001 - the reaper must outlive any one failure
                logger.exception("the idle reaper failed once; it goes on")

    def stop(self, grace: float = 5.0) -> None:
        """Graceful: report NOT_SERVING, let in-flight calls finish, then close every session."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self._stop_reaper.set()
        self.servicer.shutdown()

    def wait(self) -> None:
        self.server.wait_for_termination()


def serve(
    env_factory: EnvFactory,
    address: str = "127.0.0.1:0",
    *,
    settings: ServerSettings | None = None,
    tls: TLSFiles | None = None,
    token: str | None = None,
    insecure: bool = False,
    block: bool = False,
) -> SimulatorServer:
    """Start a simulator server for ``env_factory`` and return it (port 0 picks a free port).

    ``env_factory(**config, seed=...)`` builds one Env per session from the client's config
    strings (``seed`` only when the client sends one). The server binds 127.0.0.1 by
    default; another interface needs TLS (``tls``) and a bearer ``token``, or an explicit
    ``insecure=True``. With ``block=True`` it serves until SIGINT/SIGTERM, then shuts
    down gracefully.
    """
    settings = settings or ServerSettings()
    host = address.rsplit(":", 1)[0]
    if not is_loopback_host(host) and not insecure and not (tls and token):
        raise ValueError(
            f"refusing to serve on {host!r} without TLS and a bearer token: bind 127.0.0.1, "
            "give tls= and token= (--tls-cert, --tls-key, --token-file), or pass "
            "insecure=True (--insecure) if this network is trusted"
        )
    servicer = SimulatorServicer(env_factory, settings)  # starts any env workers
    try:
        server, health_servicer, streams = _grpc_server(servicer, token)
        port = _bind(server, address, tls)
        server.start()
    except BaseException:
        servicer.shutdown()  # no worker process outlives a failed start
        raise
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    running = SimulatorServer(server, servicer, health_servicer, f"{host}:{port}", streams)
    logger.info("simulator serving on %s", running.address)
    if block:
        serve_until_signal(running)
    return running


def _grpc_server(
    servicer: SimulatorServicer, token: str | None
) -> tuple[grpc.Server, health.HealthServicer, StreamAdmission]:
    """The gRPC server with the simulator, the health service and reflection."""
    settings = servicer.settings
    streams = StreamAdmission(
        settings.stream_limit, settings.max_sessions_per_client, settings.idle_timeout_s
    )
    interceptors: list[grpc.ServerInterceptor] = [streams]
    if token:
        interceptors.insert(0, TokenAuthInterceptor(token))  # refused before admitted
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="flare-rpc"),
        options=_server_options(settings),
        interceptors=interceptors,
        # past this many calls at once (running or queued) gRPC answers RESOURCE_EXHAUSTED
        maximum_concurrent_rpcs=settings.stream_limit + 4 * settings.max_workers,
    )
    add_simulator_service(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server, health_servicer, streams


# A client may ping this often without calls in flight (RemoteEnv never pings on its own;
# gRPC's default, 5 minutes, makes a pinging client's channel fail with "too many pings").
MIN_CLIENT_PING_INTERVAL_MS = 10_000


def _server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        # ping every connection (also between calls) and close it when no answer comes:
        # a stopped or cut-off client's streams then end and free their threads
        ("grpc.keepalive_time_ms", int(settings.keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        # (gRPC >= 1.6x waits for any ping's answer this long, keepalive's included)
        ("grpc.http2.ping_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
    ]
    if settings.idle_timeout_s > 0:  # a connection with no call for this long is closed
        options.append(("grpc.max_connection_idle_ms", int(settings.idle_timeout_s * 2000)))
    return options


def _refuse_a_busy_port(address: str) -> None:
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


def _bind(server: grpc.Server, address: str, tls: TLSFiles | None) -> int:
    _refuse_a_busy_port(address)
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


def serve_until_signal(server: SimulatorServer, grace: float = 5.0) -> None:
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
