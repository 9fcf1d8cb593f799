"""Prioritized replay: the priority tree, the sampling probabilities and importance weights."""

import random
from collections import Counter

import numpy as np
import pytest

from flare.common.sum_tree import PriorityTree
from flare.framework.agent_helper import ExpReplayHelper, PrioritizedReplayBuffer
from flare.framework.batch import LearnReply, LearnRequest
from flare.framework.experience import DataKeys, Experience

KEYS = DataKeys(inputs=("sensor",), actions=("action",), states=(), rewards=("reward",))


def _exp(i, alive=1):
    return Experience(
        data={"sensor": np.array([float(i)]), "action": np.array([0]), "reward": np.array([0.0])},
        alive=alive,
    )


def test_tree_sums_minimum_and_find():
    tree = PriorityTree(5)  # padded to 8 leaves
    tree.set(np.arange(5), [1.0, 0.0, 2.0, 3.0, 4.0])
    assert tree.total == 10.0
    assert tree.min_positive == 1.0  # the empty slot does not count
    # cumulative ranges: slot 0 [0,1), slot 2 [1,3), slot 3 [3,6), slot 4 [6,10)
    assert tree.find(np.array([0.0, 0.99, 1.0, 2.5, 3.0, 5.9, 6.0, 9.99])).tolist() == [
        0, 0, 2, 2, 3, 3, 4, 4,
    ]  # fmt: skip
    tree.set(0, 0.0)
    assert tree.total == 9.0 and tree.min_positive == 2.0
    with pytest.raises(ValueError):
        tree.set(1, -1.0)
    with pytest.raises(IndexError):
        tree.set(5, 1.0)


def _buffer_with_priorities(raw, alpha, capacity=16):
    buffer = PrioritizedReplayBuffer(capacity, alpha=alpha, epsilon=1e-12)
    for i in range(len(raw) + 1):  # n+1 experiences make n transitions
        buffer.add(_exp(i))
    buffer.update_priorities(np.arange(len(raw)), np.array(raw))
    return buffer


def test_sampling_probability_is_proportional_to_priority_power_alpha():
    buffer = _buffer_with_priorities([1.0, 2.0, 3.0, 4.0], alpha=1.0)
    rng = random.Random(0)
    counts = Counter()
    for _ in range(2000):
        sample = buffer.sample_prioritized(10, rng, beta=0.0)
        counts.update(int(s) for s in sample.slots)
    frequencies = np.array([counts[i] for i in range(4)]) / 20000
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.01)
    assert counts[4] == 0  # the newest experience has no successor yet


@pytest.mark.parametrize(
    "alpha, beta, expected",
    [
        # P = p^alpha / sum; w = (P / P_min)^-beta
        (1.0, 1.0, {0: 1.0, 1: 1 / 2, 2: 1 / 3, 3: 1 / 4}),
        (1.0, 0.5, {0: 1.0, 1: 2**-0.5, 2: 3**-0.5, 3: 4**-0.5}),
        (0.5, 1.0, {0: 1.0, 1: 2**-0.5, 2: 3**-0.5, 3: 4**-0.5}),
        (0.0, 1.0, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}),  # alpha 0 is uniform
    ],
)
def test_importance_weights(alpha, beta, expected):
    buffer = _buffer_with_priorities([1.0, 2.0, 3.0, 4.0], alpha=alpha)
    sample = buffer.sample_prioritized(200, random.Random(1), beta=beta)
    assert {int(s) for s in sample.slots} == {0, 1, 2, 3}
    for slot, weight in zip(sample.slots, sample.weights, strict=True):
        assert weight == pytest.approx(expected[int(slot)], rel=1e-5)


def test_new_transitions_get_the_largest_priority_and_overwritten_ones_vanish():
    buffer = _buffer_with_priorities([5.0, 1.0], alpha=1.0, capacity=4)
    assert buffer.max_priority == pytest.approx(5.0)
    buffer.add(_exp(3))  # the transition 2 -> 3 appears with the max priority
    assert buffer.tree[2] == pytest.approx(5.0)
    buffer.add(_exp(4))  # the ring is full: experience 0 (slot 0) is overwritten
    assert buffer.tree[0] == 0.0  # the newest: no transition leaves it yet
    assert buffer.tree[3] == pytest.approx(5.0)  # 3 -> 4
    buffer.add(_exp(5, alive=0))  # a game over: 4 -> 5 exists, nothing leaves 5
    assert buffer.tree[0] == pytest.approx(5.0) and buffer.tree[1] == 0.0
    sample = buffer.sample_prioritized(50, random.Random(2), beta=1.0)
    for (first, second), slot in zip(sample.sequences, sample.slots, strict=True):
        assert second.data["sensor"][0] == first.data["sensor"][0] + 1, slot


def test_a_game_over_step_is_never_the_start_of_a_transition():
    buffer = PrioritizedReplayBuffer(8, alpha=1.0)
    for i, alive in enumerate([1, 1, 0, 1, 1]):
        buffer.add(_exp(i, alive))
    assert [buffer.tree[i] > 0 for i in range(5)] == [True, True, False, True, False]


class _FakeChannel:
    """Answers a learn request with priorities equal to each transition's sensor value."""

    def __init__(self):
        self.batches = []

    def request(self, message):
        assert isinstance(message, LearnRequest)
        self.batches.append(message.batch)
        sensor = message.batch.inputs["sensor"]
        return LearnReply({"cost": np.zeros_like(sensor), "priority": sensor + 1.0})

    def close(self):
        pass


def test_helper_sends_importance_weights_and_updates_priorities_from_the_costs():
    channel = _FakeChannel()
    helper = ExpReplayHelper(
        "RL", channel, buffer_capacity=32, num_experiences=8, sample_interval=100,
        warmup=2, prioritized=True, alpha=1.0, beta=1.0,
    )  # fmt: skip
    helper.bind(KEYS, seed=0)
    for i in range(5):
        helper.store_data(1, _exp(i).data)
    helper.learn()  # all four transitions start at the max priority: uniform, weights 1
    np.testing.assert_allclose(channel.batches[0].sample_weights, 1.0)
    buffer = helper.replay_buffer
    assert [buffer.tree[i] for i in range(4)] == pytest.approx([1.0, 2.0, 3.0, 4.0])
    helper.learn()
    batch = channel.batches[1]
    expected = 1.0 / (batch.inputs["sensor"] + 1.0)  # (P / P_min)^-1 with P ~ sensor + 1
    np.testing.assert_allclose(batch.sample_weights, expected, rtol=1e-5)


def test_helper_says_when_the_algorithm_gives_no_priority():
    class NoPriority(_FakeChannel):
        def request(self, message):
            return LearnReply({"cost": np.zeros((message.batch.size, 1))})

    helper = ExpReplayHelper(
        "RL", NoPriority(), buffer_capacity=8, num_experiences=2, prioritized=True
    )
    helper.bind(KEYS, seed=0)
    for i in range(3):
        helper.store_data(1, _exp(i).data)
    with pytest.raises(KeyError, match="priority"):
        helper.learn()


def test_beta_anneals_to_one():
    helper = ExpReplayHelper(
        "RL", _FakeChannel(), buffer_capacity=8, num_experiences=2, beta=0.4, beta_anneal_learns=10
    )
    assert helper.current_beta == pytest.approx(0.4)
    helper.num_learns = 5
    assert helper.current_beta == pytest.approx(0.7)
    helper.num_learns = 50
    assert helper.current_beta == pytest.approx(1.0)
