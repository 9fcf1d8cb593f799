"""The limits of one simulator server (``flare serve`` options map onto them)."""

from __future__ import annotations

from dataclasses import dataclass


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
