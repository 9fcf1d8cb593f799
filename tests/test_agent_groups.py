"""Several agents in one process: same games as one process each, one request per step."""

import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.env_zoo.gym_env import GymEnv
from flare.framework.agent import OnlineHelper
from flare.framework.batch import PredictRequest, RequestBundle
from flare.framework.cdp_channel import CDPChannel, CDPClosed, CDPLink
from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.computation_task import ComputationTask
from flare.framework.manager import Manager, TrainingError
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing import ChainEnv, CrashingEnv
from tests.conftest import EchoModel


def _manager(agents_per_process, num_agents=5, games=None, env=None, window=100, seed=3):
    """CartPole agents (or ``env = (class, kwargs)`` with a one-number observation)."""
    torch.manual_seed(seed)
    dims = 4 if env is None else 1
    alg = SimpleAC(
        SimpleModelAC(dims=(dims,), num_actions=2, perception_net=nn.Linear(dims, 32)),
        optim=(torch.optim.RMSprop, dict(lr=1e-3)),
    )
    settings = dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=4, batch_wait_s=5.0)
    manager = Manager(
        {"RL": settings},
        dict(print_interval_s=0, window=window),
        agents_per_process=agents_per_process,
    )
    for i in range(num_agents):
        agent = SimpleRLAgent(games[i] if games else 6)
        if env is None:
            agent.set_env(GymEnv, game_name="CartPole-v0", seed=seed * 10 + i)
        else:
            agent.set_env(env[0], **env[1])
        manager.add_agent(agent)
    return manager


def _games(manager):
    per_agent = {}
    for record in manager.stats:
        per_agent.setdefault(record.agent, []).append((record.return_, record.length))
    return per_agent


def test_grouped_agents_play_the_same_games_as_one_process_each(no_stray_processes):
    alone = _manager(agents_per_process=1)
    alone.start()
    for size in (2, 5, 8):  # uneven groups (2+2+1), one group, fewer agents than the size
        grouped = _manager(agents_per_process=size)
        grouped.start()
        assert _games(grouped) == _games(alone), f"agents_per_process={size}"
        for name, value in alone.cts["RL"].alg.model.state_dict().items():
            assert torch.equal(grouped.cts["RL"].alg.model.state_dict()[name], value), name


def test_agents_are_split_into_processes_of_the_given_size(no_stray_processes, monkeypatch):
    groups = []
    original = Manager._start_agent_process

    def spy(self, group, *args):
        groups.append([agent.id for agent in group])
        return original(self, group, *args)

    monkeypatch.setattr(Manager, "_start_agent_process", spy)
    manager = _manager(agents_per_process=3, num_agents=7, games=[2] * 7)
    manager.start()
    assert groups == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(manager.stats) == 14


def test_an_agent_that_finishes_early_does_not_stall_its_group(no_stray_processes):
    manager = _manager(agents_per_process=3, num_agents=3, games=[1, 8, 8])
    manager.start()
    counts = {a: len(g) for a, g in _games(manager).items()}
    assert counts == {0: 1, 1: 8, 2: 8}


def test_a_crash_in_one_agent_of_a_group_ends_the_run_with_its_traceback(no_stray_processes):
    manager = _manager(
        agents_per_process=2,
        num_agents=2,
        games=[1000, 1000],
        env=(CrashingEnv, dict(crash_after=7, max_steps=5)),
    )
    with pytest.raises(TrainingError, match="simulated simulator crash"):
        manager.start()


def test_agents_per_process_must_be_positive():
    with pytest.raises(ValueError, match="agents_per_process must be >= 1, got 0"):
        _manager(agents_per_process=0)


def test_cdp_batches_a_bundle_and_answers_each_agent():
    cdp = ComputationDataProcessor(ComputationTask("RL", _echo_alg()), batch_wait_s=1.0)
    link = CDPLink(cdp.connect([0, 1, 2]), [0, 1, 2])
    cdp.start()
    try:
        for agent_id in (0, 1, 2):
            request = PredictRequest({"sensor": np.array([[agent_id, 10.0]])}, {})
            link.queue(agent_id, request)
        assert link.flush() == [0, 1, 2]
        replies = link.receive()  # every agent was waiting: one batch, one bundle
        assert {a: int(r.actions["action"][0, 0]) for a, r in replies.items()} == {
            0: 10,
            1: 11,
            2: 12,
        }
        assert cdp.stats.predict_calls == 1 and cdp.stats.predict_instances == 3
    finally:
        for agent_id in (0, 1, 2):
            link.done(agent_id)
        cdp.stop()


def test_cdp_rejects_a_request_for_an_agent_its_pipe_does_not_host():
    cdp = ComputationDataProcessor(ComputationTask("RL", _echo_alg()), batch_wait_s=1.0)
    connection = cdp.connect([0])
    cdp.connect([1])
    cdp.start()
    request = PredictRequest({"sensor": np.array([[1.0, 2.0]])}, {})
    connection.send(RequestBundle.of({1: request}))
    deadline = time.monotonic() + 10
    while cdp.is_alive() and time.monotonic() < deadline:  # the CDP fails, the run reports it
        time.sleep(0.01)
    cdp.stop()
    assert cdp.error is not None and "agent 1" in cdp.error and "does not host" in cdp.error


