"""Run directories and exact resume: a run stopped, or killed with SIGKILL, and resumed
plays the same games as one that never stopped; games.csv numbers go on without gaps
or repeats; TensorBoard's events read back."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from flare.learner.build import build_manager
from flare.learner.config import RunConfig, load_config
from flare.learner.environments import open_env_source
from flare.learner.learner import Learner, LearnerSettings
from flare.learner.run_dir import RunDirectory, RunDirectoryError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"
QUIET = LearnerSettings(address=None, progress="off", checkpoint_every_s=0, tensorboard=False)


def _config(name: str, games: int) -> RunConfig:
    config, _ = load_config(CONFIGS / f"{name}.toml")
    return dataclasses.replace(config, agents=dataclasses.replace(config.agents, games=games))


def _train(config: RunConfig, run_dir: Path, resume: bool = False, stop_at: int | None = None,
           settings: LearnerSettings = QUIET, first_budget: int | None = None):  # fmt: skip
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager = build_manager(config, source)
        if first_budget is not None:  # agent 0 finishes long before the others
            manager.agents[0].num_games = first_budget
        directory = RunDirectory.open(run_dir) if resume else RunDirectory.create(run_dir, None, [])
        if stop_at is not None:

            def stop_later() -> None:
                deadline = time.monotonic() + 120
                while manager.games_played < stop_at and time.monotonic() < deadline:
                    time.sleep(0.005)
                manager.request_stop("the test")

            threading.Thread(target=stop_later, daemon=True).start()
        Learner(manager, directory, settings, resume=resume).run()
    return manager


def _games(run_dir: Path) -> tuple[list[int], dict[int, list[tuple[float, int]]]]:
    """games.csv's game numbers, and each agent's games (return, length) in its order."""
    with (run_dir / "games.csv").open() as f:
        rows = list(csv.DictReader(f))
    by_agent: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for row in rows:
        by_agent[int(row["agent"])].append((float(row["return"]), int(row["length"])))
    return [int(row["game"]) for row in rows], dict(by_agent)


def _learner_state(run_dir: Path) -> dict:
    latest = (run_dir / "checkpoints" / "LATEST").read_text().strip()
    return torch.load(run_dir / "checkpoints" / latest / "learner.pt", weights_only=True)


def _latest(run_dir: Path) -> dict:
    latest = (run_dir / "checkpoints" / "LATEST").read_text().strip()
    return json.loads((run_dir / "checkpoints" / latest / "checkpoint.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(("name", "games", "stop_at"), [("cartpole_ppo", 12, 40),
                                                         ("cartpole_dqn", 10, 30)])  # fmt: skip
def test_a_run_stopped_and_resumed_plays_the_same_games(name, games, stop_at, tmp_path,
                                                        no_stray_processes):  # fmt: skip
    """With full batches a seeded run is the same anywhere: stopping it (the final
    checkpoint pauses every agent mid-episode) and resuming it changes nothing, not the
    games, not the weights. DQN's checkpoint holds its prioritized replay buffers."""
    config = _config(name, games)
    whole = _train(config, tmp_path / "whole")
    parts = _train(config, tmp_path / "parts", stop_at=stop_at)
    first_numbers, first = _games(tmp_path / "parts")
    assert stop_at <= len(first_numbers) < config.agents.count * games
    saved = _latest(tmp_path / "parts")
    assert saved["agents_saved"] == list(range(config.agents.count))
    assert saved["agents_bytes"] > 0
    resumed = _train(config, tmp_path / "parts", resume=True)
    numbers, played = _games(tmp_path / "parts")
    assert numbers == list(range(config.agents.count * games))  # no gap, no repeat
    assert played == _games(tmp_path / "whole")[1]
    assert all(len(g) == games for g in played.values())  # each agent played its budget
    for key, value in whole.cts["RL"].alg.model.state_dict().items():
        assert torch.equal(value, resumed.cts["RL"].alg.model.state_dict()[key]), key
    assert resumed.policy_version == whole.policy_version > parts.policy_version


@pytest.mark.slow
def test_an_agent_that_finished_before_the_checkpoint_stays_finished(tmp_path):
    """Agent 0 plays 2 games, the others 10: the checkpoint taken after agent 0 is done
    counts its last games, and the resumed run still plays what an unstopped one does."""
    config = _config("cartpole_dqn", 10)
    _train(config, tmp_path / "whole", first_budget=2)
    _train(config, tmp_path / "parts", stop_at=40, first_budget=2)
    assert _latest(tmp_path / "parts")["agent_games"][0] == 2
    assert 0 not in _latest(tmp_path / "parts")["agents_saved"]
    _train(config, tmp_path / "parts", resume=True, first_budget=2)
    numbers, played = _games(tmp_path / "parts")
    assert numbers == list(range(2 + 7 * 10))
    assert played == _games(tmp_path / "whole")[1] and len(played[0]) == 2


