"""Learning beside acting: a CT's updates run in a thread of their own while its CDP goes
on predicting on the weights one update old; the lag is fixed by the order of requests."""

import threading

import numpy as np
import pytest
import torch
from torch import nn

from flare.framework.agent_helper import CDPChannel, CDPClosed, ExpReplayHelper, OnlineHelper
from flare.framework.algorithm import Algorithm, Model
from flare.framework.batch import LearnBatch, LearnRequest, PredictRequest
from flare.framework.computation_data_processor import ComputationDataProcessor
from flare.framework.computation_task import ComputationTask
from flare.framework.manager import Manager
from flare.framework.reports import in_play_order


class CounterModel(Model):
    def __init__(self) -> None:
        super().__init__()
        self.count = nn.Parameter(torch.zeros(1))

    def get_input_specs(self):
        return [("sensor", dict(shape=[2]))]

    def get_action_specs(self):
        return [("action", dict(shape=[1], dtype="int64"))]


class CountingAlgorithm(Algorithm):
    """Acts with the number of updates its weights have seen; each learn adds one (SGD,
    lr 1, on a cost of -count) and costs the batch's first sensor value."""

    def __init__(self) -> None:
        super().__init__(CounterModel(), optim=(torch.optim.SGD, dict(lr=1.0)))

    def predict(self, inputs, states):
        count = self.model.count.detach().round().long()
        return {"action": count.expand(len(inputs["sensor"]), 1).clone()}, states

    def learn(
        self, inputs, next_inputs, states, next_states, next_alive, actions, next_actions, rewards
    ):
        cost = -self.model.count.expand(len(rewards["reward"]), 1) + 0 * rewards["reward"]
        return {"cost": cost, "tag": inputs["sensor"][:, :1].clone()}


def _batch(tag: float, rows: int = 2) -> LearnBatch:
    sensor = np.full((rows, 2), tag)
    return LearnBatch(
        inputs={"sensor": sensor},
        next_inputs={"sensor": sensor},
        states={},
        next_states={},
        next_alive={"alive": np.ones((rows, 1), np.float32)},
        actions={"action": np.zeros((rows, 1), np.int64)},
        next_actions={"action": np.zeros((rows, 1), np.int64)},
        rewards={"reward": np.zeros((rows, 1), np.float32)},
    )


def _count(alg) -> float:
    return alg.model.count.detach().item()


def _predict(channel) -> int:
    reply = channel.request(PredictRequest({"sensor": np.zeros((1, 2))}, {}))
    return int(reply.actions["action"][0, 0])


def _serve_one_agent(cdp, work):
    channel = CDPChannel(cdp.connect(0), 0)
    cdp.start()
    try:
        return work(channel)
    finally:
        channel.close()
        cdp.stop()


def test_predictions_between_two_learns_use_the_weights_before_the_first():
    ct = ComputationTask("RL", CountingAlgorithm())
    cdp = ComputationDataProcessor(ct, batch_wait_s=1.0, learn_beside_acting=True)

    def work(channel):
        seen, costs = [_predict(channel)], []
        for tag in range(1, 5):
            costs.append(channel.request(LearnRequest(_batch(tag))).costs)
            seen.append(_predict(channel))
        return seen, costs

    seen, costs = _serve_one_agent(cdp, work)
    # learn i starts after learn i-1 is collected and its weights handed to the acting copy
    assert seen == [0, 0, 1, 2, 3]
    # a learn's reply comes at once, with the costs of the agent's learn before it
    assert costs[0] == {}
    assert [float(c["tag"][0, 0]) for c in costs[1:]] == [1.0, 2.0, 3.0]
    # the last learn counts: the run's weights saw all four
    assert _count(ct.alg) == 4.0
    assert _count(ct.acting) == 3.0
    assert cdp.stats.learn_calls == 4


def test_an_agent_gets_its_costs_even_when_others_learned_in_between():
    """Agents learn in turns: agent 0's batch is collected when agent 1's learn starts, and
    its costs must reach agent 0 at its own next learn, not be dropped."""
    from flare.framework.background_learning import BackgroundLearner

    learner = BackgroundLearner(ComputationTask("RL", CountingAlgorithm()))
    try:
        replies = [learner.start({agent: _batch(tag)}) for agent, tag in ((0, 1), (1, 2), (0, 3))]
        replies.append(learner.start({0: _batch(4), 1: _batch(5)}))
    finally:
        learner.close()
    assert replies[0] == {} and replies[1] == {}  # nobody has a learned batch yet
    assert list(replies[2]) == [0] and float(replies[2][0]["tag"][0, 0]) == 1.0
    assert {a: float(c["tag"][0, 0]) for a, c in replies[3].items()} == {0: 3.0, 1: 2.0}


