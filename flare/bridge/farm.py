"""A farm: several simulator servers behind one client, sessions spread by their load.

A client asks each live server for its load (``GetServerInfo``) and opens its next
session on the least loaded one. A server that fails (unreachable, or a session lost on
it) is backed off, for longer after each failure in a row; past its quota of failures it
is dropped with a warning. The client goes on while one server lives.

Wherever FLARE takes a simulator's address it takes a farm too: a list of addresses, or
the path of a farm file (one address per line, ``#`` starts a comment), as ``flare farm``
writes it.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from flare.bridge.connection import ChannelSettings
from flare.framework.reports import ServerHealth
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

Addresses = str | Sequence[str]

INFO_TIMEOUT_S = 2.0  # a server that cannot say its load this fast is not the one to pick


def farm_addresses(address: Addresses) -> tuple[str, ...]:
    """The servers ``address`` names: one ``host:port``, a list of them (or one string of
    them separated by commas, as a command line gives it), or a farm file."""
    if isinstance(address, str):
        if is_farm_file(address):
            return read_farm_file(address)
        addresses: tuple[str, ...] = tuple(address.split(",")) if "," in address else (address,)
    else:
        addresses = tuple(address)
    if not addresses or not all(isinstance(a, str) and a.strip() for a in addresses):
        raise ValueError(f"a farm needs one or more host:port addresses, got {address!r}")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"a farm lists an address twice: {list(addresses)}")
    return tuple(a.strip() for a in addresses)


def is_farm_file(address: str) -> bool:
    """Whether ``address`` names a farm file (an existing file) rather than a server."""
    return Path(address).is_file()


def read_farm_file(path: str | Path) -> tuple[str, ...]:
    """The addresses of a farm file: one per line; blank lines and ``#`` comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    addresses = tuple(
        line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()
    )
    if not addresses:
        raise ValueError(f"the farm file {path} lists no address")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"the farm file {path} lists an address twice")
    return addresses


