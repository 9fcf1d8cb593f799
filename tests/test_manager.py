"""Manager: running agents in processes, stats, games.csv, checkpoints, failures."""

import csv
import io

import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.common.metrics import MetricsLogger
from flare.framework.agent import ExpReplayHelper, OnlineHelper
from flare.framework.manager import Manager, TrainingError
from flare.framework.reports import GameRecord
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing import ChainEnv, CrashingEnv
from tests.conftest import EchoModel, FailingAlgorithm


def _alg():
    torch.manual_seed(0)
    model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
    return SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))


def _manager(
    num_agents=3,
    num_games=4,
    env=ChainEnv,
    env_kwargs=None,
    helper=OnlineHelper,
    log_settings=None,
    **ct,
):
    settings = {
        "RL": dict(
            algorithm=ct.pop("algorithm", None) or _alg(),
            agent_helper=helper,
            **(ct or dict(sample_interval=2)),
        )
    }
    manager = Manager(settings, log_settings or dict(print_interval_s=0))
    for _ in range(num_agents):
        agent = SimpleRLAgent(num_games)
        agent.set_env(env, **(env_kwargs or dict(max_steps=5)))
        manager.add_agent(agent)
    return manager


def test_every_game_is_recorded(no_stray_processes, tmp_path):
    manager = _manager(
        num_agents=3, num_games=4, log_settings=dict(log_dir=str(tmp_path), print_interval_s=0)
    )
    manager.start()
    assert len(manager.stats) == 12
    assert sorted(r.game for r in manager.stats) == list(range(12))
    assert {r.agent for r in manager.stats} == {0, 1, 2}
    assert all(r.length == 5 and r.return_ == 5.0 for r in manager.stats)  # 5 steps, time-out
    with (tmp_path / "games.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert {"game", "agent", "return", "length", "wall_s"} <= set(rows[0])
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls) and walls[0] >= 0


def test_exp_replay_helper_runs_in_a_manager(no_stray_processes):
    manager = _manager(
        num_agents=2,
        num_games=5,
        helper=ExpReplayHelper,
        buffer_capacity=50,
        num_experiences=4,
        sample_interval=2,
    )
    manager.start()
    assert len(manager.stats) == 10
    assert any(r.cost is not None for r in manager.stats)


def test_progress_line_reports_games_return_speed_and_cost():
    stream = io.StringIO()
    metrics = MetricsLogger(print_interval_s=1, window=2, stream=stream)
    for i, ret in enumerate([1.0, 3.0, 5.0]):
        metrics.record(GameRecord(agent=0, return_=ret, length=10, success=False, cost=0.5, game=i))
    metrics.maybe_print(force=True)
    line = stream.getvalue()
    assert "games 3" in line and "mean return (last 2) 4.00" in line
    assert "env steps/s" in line and "cost 0.5" in line


def test_no_progress_line_at_all_with_a_zero_interval():
    stream = io.StringIO()
    metrics = MetricsLogger(print_interval_s=0, window=2, stream=stream)
    metrics.record(GameRecord(agent=0, return_=1.0, length=10, success=False, cost=0.5, game=0))
    metrics.maybe_print(force=True)  # the Manager's end-of-run line
    assert stream.getvalue() == ""


def test_model_save_and_load(no_stray_processes, tmp_path):
    manager = _manager(
        num_agents=2,
        num_games=3,
        log_settings=dict(model_dir=str(tmp_path), model_save_interval=2, print_interval_s=0),
    )
    manager.start()
    saved = torch.load(tmp_path / "RL.pt", weights_only=True)
    assert saved["games"] == 6
    trained = manager.cts["RL"].alg.model.state_dict()
    fresh = _manager(log_settings=dict(model_dir=str(tmp_path), load_model=True))
    loaded = fresh.cts["RL"].alg.model.state_dict()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)


def test_load_model_from_a_missing_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="RL.pt"):
        _manager(log_settings=dict(load_model=str(tmp_path / "nowhere")))


def test_an_env_exception_ends_the_run_with_its_traceback(no_stray_processes):
    manager = _manager(
        num_agents=3, num_games=1000, env=CrashingEnv, env_kwargs=dict(crash_after=7, max_steps=5)
    )
    with pytest.raises(TrainingError, match="simulated simulator crash at step 8"):
        manager.start()


def test_an_algorithm_exception_ends_the_run_with_its_traceback(no_stray_processes):
    algorithm = FailingAlgorithm(EchoModel())
    settings = {"RL": dict(algorithm=algorithm, agent_helper=OnlineHelper, sample_interval=2)}
    manager = Manager(settings, dict(print_interval_s=0))
    for _ in range(2):
        agent = SimpleRLAgent(1000)
        agent.set_env(_TwoSensorEnv)
        manager.add_agent(agent)
    with pytest.raises(TrainingError, match="simulated bug in learn"):
        manager.start()


class _TwoSensorEnv(ChainEnv):
    def reset(self):
        super().reset()
        return {"sensor": torch.zeros(2).numpy()}

    def step(self, actions, actrep=1):
        _, rewards, game_over = super().step({"action": [1]}, actrep)
        return {"sensor": torch.zeros(2).numpy()}, rewards, game_over

    def observation_dims(self):
        return {"sensor": (2,)}


def test_settings_errors_are_clear():
    with pytest.raises(ValueError, match="unknown setting"):
        Manager({"RL": dict(algorithm=_alg(), agent_helper=OnlineHelper, hyperparas={})})
    with pytest.raises(ValueError, match="lacks agent_helper"):
        Manager({"RL": dict(algorithm=_alg())})
    with pytest.raises(ValueError, match="ExpReplayHelper needs buffer_capacity, num_experiences"):
        Manager({"RL": dict(algorithm=_alg(), agent_helper=ExpReplayHelper)})
    with pytest.raises(ValueError, match="unknown key"):
        Manager({"RL": dict(algorithm=_alg(), agent_helper=OnlineHelper)}, dict(logdir="x"))
    manager = Manager({"RL": dict(algorithm=_alg(), agent_helper=OnlineHelper, num_agents=1)})
    with pytest.raises(RuntimeError, match="no agents"):
        manager.start()
    agent = SimpleRLAgent(1)
    manager.add_agent(agent)
    with pytest.raises(RuntimeError, match="set_env"):
        manager.start()


def test_more_agents_than_num_agents_is_an_error():
    settings = {"RL": dict(algorithm=_alg(), agent_helper=OnlineHelper, num_agents=2)}
    manager = Manager(settings, dict(print_interval_s=0))
    for _ in range(3):
        agent = SimpleRLAgent(1)
        agent.set_env(ChainEnv)
        manager.add_agent(agent)
    with pytest.raises(ValueError, match="num_agents"):
        manager.start()
