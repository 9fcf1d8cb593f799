"""Ctrl-C and SIGTERM stop a run within seconds, save the model, and leave no process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

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


def _wait_for_games(out_dir: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    csv_path = out_dir / "games.csv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if csv_path.exists() and len(csv_path.read_text().splitlines()) > 20:
            return
        assert proc.poll() is None, proc.stdout.read()
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
    try:
        _wait_for_games(tmp_path, proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        # the agent processes (under a forkserver, its children), the forkserver and
        # multiprocessing's resource tracker
        assert len(children) >= 4 // agents_per_process
        sent_at = time.monotonic()
        send(proc)
        output, _ = proc.communicate(timeout=15)
        elapsed = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    assert "stopped_by=SIG" in output
    assert (tmp_path / "RL.pt").exists()
    _, alive = psutil.wait_procs(children, timeout=2)
    assert not alive, f"stray agent processes: {[c.pid for c in alive]}"