def _flare_train(config_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flare", "train", str(config_path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("name", "games"), [("cartpole_dqn", 12), ("cartpole_ppo", 14)])
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(name, games, tmp_path):
    """``kill -9`` of the learner: ``--resume`` loses at most the games after the last
    checkpoint, and (exact resume) plays them again the same way."""
    text = (CONFIGS / f"{name}.toml").read_text()
    text, replaced = re.subn(r"^games = \d+", f"games = {games}", text, count=1, flags=re.M)
    assert replaced == 1
    text += "\n[log]\ncheckpoint_every_games = 16\ncheckpoint_every_s = 0\nprogress = 'plain'\n"
    text += "\n[learner]\nserve = false\n"
    config_path = tmp_path / f"{name}.toml"
    config_path.write_text(text)
    run_dir = tmp_path / "killed"
    learner = _flare_train(config_path, "--run-dir", str(run_dir))
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # two checkpoints, then the kill mid-run
            latest = run_dir / "checkpoints" / "LATEST"
            if latest.exists() and _latest(run_dir)["games"] >= 32:
                break
            assert learner.poll() is None, learner.communicate()[0]
            time.sleep(0.05)
        os.kill(learner.pid, signal.SIGKILL)
    finally:
        learner.kill()
        learner.communicate(timeout=30)
    killed_at = _latest(run_dir)
    killed_state = _learner_state(run_dir)
    logged, _ = _games(run_dir)
    total = _config(name, games).agents.count * games
    assert 32 <= killed_at["games"] <= len(logged) < total
    resumed = subprocess.run(
        [sys.executable, "-m", "flare", "train", "--resume", str(run_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"from checkpoint games-{killed_at['games']:09d}" in resumed.stdout
    numbers, played = _games(run_dir)
    assert numbers == list(range(total))  # numbered on without a gap or a repeat
    assert all(len(g) == games for g in played.values())  # budgets: what was left
    final = _latest(run_dir)
    assert final["policy_version"] > killed_at["policy_version"]  # the counters went on
    state = _learner_state(run_dir)
    sessions = json.loads((run_dir / "run.json").read_text())["sessions"]
    assert len(sessions) == 2
    assert Path(sessions[1]["resumed_from"]).name.startswith(f"games-{killed_at['games']:09d}")
    assert state["position"]["games"] == total
    # the same games, and the same counters, as a run that was never killed
    _train(_config(name, games), tmp_path / "whole")
    assert played == _games(tmp_path / "whole")[1]
    whole = _learner_state(tmp_path / "whole")
    counters = [k for k in ("steps", "num_learns") if k in state["cts"]["RL"]]
    assert counters == (["steps", "num_learns"] if name == "cartpole_dqn" else [])
    for key in counters:  # DQN: epsilon's steps and the learn count behind target syncs
        assert killed_state["cts"]["RL"][key] < state["cts"]["RL"][key]
        assert state["cts"]["RL"][key] == whole["cts"]["RL"][key]
    assert state["position"]["learn_updates"] == whole["position"]["learn_updates"]


def test_a_new_run_never_writes_into_an_old_run_directory(tmp_path):
    RunDirectory.create(tmp_path / "run", "name = 'x'\n", ["flare", "train"])
    with pytest.raises(RunDirectoryError, match="already holds a run: resume it with --resume"):
        RunDirectory.create(tmp_path / "run", None, [])
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["versions"]["flare"] and info["sessions"][0]["command"] == ["flare", "train"]


def test_resuming_keeps_only_the_games_its_checkpoint_counts(tmp_path):
    run = RunDirectory.create(tmp_path / "run", None, [])
    rows = "game,agent,return,length,wall_s,success,cost\n" + "".join(
        f"{i},0,1,1,{i}.0,0,\n" for i in range(7)
    )
    run.games_csv.write_text(rows)
    assert run.keep_games(5) == 2
    assert _games(tmp_path / "run")[0] == [0, 1, 2, 3, 4]
    with pytest.raises(RunDirectoryError, match="holds 5 of the 6 games"):
        run.keep_games(6)


@pytest.mark.slow
def test_tensorboard_events_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config("cartpole_ppo", 3)
    text = (CONFIGS / "cartpole_ppo.toml").read_text()
    settings = dataclasses.replace(QUIET, tensorboard=True, progress_interval_s=0.2)
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager = build_manager(config, source)
        run = RunDirectory.create(tmp_path / "run", text, [])
        Learner(manager, run, settings, config_text=text).run()
    events = EventAccumulator(str(run.tensorboard_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()
    returns = events.Scalars("charts/episodic_return")
    assert len(returns) == len(manager.stats) == 24
    assert sorted(e.value for e in returns) == sorted(r.return_ for r in manager.stats)
    steps = [e.step for e in returns]
    assert steps == sorted(steps) and steps[-1] == sum(r.length for r in manager.stats)
    for tag in ("charts/episodic_length", "rollout/ep_rew_mean", "rollout/ep_len_mean",
                "rollout/success_rate", "time/fps", "charts/SPS", "losses/RL/cost"):  # fmt: skip
        assert tag in tags["scalars"], tag
    assert events.Scalars("rollout/ep_rew_mean")[-1].value == pytest.approx(
        sum(r.return_ for r in manager.stats) / 24
    )
    assert "config/text_summary" in tags["tensors"]
    config_text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert 'name = "cartpole-ppo"' in config_text


def test_latest_naming_a_missing_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    run = RunDirectory.create(tmp_path / "run", None, [])
    staging = run.staging_checkpoint()
    final = run.commit_checkpoint(staging, games=5, keep=1)
    assert run.latest_checkpoint() == final
    final.rmdir()
    with pytest.raises(RunDirectoryError, match="which is not there"):
        run.latest_checkpoint()


def test_a_checkpoint_without_the_agents_is_written_only_when_it_loses_nothing(tmp_path):
    from flare.learner.checkpoint import learner_alone_is_whole

    config = _config("cartpole_ppo", 3)
    with open_env_source(config.env, config.seed, ROOT) as source:
        manager = build_manager(config, source)
    assert learner_alone_is_whole(manager)  # nothing played yet
    manager.agents[1].continue_after(1)
    assert not learner_alone_is_whole(manager)  # agent 1 mid-run: its state would be lost
    for agent in manager.agents:
        agent.continue_after(3)
    assert learner_alone_is_whole(manager)  # every budget played
