"""The gRPC face of a simulator server: ``flare.simulator.v1.Simulator``'s calls.

Each call is checked and answered here; the sessions themselves live in a
``SessionRegistry`` (no gRPC in it), and the server's lifecycle in ``flare.bridge.server``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import NoReturn

import grpc

import flare
from flare.bridge.errors import SimulatorError, bounded, invalid, precondition, quoted
from flare.bridge.server_settings import ServerSettings
from flare.bridge.session import Session, check_actrep, open_session
from flare.bridge.session_registry import SessionRegistry, TooManySessions, UnknownSession
from flare.bridge.specs import spec_to_proto
from flare.bridge.step_many import step_sessions
from flare.bridge.stream_admission import client_of
from flare.bridge.workers import WorkerPool, WorkerSession
from flare.framework.env import Env
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

EnvFactory = Callable[..., Env]

_SEED_BITS = (1 << 64) - 1


def env_seed(seed: int) -> int:
    """The seed an env factory gets for a wire seed: every int64 maps to a distinct
    non-negative int (two's complement), since Gymnasium and numpy refuse negative seeds."""
    return seed & _SEED_BITS


class SimulatorServicer(pb_grpc.SimulatorServicer):
    """Hosts many sessions, each an Env made by ``env_factory(**config, seed=...)``."""

    def __init__(self, env_factory: EnvFactory, settings: ServerSettings) -> None:
        self.env_factory = env_factory
        self.settings = settings
        self.workers = (
            WorkerPool(env_factory, settings.env_processes) if settings.env_processes else None
        )
        opener = (
            self.workers.open if self.workers is not None else partial(open_session, env_factory)
        )
        self.sessions: SessionRegistry[Session | WorkerSession] = SessionRegistry(
            opener,
            settings.max_sessions,
            settings.idle_timeout_s,
            settings.max_sessions_per_client,
        )
        # (open, maximum) streams now, for GetServerInfo: the server's stream admission
        # sets it (a servicer on its own counts none)
        self.stream_load: Callable[[], tuple[int, int]] = lambda: (0, 0)
        # the stream that owns each session opened on a Session stream: a session closed
        # by the reaper cancels its stream, which would otherwise wait for the client
        self._streams: dict[str, grpc.ServicerContext] = {}
        self._streams_lock = threading.Lock()

    # ----- sessions -----------------------------------------------------------------------
    def open(self, request: pb.OpenSessionRequest, client: str = "") -> Session | WorkerSession:
        if request.protocol_version != pb.PROTOCOL_VERSION_1:
            raise precondition(
                f"protocol_version {request.protocol_version} is not supported; "
                f"this server speaks {pb.PROTOCOL_VERSION_1} (PROTOCOL_VERSION_1)"
            )
        seed = env_seed(request.seed) if request.HasField("seed") else None
        try:
            return self.sessions.open(dict(request.config), seed, client)
        except TooManySessions as err:
            raise SimulatorError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err)) from None

    def get(self, session_id: str) -> Session | WorkerSession:
        try:
            return self.sessions.get(session_id)
        except UnknownSession as err:
            raise SimulatorError(grpc.StatusCode.NOT_FOUND, str(err)) from None

    def close(self, session_id: str) -> bool:
        return self.sessions.close(session_id)

    def shutdown(self) -> None:
        """Close every session, then stop the env workers (if any)."""
        self.sessions.close_all()
        if self.workers is not None:
            self.workers.stop()

    @property
    def num_sessions(self) -> int:
        return self.sessions.num_sessions

    @property
    def num_specs(self) -> int:
        """Distinct specs of the open sessions (interned)."""
        return self.sessions.num_specs

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close idle sessions and forget those lost with a dead env worker; a reaped
        session's stream is cancelled (its client sees CANCELLED) and its thread freed."""
        reaped = self.sessions.reap_idle(now)
        with self._streams_lock:
            streams = [self._streams.pop(sid, None) for sid in reaped]
        for context in streams:
            if context is not None:
                context.cancel()
        return reaped

    # ----- RPCs ---------------------------------------------------------------------------
    @staticmethod
    def _opened(session: Session | WorkerSession) -> pb.OpenSessionResponse:
        return pb.OpenSessionResponse(session_id=session.id, spec=spec_to_proto(session.spec))

    def OpenSession(  # noqa: N802 - gRPC names
        self, request: pb.OpenSessionRequest, context: grpc.ServicerContext
    ) -> pb.OpenSessionResponse:
        with _status(context):
            return self._opened(self.open(request, client_of(context)))

    def CloseSession(  # noqa: N802
        self, request: pb.CloseSessionRequest, context: grpc.ServicerContext
    ) -> pb.CloseSessionResponse:
        with _status(context):
            if not self.close(request.session_id):
                raise SimulatorError(
                    grpc.StatusCode.NOT_FOUND, f"no session {quoted(request.session_id)}"
                )
            return pb.CloseSessionResponse()

    def GetSpec(  # noqa: N802
        self, request: pb.GetSpecRequest, context: grpc.ServicerContext
    ) -> pb.GetSpecResponse:
        with _status(context):
            return pb.GetSpecResponse(spec=spec_to_proto(self.get(request.session_id).spec))

    def Reset(  # noqa: N802
        self, request: pb.ResetRequest, context: grpc.ServicerContext
    ) -> pb.ResetResponse:
        with _status(context):
            return self.get(request.session_id).reset(_reset_seed(request))

    def Step(  # noqa: N802
        self, request: pb.StepRequest, context: grpc.ServicerContext
    ) -> pb.StepResponse:
        with _status(context):
            return self.get(request.session_id).step(request)

    def StepMany(  # noqa: N802
        self, request: pb.StepManyRequest, context: grpc.ServicerContext
    ) -> pb.StepManyResponse:
        with _status(context):
            return self.step_many(request)

    def StepManyStream(  # noqa: N802
        self, request_iterator: Iterator[pb.StepManyRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.StepManyResponse]:
        for request in request_iterator:
            try:
                response = self.step_many(request)
            except Exception as err:  # noqa: BLE001 - becomes the stream's status
                _abort(context, err)
            yield response

    def GetServerInfo(  # noqa: N802
        self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext
    ) -> pb.GetServerInfoResponse:
        with _status(context):
            return self.server_info()

    def server_info(self) -> pb.GetServerInfoResponse:
        """The server's load, for a farm client choosing where to open its next session."""
        open_streams, max_streams = self.stream_load()
        return pb.GetServerInfoResponse(
            protocol_versions=[pb.PROTOCOL_VERSION_1],
            server_version=f"flare {flare.__version__}",
            open_sessions=self.num_sessions,
            max_sessions=self.settings.max_sessions,
            open_streams=open_streams,
            max_streams=max_streams,
        )

    def step_many(self, request: pb.StepManyRequest) -> pb.StepManyResponse:
        """Step many sessions of one spec with batched actions; optionally auto-reset."""
        ids = list(request.session_ids)
        if not ids:
            raise invalid("StepMany: session_ids is empty")
        if len(set(ids)) != len(ids):
            raise invalid("StepMany: each session may appear once per call")
        try:  # every NOT_FOUND before any step
            sessions = self.sessions.get_many(ids)
        except UnknownSession as err:
            raise SimulatorError(grpc.StatusCode.NOT_FOUND, str(err)) from None
        spec = sessions[0].spec
        for index, session in enumerate(sessions[1:], start=1):
            if session.spec is not spec and session.spec != spec:
                raise invalid(
                    f"StepMany: session_ids[{index}] has another spec than session_ids[0]"
                )
        actions = sessions[0].checks.decode_actions(request.actions, batch=len(ids))
        check_actrep(request.actrep)
        for index, session in enumerate(sessions):  # every row can step before any does
            try:
                session.check_running()
            except SimulatorError as err:
                raise SimulatorError(err.code, f"session_ids[{index}]: {err.message}") from None
        if self.workers is not None:
            # with workers, every session the registry opens is a WorkerSession: a link
            # between two attributes that the types cannot state (and no check per call)
            result = self.workers.step_many(
                sessions,  # type: ignore[arg-type]
                actions,
                request.actrep,
                request.auto_reset,
            )
        else:
            result = step_sessions(sessions, actions, request.actrep, request.auto_reset)
        return result.fill(pb.StepManyResponse())

    def Session(  # noqa: N802
        self, request_iterator: Iterator[pb.SessionRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.SessionResponse]:
        session: Session | WorkerSession | None = None
        try:
            for request in request_iterator:
                try:  # not `with _status(...)`: this is the per-step hot path
                    response = pb.SessionResponse()
                    which = request.WhichOneof("request")
                    if which == "step" and session is not None:
                        if request.step.session_id and request.step.session_id != session.id:
                            raise _another_session(request.step.session_id)
                        session.step(request.step, response.step)
                    elif which == "open":
                        if session is not None:
                            raise precondition("this stream already has a session")
                        session = self.open(request.open, client_of(context))
                        with self._streams_lock:
                            self._streams[session.id] = context
                        response.open.CopyFrom(self._opened(session))
                    elif session is None:
                        raise precondition("the first message of a stream must be `open`")
                    elif which == "reset":
                        if request.reset.session_id and request.reset.session_id != session.id:
                            raise _another_session(request.reset.session_id)
                        response.reset.CopyFrom(session.reset(_reset_seed(request.reset)))
                    else:
                        raise invalid("empty SessionRequest")
                except Exception as err:  # noqa: BLE001 - becomes the stream's status
                    _abort(context, err)
                yield response
        finally:
            if session is not None:  # the stream ended: so does its session
                with self._streams_lock:
                    self._streams.pop(session.id, None)
                self.close(session.id)


def _reset_seed(request: pb.ResetRequest) -> int | None:
    return env_seed(request.seed) if request.HasField("seed") else None


def _another_session(session_id: str) -> SimulatorError:
    return invalid(
        f"session_id {quoted(session_id)} names another session than this stream's own "
        "(leave it empty on a Session stream)"
    )


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
        context.abort(err.code, bounded(err.message))
    logger.error("unexpected error in a simulator call", exc_info=err)
    context.abort(grpc.StatusCode.INTERNAL, bounded(f"{type(err).__name__}: {err}"))
