"""Ctrl-C and SIGTERM stop a run within seconds, save the model, and leave no process.

What must be quick is the run's stop: from the signal to ``Manager.start()`` returning with
the model saved (``long_run.py`` then prints ``stopped_by=...``). What follows is each
interpreter's own exit, which the bounds here leave room for: a Python process that has
imported torch spends about 0.6 s of CPU tearing itself down (the garbage collector
walking torch's objects at finalization), the learner first and then the forkserver
(which preloads torch and exits when the learner has gone). On a loaded machine those
seconds of CPU become many more of wall time, as does starting the run (importing torch
in the learner, the forkserver and the agents).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

# each run starts a learner and its agent processes, then stops it
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _start(out_dir: Path, agents_per_process: int, start_method: str) -> subprocess.Popen:
    script = str(ROOT / "tests" / "scripts" / "long_run.py")
    return subprocess.Popen(
        [sys.executable, script, str(out_dir), str(agents_per_process), start_method],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


STOP_S = 10  # signal -> the run stopped, its model saved
EXIT_S = 120  # then every process has exited by itself (interpreter teardown, under load)
START_S = 180  # the run starts and plays 20 games (imports, under load)


class _Lines:
    """Collects a process's output lines as they come, each with its arrival time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append((time.monotonic(), line))

    def first(self, text: str) -> float | None:
        """When the first line holding ``text`` arrived (None if none has)."""
        return next((t for t, line in list(self.lines) if text in line), None)

    def text(self, timeout: float = 5.0) -> str:
        self._thread.join(timeout)
        return "".join(line for _, line in self.lines)


def _wait_for_games(out_dir: Path, proc: subprocess.Popen, timeout: float = START_S) -> None:
    csv_path = out_dir / "games.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if csv_path.exists() and len(csv_path.read_text().splitlines()) > 20:
            return
        assert proc.poll() is None, f"the run ended early (exit code {proc.returncode})"
        time.sleep(0.2)
    pytest.fail("the run did not start playing games")


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda p: os.killpg(p.pid, signal.SIGINT), id="ctrl-c-to-process-group"),
        pytest.param(lambda p: p.send_signal(signal.SIGTERM), id="sigterm-to-learner"),
    ],
)
@pytest.mark.parametrize(
    ("agents_per_process", "start_method"), [(1, "fork"), (2, "fork"), (2, "forkserver")]
)
def test_signal_stops_saves_and_leaves_no_process(tmp_path, send, agents_per_process, start_method):
    proc = _start(tmp_path, agents_per_process, start_method)
    lines = _Lines(proc)
    try:
        _wait_for_games(tmp_path, proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        # the agent processes (under a forkserver, its children), the forkserver and
        # multiprocessing's resource tracker
        assert len(children) >= 4 // agents_per_process
        sent_at = time.monotonic()
        send(proc)
        proc.wait(timeout=EXIT_S)
        exited_s = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = lines.text()
    assert proc.returncode == 0, output
    stopped_at = lines.first("stopped_by=SIG")
    assert stopped_at is not None, output
    stopped_s = stopped_at - sent_at
    assert stopped_s < STOP_S, f"took {stopped_s:.1f}s to stop (and {exited_s:.1f}s to exit)"
    assert (tmp_path / "RL.pt").exists()
    _, alive = psutil.wait_procs(children, timeout=EXIT_S)
    assert not alive, f"stray agent processes: {[c.pid for c in alive]}"