def write_farm_file(path: str | Path, addresses: Sequence[str]) -> None:
    """Write a farm file (atomically: a reader never sees half of one)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(
        "# a FLARE farm: one simulator server per line\n" + "".join(f"{a}\n" for a in addresses),
        encoding="utf-8",
    )
    partial.replace(target)


class ServerState(enum.StrEnum):
    LIVE = "live"
    BACKING_OFF = "backing off"
    DROPPED = "dropped"


@dataclass
class _Server:
    address: str
    failures: int = 0  # in all
    in_a_row: int = 0
    retry_at: float = 0.0
    dropped: bool = False


@dataclass(frozen=True)
class FarmSettings:
    """How a farm client treats failing servers.

    Args:
        max_failures: a server that failed more often than this is dropped.
        backoff_s: the first back-off of a failing server; it doubles with each failure
            in a row, up to ``max_backoff_s``.
    """

    max_failures: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_failures < 0:
            raise ValueError(f"max_failures must be >= 0, got {self.max_failures}")
        if not 0 < self.backoff_s <= self.max_backoff_s:
            raise ValueError(
                f"need 0 < backoff_s <= max_backoff_s, got {self.backoff_s}, {self.max_backoff_s}"
            )


class Farm:
    """One client's view of its servers: which are live, and which to open a session on.

    ``spread`` offsets the tie-break among equally loaded servers, so that clients that
    open sessions at the same moment (e.g. seeded agents) do not all pick the first.
    """

    def __init__(
        self,
        addresses: Sequence[str],
        channel: ChannelSettings,
        settings: FarmSettings | None = None,
        spread: int = 0,
        clock: Callable[[], float] = time.monotonic,
        farm_file: str | Path | None = None,
    ) -> None:
        self.settings = settings or FarmSettings()
        self._channel = channel
        self._servers = [_Server(a) for a in addresses]
        self._spread = spread
        self._clock = clock
        # a farm file is followed: servers that a placement engine (re)starts elsewhere
        # are rewritten into it, and the next choice reads it again
        self._file = Path(farm_file) if farm_file is not None else None
        self._file_version = self._version()

    def _version(self) -> int | None:
        try:
            return self._file.stat().st_mtime_ns if self._file is not None else None
        except OSError:
            return None

    def _follow_file(self) -> None:
        version = self._version()
        if self._file is None or version is None or version == self._file_version:
            return
        try:
            addresses = read_farm_file(self._file)
        except (OSError, ValueError) as err:
            logger.warning(
                "farm file %s unreadable (%s); keeping its last servers", self._file, err
            )
            return
        self._file_version = version
        known = {s.address: s for s in self._servers}
        self._servers = [known.get(a) or _Server(a) for a in addresses]
        gone = sorted(set(known) - set(addresses))
        new = [a for a in addresses if a not in known]
        if gone or new:
            logger.info("farm file %s: new servers %s, gone %s", self._file, new, gone)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(s.address for s in self._servers)

    def health(self) -> tuple[ServerHealth, ...]:
        now = self._clock()
        return tuple(ServerHealth(s.address, _state(s, now), s.failures) for s in self._servers)

    def live(self) -> tuple[str, ...]:
        return tuple(s.address for s in self._servers if not s.dropped)

    def choices(self, channels: Callable[[str], grpc.Channel]) -> list[str]:
        """The servers to try, best first: the live ones out of their back-off, least
        loaded first (by GetServerInfo through ``channels(address)``). A server that cannot
        say its load counts as failed; one that predates GetServerInfo as unloaded. When
        every live server is backing off, the one whose back-off ends first."""
        self._follow_file()
        now = self._clock()
        ready = [s for s in self._servers if not s.dropped and s.retry_at <= now]
        if not ready:
            waiting = sorted((s for s in self._servers if not s.dropped), key=lambda s: s.retry_at)
            return [waiting[0].address] if waiting else []
        loads: list[tuple[float, int, str]] = []
        n = len(self._servers)
        for index, server in enumerate(self._servers):
            if server not in ready:
                continue
            load = self._load(server, channels(server.address)) if n > 1 else 0.0
            if load is None:
                continue
            loads.append((load, (index - self._spread) % n, server.address))
        return [address for _, _, address in sorted(loads)]

    def _load(self, server: _Server, channel: grpc.Channel) -> float | None:
        try:
            info = pb_grpc.SimulatorStub(channel).GetServerInfo(
                pb.GetServerInfoRequest(),
                timeout=min(INFO_TIMEOUT_S, self._channel.timeout_s),
                metadata=self._channel.metadata,
            )
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                return 0.5  # (a server that predates the call: load unknown)
            self.failed(server.address, f"GetServerInfo: {err.code().name}")
            return None
        if info.max_sessions > 0:
            if info.open_sessions >= info.max_sessions:
                return None  # (full: not a failure)
            return info.open_sessions / info.max_sessions
        return info.open_sessions / (info.open_sessions + 64)  # (no limit: fewer is better)

    def failed(self, address: str, why: str) -> None:
        """``address`` failed (unreachable, a session lost): back it off, or drop it."""
        server = self._server(address)
        if server.dropped:
            return
        server.failures += 1
        server.in_a_row += 1
        if server.failures > self.settings.max_failures and len(self.live()) > 1:
            server.dropped = True  # (never the last live one: it is only backed off)
            left = len(self.live())
            logger.warning(
                "simulator %s dropped from the farm after %d failures (latest: %s); "
                "%d of %d servers left",
                address,
                server.failures,
                why,
                left,
                len(self._servers),
            )
            return
        backoff = min(
            self.settings.backoff_s * 2 ** (server.in_a_row - 1), self.settings.max_backoff_s
        )
        server.retry_at = self._clock() + backoff
        logger.warning("simulator %s failed (%s); backing off %.1fs", address, why, backoff)

    def succeeded(self, address: str) -> None:
        """A session opened on ``address``: its back-off starts again from the shortest."""
        server = self._server(address)
        server.in_a_row = 0
        server.retry_at = 0.0

    def _server(self, address: str) -> _Server:
        for server in self._servers:
            if server.address == address:
                return server
        return _Server(address, dropped=True)  # (one the farm file no longer lists)


def _state(server: _Server, now: float) -> ServerState:
    if server.dropped:
        return ServerState.DROPPED
    return ServerState.BACKING_OFF if server.retry_at > now else ServerState.LIVE
