"""A farm on this machine: N simulator servers started together, stopped together.

``flare farm --servers 4 gym --game CartPole-v1`` runs ``flare serve gym --game
CartPole-v1`` four times on free loopback ports, writes their addresses to a farm file
(``farm.txt``) that ``flare train``, ``RemoteEnv`` and ``flare check-sim`` take as an
address, and stops every server at Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

from flare.bridge.farm import write_farm_file
from flare.bridge.launch import flare_command, simulator_process

logger = logging.getLogger(__name__)

MAX_LOCAL_SERVERS = 256


def serve_command(serve_args: Sequence[str], host: str = "127.0.0.1") -> list[str]:
    """``flare serve SERVE_ARGS`` on a free port of ``host``. The farm picks the ports, so
    ``--address`` is refused here."""
    if any(arg == "--address" or arg.startswith("--address=") for arg in serve_args):
        raise ValueError("flare farm picks each server's port: give --host, not --address")
    if not serve_args or serve_args[0].startswith("-"):
        raise ValueError("flare farm needs the TARGET of flare serve (e.g. `gym --game ...`)")
    return [*flare_command(), "serve", *serve_args, "--address", f"{host}:0"]


class LocalFarm:
    """``servers`` copies of ``command`` (a simulator that prints ``listening on
    HOST:PORT``), started in parallel; ``addresses`` once the ``with`` block is entered,
    written to ``farm_file`` when one is given. All stop when the block ends, as does any
    already started when one fails to start."""

    def __init__(
        self,
        command: Sequence[str],
        servers: int,
        farm_file: str | Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        if not 1 <= servers <= MAX_LOCAL_SERVERS:
            raise ValueError(f"servers must be in [1, {MAX_LOCAL_SERVERS}], got {servers}")
        self.command = list(command)
        self.servers = servers
        self.farm_file = Path(farm_file) if farm_file is not None else None
        self.cwd = cwd
        self.addresses: tuple[str, ...] = ()
        self._stack = ExitStack()

    def __enter__(self) -> LocalFarm:
        started: list[str | BaseException] = [""] * self.servers
        contexts = [simulator_process(self.command, cwd=self.cwd) for _ in range(self.servers)]

        def start(i: int) -> None:
            try:
                started[i] = contexts[i].__enter__()
            except BaseException as err:  # noqa: BLE001 - reported below, after the others
                started[i] = err

        threads = [threading.Thread(target=start, args=(i,)) for i in range(self.servers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for context, outcome in zip(contexts, started, strict=True):
            if not isinstance(outcome, BaseException):
                self._stack.push(context.__exit__)
        failures = [outcome for outcome in started if isinstance(outcome, BaseException)]
        if failures:
            self._stack.close()
            raise failures[0]
        self.addresses = tuple(str(address) for address in started)
        if self.farm_file is not None:
            write_farm_file(self.farm_file, self.addresses)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()  # (each server gets SIGTERM: a graceful stop)
        if self.farm_file is not None:
            self.farm_file.unlink(missing_ok=True)


def run_farm(
    serve_args: Sequence[str],
    servers: int,
    farm_file: Path,
    host: str,
    say: Callable[[str], None] = logger.info,
) -> int:
    """``flare farm``: start the servers, write the farm file, wait for Ctrl-C or SIGTERM;
    ``say`` tells the user where the servers listen, and when they stop."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with LocalFarm(serve_command(serve_args, host), servers, farm_file) as farm:
            say(
                f"flare farm: {servers} servers listening on {', '.join(farm.addresses)} "
                f"(farm file {farm_file})"
            )
            while not stop.wait(0.5):
                pass
            say("flare farm: stopping every server")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
