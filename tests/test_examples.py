"""Every example runs, on a tiny budget."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ac_example_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, "examples/ac_example.py", "--num-games", "2", "--log-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert rows[0].startswith("game,agent,return,length,wall_s")
    assert len(rows) == 1 + 16 * 2  # 16 agents, 2 games each
    assert "[flare]" in result.stdout and "games 32" in result.stdout


def test_ac_remote_example_smoke(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "examples/ac_remote_example.py",
            "--num-games",
            "2",
            "--log-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "local simulator for CartPole-v0 on 127.0.0.1:" in result.stdout
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + 16 * 2