def test_connecting_an_agent_twice_is_an_error():
    cdp = ComputationDataProcessor(ComputationTask("RL", _echo_alg()))
    cdp.connect([0, 1])
    with pytest.raises(ValueError, match=r"agent\(s\) \[1\] already connected"):
        cdp.connect([1, 2])
    with pytest.raises(ValueError, match="distinct agent ids"):
        cdp.connect([3, 3])


def test_a_channel_for_an_agent_not_on_its_link_is_an_error():
    cdp = ComputationDataProcessor(ComputationTask("RL", _echo_alg()))
    link = CDPLink(cdp.connect([0, 1]), [0, 1])
    with pytest.raises(ValueError, match="agent 2 is not on this link"):
        CDPChannel(link, 2)


def test_a_closed_cdp_raises_cdp_closed_in_the_waiting_agent():
    cdp = ComputationDataProcessor(ComputationTask("RL", _echo_alg()))
    channel = CDPChannel(cdp.connect([0]), 0)
    cdp.stop()  # never started: closing its ends is what a stopping run does
    with pytest.raises(CDPClosed):
        channel.request(PredictRequest({"sensor": np.array([[1.0, 2.0]])}, {}))


def test_grouped_agents_leave_no_process_and_stop_on_the_target(no_stray_processes):
    manager = _manager(
        agents_per_process=2,
        num_agents=4,
        env=(ChainEnv, dict(max_steps=5)),
        games=[1000] * 4,
        window=10,
    )
    manager.start(stop_at_mean_return=5.0)  # ChainEnv: every game returns 5 (time-out)
    assert manager.reached_target and 10 <= len(manager.stats) < 100


def _echo_alg():
    from tests.conftest import EchoAlgorithm

    return EchoAlgorithm(EchoModel())


def test_agents_with_two_cts_play_the_same_games_grouped(no_stray_processes):
    """Two CTs (RL and reward prediction on one perception net): each process has a pipe
    per CT and its agents' requests to both go out batched per CT."""
    from flare.agent_zoo.auxiliary_agents import RewardPredictionAgent
    from flare.experiments import catch as example
    from flare.testing.sparse_reward_envs import CatchEnv

    def run(agents_per_process):
        torch.manual_seed(0)
        manager = Manager(
            example.build_ct_settings(aux=True, batch_wait_s=5.0),
            dict(print_interval_s=0),
            agents_per_process=agents_per_process,
        )
        for i in range(5):
            agent = RewardPredictionAgent(4)
            agent.set_env(CatchEnv, rows=example.ROWS, columns=example.COLUMNS, seed=i)
            manager.add_agent(agent)
        manager.start()
        return {(r.agent, r.agent_game): (r.return_, r.length, r.costs) for r in manager.stats}

    alone, grouped = run(1), run(3)
    assert grouped == alone
    assert any("reward_prediction/cost" in costs for _, _, costs in alone.values())


def test_memory_agents_carry_their_states_when_grouped(no_stray_processes):
    """A GRU's states come back stacked per process and must reach the right agent."""
    from flare.agent_zoo.simple_rl_agents import SimpleRNNRLAgent
    from flare.env_zoo.memory_cue import CueMemoryEnv
    from flare.model_zoo.rnn_models import SimpleRNNModelAC

    def run(agents_per_process):
        torch.manual_seed(0)
        model = SimpleRNNModelAC((3,), 2, nn.Sequential(nn.Linear(3, 16), nn.ReLU()))
        settings = dict(
            algorithm=SimpleAC(model, optim=(torch.optim.Adam, dict(lr=1e-3))),
            agent_helper=OnlineHelper,
            sample_interval=6,
            batch_wait_s=5.0,
        )
        manager = Manager(
            {"RL": settings}, dict(print_interval_s=0), agents_per_process=agents_per_process
        )
        for i in range(4):
            agent = SimpleRNNRLAgent(5)
            agent.set_env(CueMemoryEnv, delay=2, seed=i)
            manager.add_agent(agent)
        manager.start()
        return _games(manager), manager.cts["RL"].alg.model.state_dict()

    (alone, weights), (grouped, grouped_weights) = run(1), run(4)
    assert grouped == alone
    assert all(torch.equal(grouped_weights[k], v) for k, v in weights.items())


def test_each_agent_gets_its_own_rows_not_views_of_the_batch():
    """A replay buffer keeps what an agent stores for a long time: a view would keep the
    whole process's reply batch alive with it."""
    from flare.framework.batch import PredictReplyBatch

    batch = PredictReplyBatch(
        agent_ids=[3, 4],
        sizes=[1, 1],
        actions={"action": np.array([[0], [1]])},
        states={"h": np.zeros((2, 128), np.float32)},
        behavior={},
    )
    replies = batch.unpack()
    assert replies[4].actions["action"].tolist() == [[1]]
    for reply in replies.values():
        assert reply.actions["action"].base is None and reply.states["h"].base is None
