"""Behavior data (returned by predict for learning only), run lengths and sample weights
travel from prediction to learning intact."""

import numpy as np
import pytest
import torch

from flare.framework.agent_helper import OnlineHelper
from flare.framework.batch import LearnBatch, LearnReply, LearnRequest, PredictReply
from flare.framework.computation_task import ComputationTask
from flare.framework.experience import DataKeys
from tests.conftest import EchoAlgorithm, EchoModel


class BehaviorAlgorithm(EchoAlgorithm):
    """Also returns ``behavior_p`` = 10 x action; its learn sees what came back."""

    def __init__(self, model, returned=("action", "behavior_p")):
        super().__init__(model)
        self.returned = returned
        self.seen = None

    def get_behavior_specs(self):
        return [("behavior_p", dict(shape=[1]))]

    def predict(self, inputs, states):
        actions, states = super().predict(inputs, states)
        out = {"action": actions["action"], "behavior_p": 10.0 * actions["action"].float()}
        out["extra"] = torch.zeros(1)
        return {k: out[k] for k in self.returned}, states

    def update(self, *, sample_weights=None, sequence_lengths=None, **batch):
        self.seen = dict(batch, sample_weights=sample_weights, sequence_lengths=sequence_lengths)
        return super().update(sample_weights=sample_weights, **batch)


def test_ct_splits_actions_for_the_env_from_behavior_data():
    ct = ComputationTask("RL", BehaviorAlgorithm(EchoModel()))
    actions, _, behavior = ct.predict({"sensor": np.array([[1.0, 2.0]])}, {})
    assert list(actions) == ["action"]  # only this goes to the env
    assert behavior["behavior_p"].tolist() == [[30.0]]
    assert ct.keys.behavior == ("behavior_p",)


@pytest.mark.parametrize(
    "returned, message",
    [(("action",), "missing \\['behavior_p'\\]"), (("action", "behavior_p", "extra"), "extra")],
)
def test_predict_must_return_exactly_the_declared_names(returned, message):
    ct = ComputationTask("RL", BehaviorAlgorithm(EchoModel(), returned))
    with pytest.raises(KeyError, match=message):
        ct.predict({"sensor": np.array([[1.0, 2.0]])}, {})


def test_behavior_names_may_not_reuse_model_names():
    class Clash(BehaviorAlgorithm):
        def get_behavior_specs(self):
            return [("action", dict(shape=[1]))]

    with pytest.raises(ValueError, match="reuse model names"):
        Clash(EchoModel())


class PredictThenLearnChannel:
    """Answers predictions with behavior = 100 + t, and records learning batches."""

    def __init__(self):
        self.t = 0
        self.batches = []

    def request(self, message):
        if isinstance(message, LearnRequest):
            self.batches.append(message.batch)
            return LearnReply({"cost": np.zeros((message.batch.size, 1))})
        self.t += 1
        return PredictReply(
            {"action": np.array([[0]])}, {}, {"behavior_p": np.array([[100.0 + self.t]])}
        )

    def close(self):
        pass


def test_helper_stores_behavior_with_the_step_it_acted_on_and_cuts_runs():
    keys = DataKeys(("sensor",), ("action",), (), ("reward",), behavior=("behavior_p",))
    channel = PredictThenLearnChannel()
    helper = OnlineHelper("RL", channel, sample_interval=7)
    helper.bind(keys, seed=0)
    # an episode of 3 steps + its final observation (game over), then 3 steps of the next
    for t, alive in enumerate([1, 1, 1, 0, 1, 1, 1]):
        helper.predict({"sensor": np.array([[float(t)]])}, {})
        data = {"sensor": np.array([float(t)]), "action": np.array([0]), "reward": np.array([1.0])}
        helper.store_data(alive, data)
    (batch,) = channel.batches
    assert batch.sequence_lengths.tolist() == [3, 2]  # two runs: never one across games
    assert batch.inputs["sensor"][:, 0].tolist() == [0.0, 1.0, 2.0, 4.0, 5.0]
    # each step's behavior data is the one predicted for that step (t + 1 predictions)
    assert batch.actions["behavior_p"][:, 0].tolist() == [101.0, 102.0, 103.0, 105.0, 106.0]
    assert batch.next_actions["behavior_p"][:, 0].tolist() == [102.0, 103.0, 104.0, 106.0, 107.0]


def test_ct_learn_hands_behavior_run_lengths_and_weights_to_update():
    alg = BehaviorAlgorithm(EchoModel())
    ct = ComputationTask("RL", alg)
    n = 3
    batch = LearnBatch(
        inputs={"sensor": np.zeros((n, 2))},
        next_inputs={"sensor": np.zeros((n, 2))},
        states={},
        next_states={},
        next_alive={"alive": np.ones((n, 1), np.float32)},
        actions={"action": np.zeros((n, 1), np.int64), "behavior_p": np.full((n, 1), 7.0)},
        next_actions={"action": np.zeros((n, 1), np.int64), "behavior_p": np.zeros((n, 1))},
        rewards={"reward": np.array([[1.0], [2.0], [3.0]], np.float32)},
        sample_weights=np.array([1.0, 0.5, 0.0]),
        sequence_lengths=np.array([1, 2]),
    )
    costs = ct.learn(batch)
    assert alg.seen["actions"]["behavior_p"].tolist() == [[7.0]] * 3
    assert alg.seen["sequence_lengths"] == [1, 2]
    assert alg.seen["sample_weights"].tolist() == [[1.0], [0.5], [0.0]]
    assert costs["cost"].tolist() == [[1.0], [2.0], [3.0]]  # per-sample costs unweighted


def test_sample_weights_scale_each_sample_in_the_loss():
    alg = EchoAlgorithm(EchoModel(), optim=(torch.optim.SGD, dict(lr=1.0)))
    # cost = reward + sensor[0] + 0 * scale: d(cost)/d(scale) = 0, so use a model whose
    # gradient depends on the sample: scale * reward
    alg.learn = lambda **b: {"cost": b["rewards"]["reward"] * alg.model.scale}
    batch = dict(
        inputs={}, next_inputs={}, states={}, next_states={}, next_alive={}, actions={},
        next_actions={}, rewards={"reward": torch.tensor([[1.0], [3.0]])},
    )  # fmt: skip
    alg.update(**batch, sample_weights=torch.tensor([[1.0], [0.0]]))
    # loss = mean(w * r * scale) = (1*1 + 0*3) / 2 * scale: gradient 0.5, SGD lr 1
    assert alg.model.scale.item() == pytest.approx(0.5)


def test_learn_batch_rejects_run_lengths_that_do_not_add_up():
    with pytest.raises(ValueError, match="sequence_lengths"):
        LearnBatch(
            inputs={}, next_inputs={}, states={}, next_states={},
            next_alive={"alive": np.ones((3, 1))}, actions={}, next_actions={}, rewards={},
            sequence_lengths=np.array([1, 1]),
        )  # fmt: skip
