"""The limits of one simulator server (``flare serve`` options map onto them)."""

from __future__ import annotations

from dataclasses import dataclass

# streams beyond one per session: StepManyStreams, health Watches, reflection
EXTRA_STREAMS = 16


@dataclass(frozen=True)
class ServerSettings:
    """Limits of one simulator server.

    Attributes:
        max_sessions: open sessions at once; one more is RESOURCE_EXHAUSTED.
        idle_timeout_s: a session unused this long is closed and its stream cancelled,
            and a stream that carries no message this long is cancelled (a paused or
            vanished client never holds an env or a thread); 0 disables it.
        max_message_bytes: the largest message received or sent.
        max_workers: threads for unary calls and health checks. Every admitted stream
            has a thread of its own on top of these, so open streams never starve them.
        max_streams: open streams at once (``Session``, ``StepManyStream``, health
            ``Watch``); one more is RESOURCE_EXHAUSTED. None: ``max_sessions`` + 16, so
            every session can have its stream.
        max_sessions_per_client: sessions, and streams, one client (its host, as the
            server sees it) may hold at once; 0 sets no quota. Clients behind one NAT or
            proxy share a quota.
        keepalive_s: the server pings a connection this often (HTTP/2 PING), and closes
            it if no answer comes within ``keepalive_timeout_s``: a stopped or cut-off
            client's streams end and free their threads.
        keepalive_timeout_s: see ``keepalive_s``.
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
    max_streams: int | None = None
    max_sessions_per_client: int = 0
    keepalive_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    env_processes: int = 0

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_message_bytes", "max_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_streams is not None and self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")
        for name in ("idle_timeout_s", "max_sessions_per_client", "env_processes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("keepalive_s", "keepalive_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def stream_limit(self) -> int:
        """``max_streams``, or its default."""
        return (
            self.max_streams if self.max_streams is not None else self.max_sessions + EXTRA_STREAMS
        )

    @property
    def threads(self) -> int:
        """The server's thread pool: one per admitted stream plus the unary workers."""
        return self.stream_limit + self.max_workers
