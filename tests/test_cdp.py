"""The CDP batches requests from many agents and routes each result to its agent."""

import threading

import numpy as np
import pytest

from flare.framework.agent_helper import CDPChannel, CDPClosed
from flare.framework.batch import LearnBatch, LearnRequest, PredictRequest
from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.computation_task import ComputationTask
from tests.conftest import EchoModel, FailingAlgorithm


def _run_agents(cdp, num_agents, work):
    """Each 'agent' is a thread with its own channel; returns what each one got."""
    channels = [CDPChannel(cdp.connect(i), i) for i in range(num_agents)]
    results = [None] * num_agents
    errors = []

    def body(i):
        try:
            results[i] = work(i, channels[i])
        except Exception as err:  # noqa: BLE001
            errors.append(err)
        finally:
            channels[i].close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(num_agents)]
    cdp.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    cdp.stop()
    return results, errors


def test_predictions_are_batched_and_routed(echo_alg):
    cdp = ComputationDataProcessor(ComputationTask("RL", echo_alg), batch_wait_s=1.0)
    rounds = 20

    def work(i, channel):
        got = []
        for r in range(rounds):
            reply = channel.request(PredictRequest({"sensor": np.array([[i, r]], float)}, {}))
            got.append(int(reply.actions["action"][0, 0]))
        return got

    results, errors = _run_agents(cdp, 6, work)
    assert not errors
    for i, got in enumerate(results):
        assert got == [i + r for r in range(rounds)]  # each agent got its own answers
    assert cdp.stats.predict_instances == 6 * rounds
    # with a long wait, every batch holds all six agents: one call per round
    assert cdp.stats.predict_calls == rounds


def test_learning_is_batched_and_costs_routed(echo_alg):
    cdp = ComputationDataProcessor(ComputationTask("RL", echo_alg), batch_wait_s=1.0)

    def work(i, channel):
        n = i + 1  # agents send batches of different sizes
        sensor = np.full((n, 2), float(i))
        batch = LearnBatch(
            inputs={"sensor": sensor},
            next_inputs={"sensor": sensor},
            states={},
            next_states={},
            next_alive={"alive": np.ones((n, 1), np.float32)},
            actions={"action": np.zeros((n, 1), np.int64)},
            next_actions={"action": np.zeros((n, 1), np.int64)},
            rewards={"reward": np.zeros((n, 1), np.float32)},
        )
        return channel.request(LearnRequest(batch)).costs["cost"]

    results, errors = _run_agents(cdp, 4, work)
    assert not errors
    for i, cost in enumerate(results):
        assert cost.shape == (i + 1, 1)
        np.testing.assert_allclose(cost, float(i))  # cost = sensor[0] = agent id
    assert cdp.stats.learn_calls == 1
    assert cdp.stats.learn_instances == 1 + 2 + 3 + 4


def test_a_slow_agent_does_not_stall_the_others(echo_alg):
    cdp = ComputationDataProcessor(ComputationTask("RL", echo_alg), batch_wait_s=0.01)
    release = threading.Event()

    def work(i, channel):
        if i == 0:  # connected but silent for a while
            release.wait(10)
            return None
        for r in range(30):
            channel.request(PredictRequest({"sensor": np.array([[i, r]], float)}, {}))
        return "done"

    def releaser():
        while cdp.stats.predict_instances < 60:
            threading.Event().wait(0.01)
        release.set()

    threading.Thread(target=releaser, daemon=True).start()
    results, errors = _run_agents(cdp, 3, work)
    assert not errors
    assert results[1:] == ["done", "done"]


def test_a_failing_algorithm_closes_every_channel():
    cdp = ComputationDataProcessor(ComputationTask("RL", FailingAlgorithm(EchoModel())), 0.01)

    def work(i, channel):
        sensor = np.zeros((1, 2))
        batch = LearnBatch(
            inputs={"sensor": sensor},
            next_inputs={"sensor": sensor},
            states={},
            next_states={},
            next_alive={"alive": np.ones((1, 1), np.float32)},
            actions={"action": np.zeros((1, 1), np.int64)},
            next_actions={"action": np.zeros((1, 1), np.int64)},
            rewards={"reward": np.zeros((1, 1), np.float32)},
        )
        with pytest.raises(CDPClosed):
            channel.request(LearnRequest(batch))
        return "closed"

    results, errors = _run_agents(cdp, 3, work)
    assert not errors
    assert results == ["closed"] * 3
    assert "simulated bug in learn()" in cdp.error


def test_a_held_cdp_takes_requests_in_and_serves_none_until_released(echo_alg):
    """What a checkpoint's pause rests on: while held, every agent ends up waiting and
    nothing changes; released, the waiting requests are served as one batch."""
    import time

    from flare.framework.run_pause import PauseError, paused

    cdp = ComputationDataProcessor(ComputationTask("RL", echo_alg), batch_wait_s=1.0)
    channels = [CDPChannel(cdp.connect(i), i) for i in range(3)]
    cdp.start()
    with pytest.raises(PauseError, match=r"agents \[0, 1, 2\] were busy"):
        with paused([cdp], [], timeout_s=0.2):
            pass  # (no agent waits on it: it cannot pause)
    answered = [0, 0, 0]

    def agent(i):
        for r in range(200):
            reply = channels[i].request(PredictRequest({"sensor": np.array([[i, r]], float)}, {}))
            assert int(reply.actions["action"][0, 0]) == i + r
            answered[i] += 1

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    with paused([cdp], [], timeout_s=10) as pause:
        assert pause.playing == frozenset({0, 1, 2})
        assert cdp.is_held() and cdp.agents_waiting() == frozenset({0, 1, 2})
        calls, seen = cdp.stats.predict_calls, list(answered)
        time.sleep(0.3)
        assert cdp.stats.predict_calls == calls and answered == seen  # nothing moves
    for t in threads:
        t.join(30)
    assert answered == [200, 200, 200]
    assert cdp.stats.predict_calls == 200  # every batch held all three, the pause too
    for channel in channels:
        channel.close()
    cdp.stop()
