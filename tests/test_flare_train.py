"""``flare train``: each example config runs from the command line into its run directory,
serves its Learner service, and is watched from another process; a config plays the
games of the Python it mirrors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from flare.framework.reports import in_play_order
from flare.learner.build import build_manager
from flare.learner.config import load_config
from flare.learner.environments import open_env_source
from flare.learner.progress import LiveProgress, wants_live_display

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
LISTENING = re.compile(
    r"flare learner (\S+) listening on (127\.0\.0\.1:\d+) \(run directory (.+)\)"
)


def _tiny(name: str, tmp_path: Path, games: int) -> Path:
    """The example config with ``games`` per agent, a checkpoint every few seconds."""
    _, text = load_config(CONFIGS / f"{name}.toml")
    text, replaced = re.subn(r"^games = \d+", f"games = {games}", text, count=1, flags=re.M)
    assert replaced == 1
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "games.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "games"), [("cartpole_ac", 2), ("gridworld", 2), ("babyai_gft", 1)]
)
def test_each_example_config_trains_from_the_command_line(name, games, tmp_path):
    path = _tiny(name, tmp_path, games)
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "flare", "train", str(path), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    config, _ = load_config(path)
    assert LISTENING.search(result.stdout), result.stdout
    total = config.agents.count * games
    assert [int(r["game"]) for r in _rows(run_dir)] == list(range(total))
    assert f"games {total}/{total}" in result.stdout.splitlines()[-1]
    assert (run_dir / "config.toml").read_text() == path.read_text()
    checkpoint = (run_dir / "checkpoints" / "LATEST").read_text().strip()
    assert (
        json.loads((run_dir / "checkpoints" / checkpoint / "checkpoint.json").read_text())["games"]
        == total
    )
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert not (run_dir / "learner.json").exists()  # (only while the learner runs)


@pytest.mark.slow
def test_a_run_is_watched_and_stopped_from_another_process(tmp_path):
    path = _tiny("cartpole_ac", tmp_path, 500)
    path.write_text(path.read_text() + "\n[learner]\nprogress_interval_s = 0.5\n")
    run_dir = tmp_path / "run"
    learner = subprocess.Popen(
        [sys.executable, "-m", "flare", "train", str(path), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert learner.stdout is not None
        first = learner.stdout.readline()
        match = LISTENING.search(first)
        assert match, first
        name, address, directory = match.groups()
        assert name == "cartpole-ac" and Path(directory) == run_dir
        assert json.loads((run_dir / "learner.json").read_text())["address"] == address
        watch = subprocess.Popen(
            [sys.executable, "-m", "flare", "status", address, "--watch", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watch.stdout is not None
        events = [watch.stdout.readline()]  # (connected: progress events come twice a second)
        assert json.loads(events[0])["kind"] == "progress", events
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = subprocess.run(
                [sys.executable, "-m", "flare", "status", address, "--json"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            if json.loads(status.stdout)["games"] >= 50:
                break
        stop = subprocess.run(
            [sys.executable, "-m", "flare", "stop", address, "--reason", "the test"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert stop.returncode == 0 and "stopping (Stop call: 'the test')" in stop.stdout
        rest, _ = watch.communicate(timeout=120)
        events += rest.splitlines()
        assert learner.wait(timeout=120) == 0
    finally:
        learner.kill()
        learner.communicate()
    kinds = [json.loads(line)["kind"] for line in events]
    assert kinds[-2:] == ["checkpoint", "finished"]  # the final checkpoint, then the end
    final = json.loads(events[-1])["status"]
    assert final["state"] == "finished" and final["stop_reason"] == "Stop call: 'the test'"
    assert final["games"] == len(_rows(run_dir)) < 16 * 500
    assert final["agents_alive"] == 0


@pytest.mark.slow
def test_the_ppo_config_plays_the_games_of_the_python_it_mirrors():
    from flare.experiments.cartpole import train_ppo

    config, _ = load_config(CONFIGS / "cartpole_ppo.toml")
    config = dataclasses.replace(config, agents=dataclasses.replace(config.agents, games=10))
    with open_env_source(config.env, config.seed, ROOT) as source:
        from_config = build_manager(config, source)
        from_config.log_settings.print_interval_s = 0
        from_config.start(config.stop.mean_return)
    by_hand = train_ppo(num_games=10, print_interval_s=0)
    games = [(r.agent, r.agent_game, r.return_) for r in in_play_order(from_config.stats)]
    assert games == [(r.agent, r.agent_game, r.return_) for r in in_play_order(by_hand.stats)]
    assert len(games) == 80


class _FakeTracker:
    def __init__(self, status):
        self._status = status

    def status(self):
        return self._status


def test_the_live_display_shows_games_against_the_budget_and_the_mean_return():
    from flare.learner.status import RunState, RunStatus

    status = RunStatus(
        run_name="cartpole-ppo", state=RunState.RUNNING, games=120, games_budget=1600,
        env_steps=4000, window=100, mean_return=37.5, success_rate=0.0, env_steps_per_s=900.0,
        policy_version=12, agents_alive=8, agents_total=8, interrupted_games=0, uptime_s=5.0,
        wall_s=5.0,
    )  # fmt: skip
    out = io.StringIO()
    display = LiveProgress(_FakeTracker(status), Console(file=out, force_terminal=True, width=160))
    display.run_started(None)  # type: ignore[arg-type]
    display.tick()
    display.run_stopped()
    text = out.getvalue()
    assert "cartpole-ppo" in text and "120/1600" in text and "mean return 37.50" in text
    assert not wants_live_display("plain") and wants_live_display("rich")
