"""Every example runs, on a tiny budget."""

import subprocess
import sys
from pathlib import Path

import pytest

# every test here runs an example's command line in a fresh interpreter
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _run_example(*args: str, timeout: float) -> str:
    """Run an example's command line from the repository root; its stdout."""
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_ac_example_smoke(tmp_path):
    out = _run_example(
        "examples/ac_example.py", "--num-games", "2", "--log-dir", str(tmp_path), timeout=120
    )
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert rows[0].startswith("game,agent,return,length,wall_s")
    assert len(rows) == 1 + 16 * 2  # 16 agents, 2 games each
    assert "[flare]" in out and "games 32" in out


def test_img_ac_example_smoke(tmp_path):
    """The seed's Breakout example, one game per agent: 16 agents from pixels, on the CPU."""
    _run_example(
        "examples/img_ac_example.py", "--num-games", "1", "--gpu-id", "-1",
        "--log-dir", str(tmp_path), timeout=300,
    )  # fmt: skip
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + 16  # 16 agents, 1 game each
    lengths = [int(row.split(",")[3]) for row in rows[1:]]
    assert all(length > 20 for length in lengths)  # (Breakout's 5 lives take steps)


def test_ac_remote_example_smoke(tmp_path):
    out = _run_example(
        "examples/ac_remote_example.py", "--num-games", "2", "--log-dir", str(tmp_path),
        timeout=120,
    )  # fmt: skip
    assert "local simulator for CartPole-v0 on 127.0.0.1:" in out
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + 16 * 2


CARTPOLE_EXAMPLES = [
    ["ppo_example.py"],
    ["value_based_example.py", "--algorithm", "dqn", "--prioritized"],
    ["value_based_example.py", "--algorithm", "sarsa"],
    ["value_based_example.py", "--algorithm", "c51"],
    ["value_based_example.py", "--algorithm", "qr-dqn"],
    ["value_based_example.py", "--algorithm", "iqn"],
    ["off_policy_ac_example.py"],
    ["sr_q_example.py"],
]


@pytest.mark.parametrize("command", CARTPOLE_EXAMPLES, ids=lambda c: " ".join(c))
def test_algorithm_zoo_example_runs_from_the_command_line(command, tmp_path):
    """The learning tests train each example's experiment (flare.experiments.cartpole);
    this runs its command line."""
    out = _run_example(
        f"examples/{command[0]}", *command[1:], "--num-games", "1", "--log-dir", str(tmp_path),
        timeout=120,
    )  # fmt: skip
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + 8  # 8 agents, 1 game each
    assert "did not reach the target" in out  # one game each cannot reach 195


@pytest.mark.parametrize("algorithm", ["ac", "ppo", "q"])
def test_memory_example_runs_from_the_command_line(algorithm):
    out = _run_example(
        "examples/memory_example.py", "--algorithm", algorithm, "--num-agents", "2",
        "--num-games", "2", timeout=180,
    )  # fmt: skip
    assert f"{algorithm} with memory (GRU): 4 games" in out
    assert f"{algorithm} without memory: 4 games" in out


def test_babyai_examples_run_from_the_command_line(tmp_path):
    out = _run_example(
        "examples/babyai_gft_example.py", "--num-agents", "2", "--num-games", "2",
        "--success", "0", "--log-dir", str(tmp_path), timeout=180,
    )  # fmt: skip
    assert "BabyAI-GoToLocalS5N2-v0: 4 games" in out
    assert len((tmp_path / "games.csv").read_text().splitlines()) == 1 + 4
    out = _run_example(
        "examples/babyai_baseline.py", "speed", "--levels", "BabyAI-GoToLocalS5N2-v0",
        "--seconds", "0.3", timeout=180,
    )  # fmt: skip
    assert "| BabyAI-GoToLocalS5N2-v0 | 25 |" in out


def test_gridworld_client_mode_example_runs_from_the_command_line(tmp_path):
    out = _run_example(
        "examples/gridworld_client_mode.py", "--num-agents", "2", "--num-games", "2",
        "--stop-at-success", "1.0", "--run-dir", str(tmp_path / "run"), timeout=180,
    )  # fmt: skip
    assert "games in" in out and "target reached" not in out
    rows = (tmp_path / "run" / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # 2 streams x 2 games, exactly the budget
