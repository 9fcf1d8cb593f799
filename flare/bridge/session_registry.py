"""The sessions one simulator server hosts: opening within a limit, lookup, idle reaping.

No gRPC here: the registry speaks in sessions and its own two errors, which the servicer
(``flare.bridge.servicer``) turns into status codes (RESOURCE_EXHAUSTED, NOT_FOUND).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from flare.bridge.quoting import quoted
from flare.framework.env_spec import EnvSpec

logger = logging.getLogger(__name__)


class HostedSession(Protocol):
    """What the registry needs of a session (a ``Session`` or a ``WorkerSession``)."""

    id: str
    spec: EnvSpec
    last_used: float

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=HostedSession)


class TooManySessions(Exception):
    """The server already hosts its maximum of sessions (or this client its quota)."""


class UnknownSession(LookupError):
    """No open session has this id."""


def new_session_id() -> str:
    """128 random bits from the OS's CSPRNG, as 32 hex digits.

    A session id is a capability: whoever holds it may step, reset and close that session
    (the bearer token, when set, decides who may call at all). So it must be unguessable,
    and it is never logged at a level a client could read nor listed by any call.
    """
    return secrets.token_hex(16)


class SessionRegistry(Generic[S]):
    """Open sessions by id, at most ``max_sessions``, idle ones closed after ``idle_timeout_s``.

    ``opener(session_id, config, seed)`` builds a session (in this process or in an env
    worker). Equal specs are interned, so code that steps many sessions checks "same
    spec" by identity (comparing 63 equal specs field by field cost ~40 us a call).
    With ``max_per_client`` > 0 one client (as the caller names it, e.g. its host) holds
    at most that many sessions, so no single client can take every slot.
    """

    def __init__(
        self,
        opener: Callable[[str, dict[str, str], int | None], S],
        max_sessions: int,
        idle_timeout_s: float,
        max_per_client: int = 0,
    ) -> None:
        self._opener = opener
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.max_per_client = max_per_client
        self._sessions: dict[str, S | None] = {}  # None: a slot being opened
        self._clients: dict[str, str] = {}  # session id -> its client
        self._per_client: dict[str, int] = {}
        self._specs: dict[EnvSpec, EnvSpec] = {}
        self._lock = threading.Lock()

    def open(self, config: dict[str, str], seed: int | None, client: str = "") -> S:
        with self._lock:
            held = self._per_client.get(client, 0)
            if 0 < self.max_per_client <= held:  # (the quota first, as the Node server)
                raise TooManySessions(
                    f"this client already holds its quota of {self.max_per_client} "
                    "sessions on this server; close one first"
                )
            if len(self._sessions) >= self.max_sessions:
                raise TooManySessions(
                    f"this server already hosts its maximum of {self.max_sessions} "
                    "sessions; close one or use another server"
                )
            session_id = new_session_id()
            self._sessions[session_id] = None  # reserve the slot while the env is built
            self._clients[session_id] = client
            self._per_client[client] = held + 1
        try:
            session = self._opener(session_id, config, seed)
        except BaseException:
            with self._lock:
                self._release(session_id)
            raise
        with self._lock:
            session.spec = self._interned(session.spec)
            self._sessions[session_id] = session
        logger.info("opened session %s", session_id)
        return session

    def _release(self, session_id: str) -> S | None:
        """Forget a session and its slot (call with the lock held)."""
        session = self._sessions.pop(session_id, None)
        client = self._clients.pop(session_id, None)
        if client is not None:
            left = self._per_client[client] - 1
            if left:
                self._per_client[client] = left
            else:
                del self._per_client[client]
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

    @property
    def num_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def get(self, session_id: str) -> S:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise UnknownSession(f"no session {quoted(session_id)}")
        return session

    def get_many(self, session_ids: list[str]) -> list[S]:
        """Several sessions looked up under one lock: every unknown id fails before any
        is used."""
        with self._lock:
            found = [self._sessions.get(sid) for sid in session_ids]
        sessions = []
        for session_id, session in zip(session_ids, found, strict=True):
            if session is None:
                raise UnknownSession(f"no session {quoted(session_id)}")
            sessions.append(session)
        return sessions

    def close(self, session_id: str) -> bool:
        with self._lock:
            if self._sessions.get(session_id) is None:  # unknown, or still being opened
                return False
            session = self._release(session_id)
            assert session is not None
            self._forget_spec_if_unused(session.spec)
        session.close()
        logger.info("closed session %s", session_id)
        return True

    def close_all(self) -> None:
        with self._lock:
            ids = [sid for sid, s in self._sessions.items() if s is not None]
        for session_id in ids:
            self.close(session_id)

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close sessions unused for longer than the idle timeout, and forget sessions lost
        with a dead env worker; returns their ids."""
        timeout = self.idle_timeout_s
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
