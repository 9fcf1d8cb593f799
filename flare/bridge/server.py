"""Serve any FLARE ``Env`` as a gRPC simulator: start, run until a signal, stop.

The calls are answered by ``flare.bridge.servicer.SimulatorServicer``; this module owns
the process side: binding, TLS and token, health and reflection, the idle reaper, and a
graceful stop.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health

from flare.bridge.security import TLSFiles, TokenAuthInterceptor
from flare.bridge.server_settings import ServerSettings
from flare.bridge.service_handlers import add_simulator_service
from flare.bridge.servicer import EnvFactory, SimulatorServicer
from flare.bridge.serving import (
    add_health_and_reflection,
    bind,
    connection_options,
    host_of_address,
    refuse_untrusted_exposure,
    set_serving,
)
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
    refuse_untrusted_exposure(address, tls, token, insecure)
    servicer = SimulatorServicer(env_factory, settings)  # starts any env workers
    try:
        server, health_servicer, streams = _grpc_server(servicer, token)
        port = bind(server, address, tls)
        server.start()
    except BaseException:
        servicer.shutdown()  # no worker process outlives a failed start
        raise
    set_serving(health_servicer, ("", SERVICE_NAME))
    address = f"{host_of_address(address)}:{port}"
    running = SimulatorServer(server, servicer, health_servicer, address, streams)
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
    servicer.stream_load = lambda: (streams.num_streams, streams.max_streams)
    interceptors: list[grpc.ServerInterceptor] = [streams]
    if token:
        interceptors.insert(0, TokenAuthInterceptor(token))  # refused before admitted
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix="flare-rpc"),
        options=connection_options(
            settings.max_message_bytes,
            settings.keepalive_s,
            settings.keepalive_timeout_s,
            settings.idle_timeout_s,
        ),
        interceptors=interceptors,
        # past this many calls at once (running or queued) gRPC answers RESOURCE_EXHAUSTED
        maximum_concurrent_rpcs=settings.stream_limit + 4 * settings.max_workers,
    )
    add_simulator_service(servicer, server)
    return server, add_health_and_reflection(server, SERVICE_NAME), streams


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
