"""Serve any FLARE ``Env`` as a gRPC simulator (``flare.simulator.v1.Simulator``)."""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from flare.bridge.errors import SimulatorError, invalid, precondition
from flare.bridge.security import TLSFiles, TokenAuthInterceptor
from flare.bridge.session import Session, open_session
from flare.bridge.specs import spec_to_proto
from flare.bridge.step_many import step_sessions
from flare.bridge.workers import WorkerPool, WorkerSession
from flare.framework.env import Env
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Simulator"].full_name
EnvFactory = Callable[..., Env]


@dataclass(frozen=True)
class ServerSettings:
    """Limits of one simulator server.

    Attributes:
        max_sessions: open sessions at once; one more is RESOURCE_EXHAUSTED.
        idle_timeout_s: a session unused this long is closed (a vanished client never
            leaks an env); 0 disables it.
        max_message_bytes: the largest message received or sent.
        max_workers: threads serving calls.
        env_processes: worker processes that host the envs (sessions spread evenly);
            0 hosts them in the server process. With N > 0, StepMany steps the sessions
            of different workers in parallel (N cores), and an env that crashes its
            process (e.g. a segfault in native code) loses its worker's sessions, not
            the server. The env factory must then be picklable (a module-level function
            or class).
    """

    max_sessions: int = 64
    idle_timeout_s: float = 300.0
    max_message_bytes: int = 64 * 1024 * 1024
    max_workers: int = 16
    env_processes: int = 0


