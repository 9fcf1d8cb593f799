"""OnlineHelper and ExpReplayHelper: what they store, what they sample, when they learn."""

import random
from collections import Counter

import numpy as np
import pytest

from flare.framework.agent_helper import ExpReplayHelper, OnlineHelper, ReplayBuffer
from flare.framework.batch import LearnReply, LearnRequest
from flare.framework.experience import ALIVE, GAME_OVER, TIMED_OUT, DataKeys, Experience

KEYS = DataKeys(inputs=("sensor",), actions=("action",), states=(), rewards=("reward",))


class RecordingChannel:
    """Stands in for the CDP: records each learning batch and answers with zero costs."""

    def __init__(self):
        self.batches = []

    def request(self, message):
        assert isinstance(message, LearnRequest)
        self.batches.append(message.batch)
        return LearnReply({"cost": np.zeros((message.batch.size, 1))})

    def close(self):
        pass


def _data(t):
    return {
        "sensor": np.array([t], np.float32),
        "action": np.array([0]),
        "reward": np.array([float(t)], np.float32),
    }


def _store_episode(helper, start, length, end_alive):
    """Steps start..start+length-1 alive, then the final observation with end_alive."""
    for t in range(start, start + length):
        helper.store_data(ALIVE, _data(t))
    helper.store_data(end_alive, _data(start + length))


def _transitions(batches):
    pairs = []
    for b in batches:
        for x, nx, alive in zip(
            b.inputs["sensor"][:, 0],
            b.next_inputs["sensor"][:, 0],
            b.next_alive["alive"][:, 0],
            strict=True,
        ):
            pairs.append((int(x), int(nx), int(alive)))
    return pairs


def test_online_helper_learns_every_transition_exactly_once():
    channel = RecordingChannel()
    helper = OnlineHelper("RL", channel, sample_interval=4)
    helper.bind(KEYS, seed=0)
    _store_episode(helper, 0, 5, GAME_OVER)  # obs 0..4 alive, 5 game over
    _store_episode(helper, 100, 6, TIMED_OUT)  # obs 100..105 alive, 106 timed out
    helper.learn()  # flush what is left
    expected = [(t, t + 1, 1) for t in range(4)] + [(4, 5, 0)]
    expected += [(t, t + 1, 1) for t in range(100, 105)] + [(105, 106, -1)]
    assert sorted(_transitions(channel.batches)) == sorted(expected)
    # learning happened on the schedule: every 4 stored steps (13 stores -> 3 learns + flush)
    assert len(channel.batches) == 4


def test_online_helper_never_links_two_episodes():
    channel = RecordingChannel()
    helper = OnlineHelper("RL", channel, sample_interval=100)
    helper.bind(KEYS, seed=0)
    _store_episode(helper, 0, 2, GAME_OVER)
    _store_episode(helper, 10, 2, GAME_OVER)
    helper.learn()
    pairs = _transitions(channel.batches)
    assert (2, 10, 1) not in pairs and all(nx - x == 1 for x, nx, _ in pairs)


def test_rewards_and_actions_come_from_the_current_step():
    channel = RecordingChannel()
    helper = OnlineHelper("RL", channel, sample_interval=3)
    helper.bind(KEYS, seed=0)
    _store_episode(helper, 0, 2, GAME_OVER)
    batch = channel.batches[0]
    np.testing.assert_array_equal(batch.rewards["reward"][:, 0], batch.inputs["sensor"][:, 0])
    assert batch.actions["action"].shape == (2, 1)


def test_replay_buffer_overwrites_the_oldest():
    buffer = ReplayBuffer(capacity=3)
    for t in range(5):
        buffer.add(Experience(_data(t), ALIVE))
    assert len(buffer) == 3
    assert [int(buffer[i].data["sensor"][0]) for i in range(3)] == [2, 3, 4]


def test_replay_sampling_is_uniform_and_stays_within_episodes():
    buffer = ReplayBuffer(capacity=1000)
    for episode in range(10):  # 10 episodes: 9 alive steps then a game over
        for t in range(10):
            buffer.add(Experience(_data(episode * 10 + t), ALIVE if t < 9 else GAME_OVER))
    rng = random.Random(0)
    draws = Counter()
    for seq in buffer.sample(9000, rng):
        first, second = (int(e.data["sensor"][0]) for e in seq)
        assert second == first + 1 and first % 10 != 9  # never from a terminal step
        draws[first] += 1
    assert len(draws) == 90  # every valid transition can be drawn
    counts = np.array(list(draws.values()))
    assert counts.min() > 60 and counts.max() < 145  # ~100 each: uniform


def test_exp_replay_helper_waits_for_warmup_then_samples_batches():
    channel = RecordingChannel()
    helper = ExpReplayHelper(
        "RL", channel, buffer_capacity=100, num_experiences=8, sample_interval=2, warmup=10
    )
    helper.bind(KEYS, seed=1)
    for t in range(9):
        helper.store_data(ALIVE, _data(t))
    assert channel.batches == []  # below warmup: nothing learned
    helper.store_data(ALIVE, _data(9))
    assert len(channel.batches) == 1 and channel.batches[0].size == 8


def test_exp_replay_seeds_differ_per_agent():
    def first_batch(seed):
        channel = RecordingChannel()
        helper = ExpReplayHelper(
            "RL", channel, buffer_capacity=100, num_experiences=16, sample_interval=50
        )
        helper.bind(KEYS, seed=seed)
        for t in range(50):
            helper.store_data(ALIVE, _data(t))
        return channel.batches[0].inputs["sensor"][:, 0].tolist()

    assert first_batch(0) == first_batch(0)
    assert first_batch(0) != first_batch(1)


@pytest.mark.parametrize("kwargs", [dict(sample_interval=0)])
def test_bad_helper_settings(kwargs):
    with pytest.raises(ValueError):
        OnlineHelper("RL", RecordingChannel(), **kwargs)
    with pytest.raises(ValueError):
        ReplayBuffer(1)


def test_an_interrupted_episode_keeps_its_data_but_links_to_nothing():
    channel = RecordingChannel()
    helper = OnlineHelper("RL", channel, sample_interval=100)
    helper.bind(KEYS, seed=0)
    for t in range(3):  # steps 0, 1, 2 of an episode whose simulator then dies
        helper.store_data(ALIVE, _data(t))
    helper.interrupt_episode()
    _store_episode(helper, 10, 2, GAME_OVER)
    helper.learn()
    pairs = _transitions(channel.batches)
    assert (0, 1, 1) in pairs and (1, 2, 1) in pairs  # what was played is still learned
    assert all(x != 2 for x, _, _ in pairs)  # no transition out of the interrupted step
    assert all(alive != 0 or x == 11 for x, _, alive in pairs)  # no false game over


def test_replay_never_samples_out_of_an_interrupted_step():
    buffer = ReplayBuffer(capacity=4)
    for t in range(6):  # wraps around the ring
        buffer.add(Experience(_data(t), ALIVE))
    buffer.mark_newest_run_end()
    buffer.add(Experience(_data(100), ALIVE))
    buffer.add(Experience(_data(101), ALIVE))
    firsts = {int(seq[0].data["sensor"][0]) for seq in buffer.sample(500, random.Random(0))}
    assert firsts == {4, 100}  # 5 ended its run; 101 is the newest