class Handshake:
    """Events the learner and its acting copy share (a deep copy is the same one)."""

    def __init__(self) -> None:
        self.learning = threading.Event()
        self.predicted_meanwhile = threading.Event()

    def __deepcopy__(self, memo):
        return self


class HandshakeAlgorithm(CountingAlgorithm):
    """A learn that finishes only once a prediction was served while it ran: it fails
    after 10 s if learning and acting take turns."""

    def __init__(self) -> None:
        super().__init__()
        self.handshake = Handshake()

    def predict(self, inputs, states):
        if self.handshake.learning.is_set():
            self.handshake.predicted_meanwhile.set()
        return super().predict(inputs, states)

    def learn(self, *args, **kwargs):
        self.handshake.learning.set()
        if not self.handshake.predicted_meanwhile.wait(10):
            raise TimeoutError("no prediction was served while learning")
        return super().learn(*args, **kwargs)


def test_predictions_are_served_while_a_learn_runs():
    alg = HandshakeAlgorithm()
    ct = ComputationTask("RL", alg)
    cdp = ComputationDataProcessor(ct, batch_wait_s=1.0, learn_beside_acting=True)

    def work(channel):
        channel.request(LearnRequest(_batch(1.0)))
        return [_predict(channel) for _ in range(3)]

    assert _serve_one_agent(cdp, work) == [0, 0, 0]
    assert cdp.error is None
    assert alg.handshake.predicted_meanwhile.is_set()
    assert _count(ct.alg) == 1.0


class FailingCounter(CountingAlgorithm):
    def learn(self, *args, **kwargs):
        raise ValueError("simulated bug in learn()")


def test_a_failing_background_learn_is_the_cdps_error_and_closes_the_channel():
    cdp = ComputationDataProcessor(
        ComputationTask("RL", FailingCounter()), batch_wait_s=1.0, learn_beside_acting=True
    )

    def work(channel):
        channel.request(LearnRequest(_batch(1.0)))  # (answered at once)
        with pytest.raises(CDPClosed):
            for _ in range(50):
                channel.request(LearnRequest(_batch(2.0)))  # collects the failed one
        return "closed"

    assert _serve_one_agent(cdp, work) == "closed"
    assert "simulated bug in learn()" in cdp.error


def test_a_checkpoint_keeps_the_acting_weights_and_a_load_restores_them():
    ct = ComputationTask("RL", CountingAlgorithm())
    ct.act_on_a_copy()
    ct.alg.model.count.data.fill_(5.0)
    ct.acting.model.count.data.fill_(4.0)
    state = ct.state_dict()
    other = ComputationTask("RL", CountingAlgorithm())
    other.act_on_a_copy()
    other.load_state_dict(state)
    assert _count(other.alg) == 5.0
    assert _count(other.acting) == 4.0
    lock_step = ComputationTask("RL", CountingAlgorithm())
    lock_step.load_state_dict(state)  # (a run that acts on its own weights takes it too)
    assert _count(lock_step.alg) == 5.0


def test_settings_refuse_a_helper_that_acts_on_costs_and_shared_models():
    alg = CountingAlgorithm()
    with pytest.raises(ValueError, match="ExpReplayHelper acts on each batch's costs"):
        Manager(
            {
                "RL": dict(
                    algorithm=alg,
                    agent_helper=ExpReplayHelper,
                    buffer_capacity=10,
                    num_experiences=2,
                    sample_interval=1,
                    learn_beside_acting=True,
                )
            }
        )
    with pytest.raises(TypeError, match="learn_beside_acting'\\] must be a bool"):
        Manager({"RL": dict(algorithm=alg, agent_helper=OnlineHelper, learn_beside_acting=1)})
    shared = CountingAlgorithm()
    twin = CountingAlgorithm()
    twin.model.count = shared.model.count  # (one parameter in two models)
    with pytest.raises(ValueError, match="needs a model of its own"):
        Manager(
            {
                "RL": dict(algorithm=shared, agent_helper=OnlineHelper, learn_beside_acting=True),
                "aux": dict(algorithm=twin, agent_helper=OnlineHelper),
            }
        )


def test_a_seeded_run_learning_beside_acting_plays_the_same_games_twice():
    from test_identity_learning import train

    runs = [train("simple_ac_beside_acting") for _ in range(2)]
    games = [[(r.agent, r.agent_game, r.return_) for r in in_play_order(m.stats)] for m in runs]
    assert games[0] == games[1]
    assert runs[0].cdps["RL"].stats.learn_calls > 0
    first, second = (m.cts["RL"].alg.model.state_dict() for m in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
