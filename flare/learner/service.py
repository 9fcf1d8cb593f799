"""Serve a run's ``flare.learner.v1.Learner`` service: start, stop.

The calls are answered by ``flare.learner.servicer.LearnerServicer``; this module owns
the server: binding (loopback by default; beyond it TLS and a bearer token, or an
explicit ``insecure``, exactly as a simulator server), health and reflection, a bound on
open progress streams, and a graceful stop.
"""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health

from flare.bridge.security import TLSFiles, TokenAuthInterceptor
from flare.bridge.serving import (
    add_health_and_reflection,
    bind,
    connection_options,
    host_of_address,
    refuse_untrusted_exposure,
    set_serving,
)
from flare.bridge.stream_admission import StreamAdmission
from flare.learner.act_service import ActHandler
from flare.learner.servicer import LearnerServicer
from flare.learner.tracker import RunTracker
from flare.learner.v1 import SERVICE_NAME
from flare.learner.v1 import learner_pb2_grpc as pb_grpc

__all__ = ["SERVICE_NAME", "LearnerServer", "LearnerServicer", "serve_learner"]

logger = logging.getLogger(__name__)

# Status messages are small, but an Act stream's observations may be camera frames.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
KEEPALIVE_S = 60.0  # ping each connection this often; close it after KEEPALIVE_TIMEOUT_S
KEEPALIVE_TIMEOUT_S = 20.0
IDLE_CONNECTION_S = 300.0  # a connection without a call for about twice this is closed


class LearnerServer:
    """A running Learner service: its address, and how to stop it."""

    def __init__(
        self,
        server: grpc.Server,
        servicer: LearnerServicer,
        health_servicer: health.HealthServicer,
        streams: StreamAdmission,
        address: str,
    ) -> None:
        self.server = server
        self.servicer = servicer
        self.health = health_servicer
        self.streams = streams
        self.address = address

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def stop(self, grace: float = 2.0) -> None:
        """Graceful: report NOT_SERVING, end the progress streams, let other calls finish
        (within ``grace`` seconds)."""
        self.health.enter_graceful_shutdown()
        self.servicer.close()
        self.server.stop(grace).wait()

    def wait(self) -> None:
        self.server.wait_for_termination()


def serve_learner(
    tracker: RunTracker,
    address: str = "127.0.0.1:0",
    tls: TLSFiles | None = None,
    token: str | None = None,
    insecure: bool = False,
    *,
    max_watchers: int = 16,
    max_workers: int = 8,
    checkpoint_timeout_s: float = 60.0,
    poll_s: float = 0.5,
    act: ActHandler | None = None,
) -> LearnerServer:
    """Serve ``tracker``'s run on ``address`` (port 0 picks a free port) and return the
    running server, whose ``address`` is the one bound.

    The server binds 127.0.0.1 by default; another interface needs TLS (``tls``) and a
    bearer ``token`` (then every Learner call must carry it; health and reflection stay
    open), or an explicit ``insecure=True``. At most ``max_watchers`` streams
    (WatchProgress, health Watch) are open at once, each with its own thread, on top of
    ``max_workers`` threads for the other calls, so watchers never starve a status call.
    With ``act``, the server also takes as many Act streams as the run has external
    agents, each with a thread of its own (one more is refused by the run:
    RESOURCE_EXHAUSTED).
    """
    if max_watchers < 1 or max_workers < 1:
        raise ValueError("max_watchers and max_workers must be >= 1")
    refuse_untrusted_exposure(address, tls, token, insecure)
    servicer = LearnerServicer(tracker, checkpoint_timeout_s, poll_s, act)
    act_streams = len(act.slots) + 1 if act is not None else 0  # (+1: the one refused)
    streams = StreamAdmission(max_watchers + act_streams)
    interceptors: list[grpc.ServerInterceptor] = [streams]
    if token:
        interceptors.insert(0, TokenAuthInterceptor(token, SERVICE_NAME))  # before admission
    server = grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=max_watchers + act_streams + max_workers,
            thread_name_prefix="flare-learner-rpc",
        ),
        options=connection_options(
            MAX_MESSAGE_BYTES, KEEPALIVE_S, KEEPALIVE_TIMEOUT_S, IDLE_CONNECTION_S
        ),
        interceptors=interceptors,
        # past this many calls at once (running or queued) gRPC answers RESOURCE_EXHAUSTED
        maximum_concurrent_rpcs=max_watchers + act_streams + 4 * max_workers,
    )
    pb_grpc.add_LearnerServicer_to_server(servicer, server)
    health_servicer = add_health_and_reflection(server, SERVICE_NAME)
    port = bind(server, address, tls)
    server.start()
    set_serving(health_servicer, ("", SERVICE_NAME))
    running = LearnerServer(
        server, servicer, health_servicer, streams, f"{host_of_address(address)}:{port}"
    )
    logger.info("learner service on %s", running.address)
    return running
