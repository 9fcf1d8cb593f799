"""Start a simulator server as a child process, for as long as a ``with`` block runs.

Any server that prints ``... listening on HOST:PORT`` as its first line works:
``flare serve``, the bundled Node.js grid world, or your own.
"""

from __future__ import annotations

import ctypes
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
GRIDWORLD = ROOT / "simulators" / "gridworld"


@contextmanager
def simulator_process(
    command: Sequence[str],
    cwd: Path | None = None,
    startup_timeout_s: float = 60.0,
    die_with_parent: bool = False,
) -> Iterator[str]:
    """Run ``command``; yield the address from its ``listening on HOST:PORT`` line; stop
    it with SIGTERM (a graceful shutdown) when the block ends. What it prints later is
    passed on to this process's stdout (never left to fill the pipe and stall it).
    ``die_with_parent``: the server gets SIGTERM when this process dies, however it dies
    (Linux), e.g. a Ray actor that is killed and restarted elsewhere."""
    server = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_end_with_parent if die_with_parent else None,
    )
    try:
        stdout = server.stdout
        assert stdout is not None  # (stdout=PIPE)
        ready, _, _ = select.select([stdout], [], [], startup_timeout_s)
        line = stdout.readline() if ready else ""
        if "listening on " not in line:
            server.kill()
            rest, _ = server.communicate(timeout=10)
            raise RuntimeError(
                f"the simulator did not start within {startup_timeout_s}s "
                f"({' '.join(command)}): {line}{rest}"
            )
        threading.Thread(target=_pass_on, args=(stdout,), daemon=True).start()
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _end_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # (not Linux)
        pass


def _pass_on(stream: IO[str]) -> None:
    for line in stream:
        sys.stdout.write(line)


def flare_command() -> list[str]:
    """``python -P -m flare``: this interpreter's ``flare`` command. ``-P`` (Python 3.11's
    safe path) keeps the working directory off ``sys.path``, so no file there can shadow a
    module the server imports."""
    return [sys.executable, "-P", "-m", "flare"]


def flare_serve_gym(game: str) -> list[str]:
    """The command of ``flare serve gym --game GAME`` on a free loopback port."""
    return [*flare_command(), "serve", "gym", "--game", game, "--address", "127.0.0.1:0"]


def gridworld_command() -> list[str]:
    """The command of the bundled Node.js grid world on a free loopback port."""
    if not (GRIDWORLD / "node_modules").is_dir():
        raise RuntimeError(
            f"the grid world's Node packages are missing: run `make install` "
            f"(or `npm ci --prefix {GRIDWORLD.relative_to(ROOT)}`)"
        )
    return ["node", str(GRIDWORLD / "server.js"), "--address", "127.0.0.1:0"]


def gridworld_client_command(
    learner: str, level: str = "1", seed: int = 0, streams: int = 1
) -> list[str]:
    """The bundled grid world in client mode: ``streams`` Act streams to ``learner``."""
    gridworld_command()  # (the same check of its Node packages)
    return [
        "node", str(GRIDWORLD / "client.js"), "--learner", learner, "--level", level,
        "--seed", str(seed), "--streams", str(streams),
    ]  # fmt: skip