class SimulatorServicer(pb_grpc.SimulatorServicer):
    """Hosts many sessions, each an Env made by ``env_factory(**config, seed=...)``."""

    def __init__(self, env_factory: EnvFactory, settings: ServerSettings) -> None:
        self.env_factory = env_factory
        self.settings = settings
        self._sessions: dict[str, Session | WorkerSession] = {}
        # one object per distinct spec, so StepMany's "same spec" check is an identity test
        # (comparing 63 equal specs field by field cost ~40 us a call)
        self._specs: dict[EnvSpec, EnvSpec] = {}
        self._lock = threading.Lock()
        self.workers = (
            WorkerPool(env_factory, settings.env_processes) if settings.env_processes else None
        )

    # ----- sessions -----------------------------------------------------------------------
    def open(self, request: pb.OpenSessionRequest) -> Session | WorkerSession:
        if request.protocol_version != pb.PROTOCOL_VERSION_1:
            raise precondition(
                f"protocol_version {request.protocol_version} is not supported; "
                f"this server speaks {pb.PROTOCOL_VERSION_1} (PROTOCOL_VERSION_1)"
            )
        with self._lock:
            if len(self._sessions) >= self.settings.max_sessions:
                raise SimulatorError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"this server already hosts its maximum of {self.settings.max_sessions} "
                    "sessions; close one or use another server",
                )
            session_id = uuid.uuid4().hex
            self._sessions[session_id] = None  # type: ignore[assignment]  # reserve the slot
        config = dict(request.config)
        seed = request.seed if request.HasField("seed") else None
        try:
            if self.workers is not None:
                session = self.workers.open(session_id, config, seed)
            else:
                session = open_session(self.env_factory, session_id, config, seed)
        except BaseException:
            with self._lock:
                self._sessions.pop(session_id, None)
            raise
        with self._lock:
            session.spec = self._interned(session.spec)
            self._sessions[session_id] = session
        logger.info("opened session %s with config %s", session_id, dict(request.config))
        return session

    def _interned(self, spec: EnvSpec) -> EnvSpec:
        try:
            return self._specs.setdefault(spec, spec)
        except TypeError:  # unhashable (e.g. a user's spec with a list for a shape)
            return spec

    def _forget_spec_if_unused(self, spec: EnvSpec) -> None:
        """Drop an interned spec with its last session (configs may make endless specs)."""
        if any(s is not None and s.spec is spec for s in self._sessions.values()):
            return
        try:
            if self._specs.get(spec) is spec:
                del self._specs[spec]
        except TypeError:  # unhashable: never interned
            pass

    @property
    def num_specs(self) -> int:
        """Distinct specs of the open sessions (interned)."""
        with self._lock:
            return len(self._specs)

    def get(self, session_id: str) -> Session | WorkerSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise SimulatorError(grpc.StatusCode.NOT_FOUND, f"no session {session_id!r}")
        return session

    def close(self, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._forget_spec_if_unused(session.spec)
        if session is None:
            return False
        session.close()
        logger.info("closed session %s", session_id)
        return True

    def shutdown(self) -> None:
        """Close every session, then stop the env workers (if any)."""
        with self._lock:
            ids = [sid for sid, s in self._sessions.items() if s is not None]
        for session_id in ids:
            self.close(session_id)
        if self.workers is not None:
            self.workers.stop()

    @property
    def num_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close sessions unused for longer than the idle timeout, and forget sessions lost
        with a dead env worker; returns their ids."""
        timeout = self.settings.idle_timeout_s
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [
                (sid, s.closed)
                for sid, s in self._sessions.items()
                if s is not None and (s.closed or 0 < timeout < now - s.last_used)
            ]
        for session_id, lost in stale:
            if lost:
                logger.warning("forgetting session %s: its env worker died", session_id)
            else:
                logger.warning("closing session %s: idle for %.0fs", session_id, timeout)
            self.close(session_id)
        return [session_id for session_id, _ in stale]

    # ----- RPCs ---------------------------------------------------------------------------
    @staticmethod
    def _opened(session: Session) -> pb.OpenSessionResponse:
        return pb.OpenSessionResponse(session_id=session.id, spec=spec_to_proto(session.spec))

    def OpenSession(self, request, context):  # noqa: N802 - gRPC names
        with _status(context):
            return self._opened(self.open(request))

    def CloseSession(self, request, context):  # noqa: N802
        with _status(context):
            if not self.close(request.session_id):
                raise SimulatorError(
                    grpc.StatusCode.NOT_FOUND, f"no session {request.session_id!r}"
                )
            return pb.CloseSessionResponse()

    def GetSpec(self, request, context):  # noqa: N802
        with _status(context):
            return pb.GetSpecResponse(spec=spec_to_proto(self.get(request.session_id).spec))

    def Reset(self, request, context):  # noqa: N802
        with _status(context):
            return self.get(request.session_id).reset()

    def Step(self, request, context):  # noqa: N802
        with _status(context):
            return self.get(request.session_id).step(request)

    def StepMany(self, request, context):  # noqa: N802
        with _status(context):
            return self.step_many(request)

    def StepManyStream(self, request_iterator, context) -> Iterator:  # noqa: N802
        for request in request_iterator:
            try:
                response = self.step_many(request)
            except Exception as err:  # noqa: BLE001 - becomes the stream's status
                _abort(context, err)
            yield response

    def step_many(self, request: pb.StepManyRequest) -> pb.StepManyResponse:
        """Step many sessions of one spec with batched actions; optionally auto-reset."""
        ids = list(request.session_ids)
        if not ids:
            raise invalid("StepMany: session_ids is empty")
        if len(set(ids)) != len(ids):
            raise invalid("StepMany: each session may appear once per call")
        with self._lock:  # every NOT_FOUND before any step
            found = [self._sessions.get(sid) for sid in ids]
        sessions = [session or self.get(sid) for sid, session in zip(ids, found, strict=True)]
        spec = sessions[0].spec
        for index, session in enumerate(sessions[1:], start=1):
            if session.spec is not spec and session.spec != spec:
                raise invalid(
                    f"StepMany: session_ids[{index}] has another spec than session_ids[0]"
                )
        actions = sessions[0].checks.decode_actions(request.actions, batch=len(ids))
        if self.workers is not None:
            result = self.workers.step_many(sessions, actions, request.actrep, request.auto_reset)
        else:
            result = step_sessions(sessions, actions, request.actrep, request.auto_reset)
        return result.fill(pb.StepManyResponse())

    def Session(self, request_iterator: Iterator[pb.SessionRequest], context) -> Iterator:  # noqa: N802
        session: Session | None = None
        try:
            for request in request_iterator:
                try:  # not `with _status(...)`: this is the per-step hot path
                    response = pb.SessionResponse()
                    which = request.WhichOneof("request")
                    if which == "step" and session is not None:
                        session.step(request.step, response.step)
                    elif which == "open":
                        if session is not None:
                            raise precondition("this stream already has a session")
                        session = self.open(request.open)
                        response.open.CopyFrom(self._opened(session))
                    elif session is None:
                        raise precondition("the first message of a stream must be `open`")
                    elif which == "reset":
                        response.reset.CopyFrom(session.reset())
                    else:
                        raise invalid("empty SessionRequest")
                except Exception as err:  # noqa: BLE001 - becomes the stream's status
                    _abort(context, err)
                yield response
        finally:
            if session is not None:  # the stream ended: so does its session
                self.close(session.id)


@contextmanager
def _status(context: grpc.ServicerContext) -> Iterator[None]:
    """Turn a SimulatorError into the call's gRPC status; never let the server die."""
    try:
        yield
    except Exception as err:  # noqa: BLE001
        _abort(context, err)


def _abort(context: grpc.ServicerContext, err: Exception) -> NoReturn:
    """End the call with the error's status (a bug must cost one call, not the server)."""
    if isinstance(err, SimulatorError):
        context.abort(err.code, err.message)
    logger.error("unexpected error in a simulator call", exc_info=err)
    context.abort(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")


class SimulatorServer:
    """A running simulator server: its address, its servicer, and how to stop it."""

    def __init__(
        self, server: grpc.Server, servicer: SimulatorServicer, health_servicer, address: str
    ) -> None:
        self.server = server
        self.servicer = servicer
        self.health = health_servicer
        self.address = address
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
            self.servicer.reap_idle()

    def stop(self, grace: float = 5.0) -> None:
        """Graceful: report NOT_SERVING, let in-flight calls finish, then close every session."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self._stop_reaper.set()
        self.servicer.shutdown()

    def wait(self) -> None:
        self.server.wait_for_termination()


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    if not _is_loopback(host) and not insecure and not (tls and token):
        raise ValueError(
            f"refusing to serve on {host!r} without TLS and a bearer token: bind 127.0.0.1, "
            "give tls= and token= (--tls-cert, --tls-key, --token-file), or pass "
            "insecure=True (--insecure) if this network is trusted"
        )
    servicer = SimulatorServicer(env_factory, settings)  # starts any env workers
    try:
        server, health_servicer = _grpc_server(servicer, token)
        port = _bind(server, address, tls)
        server.start()
    except BaseException:
        servicer.shutdown()  # no worker process outlives a failed start
        raise
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    running = SimulatorServer(server, servicer, health_servicer, f"{host}:{port}")
    logger.info("simulator serving on %s", running.address)
    if block:
        serve_until_signal(running)
    return running


def _grpc_server(
    servicer: SimulatorServicer, token: str | None
) -> tuple[grpc.Server, health.HealthServicer]:
    """The gRPC server with the simulator, the health service and reflection."""
    settings = servicer.settings
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers),
        options=options,
        interceptors=[TokenAuthInterceptor(token)] if token else [],
    )
    pb_grpc.add_SimulatorServicer_to_server(servicer, server)
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
    return server, health_servicer


def _bind(server: grpc.Server, address: str, tls: TLSFiles | None) -> int:
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
