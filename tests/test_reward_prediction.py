"""Two computation tasks in one agent: RL plus reward prediction (UNREAL).

The helper stores only rewarding steps and samples them balanced by sign; the algorithm's
cross-entropy is checked by hand; the two models share one perception net; and a seeded
run on Catch shows both objectives going down while the RL task still learns.
"""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.algorithm_zoo.reward_prediction import RewardPrediction
from flare.experiments import catch
from flare.framework.batch import LearnReply, LearnRequest
from flare.framework.computation_task import ComputationTask
from flare.framework.experience import ALIVE, GAME_OVER, DataKeys
from flare.framework.manager import Manager
from flare.framework.reward_replay import NEGATIVE, POSITIVE, RewardReplayHelper
from flare.model_zoo.auxiliary_models import RewardPredictionModel
from flare.testing.sparse_reward_envs import CatchEnv

ROOT = Path(__file__).resolve().parents[1]

KEYS = DataKeys(inputs=("sensor", "action"), actions=(), states=(), rewards=("reward",))


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


def _helper(seed=0, **settings):
    settings = {"buffer_capacity": 100, "num_experiences": 8, **settings}
    helper = RewardReplayHelper("reward_prediction", RecordingChannel(), **settings)
    helper.bind(KEYS, seed=seed)
    return helper


def _step(t, reward, alive=ALIVE):
    """One offered step: sensor [t] identifies it."""
    data = {
        "sensor": np.array([t], np.float32),
        "action": np.array([t % 3]),
        "reward": np.array([reward], np.float32),
    }
    return alive, data


def _store(helper, rewards, start=0):
    for t, reward in enumerate(rewards, start):
        helper.store_data(*_step(t, reward))


# ----- the helper ---------------------------------------------------------------------------
def test_helper_stores_only_non_zero_rewards_by_sign():
    helper = _helper(sample_interval=1000)
    _store(helper, [0, 0, 1, 0, -1, -0.5, 0, 2])
    helper.store_data(*_step(99, 0.0, alive=GAME_OVER))  # an episode's final observation
    assert helper.class_sizes() == {NEGATIVE: 2, POSITIVE: 2}
    stored = {c: [int(e.data["sensor"][0]) for e in ring] for c, ring in helper.rings.items()}
    assert stored == {NEGATIVE: [4, 5], POSITIVE: [2, 7]}


def test_batches_are_balanced_however_skewed_the_buffer():
    helper = _helper(buffer_capacity=1000, num_experiences=8, sample_interval=1000)
    _store(helper, [-1] * 90 + [1] * 10)  # 90% negative
    for _ in range(20):
        batch = helper.make_batch()
        signs = Counter(np.sign(batch.rewards["reward"][:, 0]).tolist())
        assert signs == {-1.0: 4, 1.0: 4}
    # over many batches every stored step of the rare class is drawn, uniformly
    drawn = Counter()
    for _ in range(500):
        batch = helper.make_batch()
        positive = batch.rewards["reward"][:, 0] > 0
        drawn.update(batch.inputs["sensor"][positive, 0].astype(int).tolist())
    assert sorted(drawn) == list(range(90, 100))
    assert min(drawn.values()) > 0.7 * 2000 / 10  # 2000 positive draws over 10 steps


def test_odd_batches_and_a_single_class():
    helper = _helper(num_experiences=5, sample_interval=1000, warmup=1)
    _store(helper, [1, 1, 1])  # positives only: the whole batch comes from them
    assert (helper.make_batch().rewards["reward"] > 0).all()
    _store(helper, [-1], start=3)
    counts = Counter()
    for _ in range(200):
        signs = np.sign(helper.make_batch().rewards["reward"][:, 0])
        split = (int((signs < 0).sum()), int((signs > 0).sum()))
        assert split in ((2, 3), (3, 2))  # 5 // 2 of each, the odd one to a random class
        counts[split] += 1
    assert counts[(2, 3)] > 60 and counts[(3, 2)] > 60


def test_sampling_is_seeded():
    def batches(seed):
        helper = _helper(seed=seed, sample_interval=1000)
        _store(helper, [-1, 1] * 20)
        return [helper.make_batch().inputs["sensor"][:, 0].tolist() for _ in range(5)]

    assert batches(3) == batches(3)
    assert batches(3) != batches(4)


def test_capacity_is_per_sign_and_keeps_the_newest():
    helper = _helper(buffer_capacity=3, sample_interval=1000)
    _store(helper, [1, 1] + [-1] * 10)  # a flood of negatives does not evict the positives
    assert helper.class_sizes() == {NEGATIVE: 3, POSITIVE: 2}
    assert [int(e.data["sensor"][0]) for e in helper.rings[NEGATIVE]] == [9, 10, 11]
    assert [int(e.data["sensor"][0]) for e in helper.rings[POSITIVE]] == [0, 1]


def test_schedule_counts_offered_steps_and_waits_for_warmup():
    helper = _helper(num_experiences=4, sample_interval=5, warmup=3)
    _store(helper, [0, 0, 0, 1, 0] + [0, -1, 0, 0, 0])  # 10 offered, 2 stored
    assert helper.channel.batches == []  # learn attempted at 5 and 10: below warmup
    _store(helper, [0, 0, 1, 0, 0], start=10)  # 15 offered, 3 stored
    assert len(helper.channel.batches) == 1
    batch = helper.channel.batches[0]
    assert batch.size == 4
    assert sorted(batch.inputs) == ["action", "sensor"]
    assert batch.inputs["sensor"].shape == (4, 1) and batch.inputs["action"].shape == (4, 1)
    np.testing.assert_array_equal(batch.next_inputs["sensor"], batch.inputs["sensor"])
    np.testing.assert_array_equal(batch.next_alive["alive"], np.zeros((4, 1)))
    np.testing.assert_array_equal(batch.sequence_lengths, np.ones(4))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"buffer_capacity": 0}, "buffer_capacity must be an int >= 1"),
        ({"num_experiences": 0}, "num_experiences must be an int >= 1"),
        ({"num_experiences": 2.5}, "num_experiences must be an int >= 1"),
        ({"warmup": 0}, "warmup must be an int >= 1 or None"),
        ({"sample_interval": 0}, "sample_interval must be >= 1"),
    ],
)
def test_helper_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        _helper(**settings)


def test_ct_settings_reject_unknown_helper_settings():
    settings = catch.build_ct_settings()
    settings["reward_prediction"]["capacity"] = 10
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['capacity'\]"):
        Manager(settings)
    settings["reward_prediction"].pop("capacity")
    settings["reward_prediction"].pop("num_experiences")
    with pytest.raises(ValueError, match="RewardReplayHelper needs num_experiences"):
        Manager(settings)  # when the Manager is built, not when the agents start


def test_helper_names_a_missing_reward():
    helper = _helper()
    with pytest.raises(KeyError, match=r"lacks the rewards \['reward'\]"):
        helper.store_data(ALIVE, {"sensor": np.zeros(1), "action": np.zeros(1)})


# ----- the algorithm and the models ---------------------------------------------------------
def _identity_model():
    """logits = relu(sensor): the perception net and both head layers are identities."""
    model = RewardPredictionModel((2,), 3, nn.Identity(), use_action=False, hidden=2)
    with torch.no_grad():
        for layer in (model.reward_head[0], model.reward_head[2]):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    return model


def _learn(alg, sensor, reward):
    n = len(reward)
    return alg.learn(
        inputs={"sensor": torch.tensor(sensor, dtype=torch.float32)},
        next_inputs={"sensor": torch.tensor(sensor, dtype=torch.float32)},
        states={},
        next_states={},
        next_alive={"alive": torch.zeros(n, 1)},
        actions={},
        next_actions={},
        rewards={"reward": torch.tensor(reward, dtype=torch.float32).reshape(n, 1)},
    )


def test_cross_entropy_by_hand():
    alg = RewardPrediction(_identity_model())
    # logits (ln 3, 0): p(negative) = 3/4, p(positive) = 1/4
    sensor = [[np.log(3.0), 0.0]] * 2 + [[0.0, np.log(3.0)]]
    costs = _learn(alg, sensor, [1.0, -2.0, 0.5])
    np.testing.assert_allclose(
        costs["cost"].detach().numpy(), [[np.log(4)], [-np.log(0.75)], [-np.log(0.75)]], rtol=1e-6
    )
    np.testing.assert_array_equal(costs["accuracy"].numpy(), [[0.0], [1.0], [1.0]])
    assert costs["cost"].requires_grad and not costs["accuracy"].requires_grad


def test_zero_rewards_are_refused():
    with pytest.raises(ValueError, match="non-zero rewards only"):
        _learn(RewardPrediction(_identity_model()), [[0.0, 0.0]], [0.0])


def test_the_reward_prediction_ct_never_acts():
    ct = ComputationTask("reward_prediction", RewardPrediction(_identity_model()))
    actions, states, behavior = ct.predict({"sensor": np.zeros((2, 2), np.float32)}, {})
    assert actions == {} and states == {} and behavior == {}
    assert ct.keys.inputs == ("sensor",) and ct.keys.actions == ()


def test_models_share_one_perception_net_that_both_tasks_train():
    torch.manual_seed(0)
    settings = catch.build_ct_settings()
    rl = settings["RL"]["algorithm"]
    aux = settings["reward_prediction"]["algorithm"]
    assert aux.model.perception_net is rl.model.perception_net
    shared = {id(p) for p in rl.model.perception_net.parameters()}
    in_both = {id(p) for p in rl.model.parameters()} & {id(p) for p in aux.model.parameters()}
    assert in_both == shared
    # one reward-prediction update moves the RL model's features, not its heads
    before = {k: v.clone() for k, v in rl.model.state_dict().items()}
    env = CatchEnv(seed=0)
    helper = _helper(num_experiences=4, warmup=1)
    for i in range(4):
        reward = np.array([1.0 if i % 2 else -1.0], np.float32)
        helper.store_data(ALIVE, {**env.reset(), "action": np.array([i % 3]), "reward": reward})
    ComputationTask("reward_prediction", aux).learn(helper.make_batch())
    after = rl.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"perception_net.{k}" for k in rl.model.perception_net.state_dict()}


# ----- the two tasks learning together ------------------------------------------------------
GAMES_PER_AGENT = 500  # 8 agents: a budget of 4,000 games
K = 200  # games compared at the start and at the end


@pytest.mark.slow
def test_both_objectives_decrease_and_rl_still_learns(no_stray_processes):
    """Seeded, full batches (batch_wait_s=1): the same games on any machine.

    "The RL objective" is the critic's: the squared one-step TD error (``RL/value_cost``),
    not the actor-critic's whole cost, whose policy-gradient term follows the TD errors'
    sign. The reward-prediction objective is its cross-entropy. Each is averaged per game
    and compared over the first and the last K games; the RL task must reach a mean return
    of 0.8 over 100 games (90% of the balls caught) within the budget."""
    manager = catch.train(num_games=GAMES_PER_AGENT, seed=0, print_interval_s=0)
    assert manager.cts["RL"].lock is manager.cts["reward_prediction"].lock  # shared net
    for record in manager.stats:  # a game's cost is the RL task's (the first CT) alone
        if record.cost is not None:
            assert record.cost == pytest.approx(record.costs["RL/cost"])
    games = catch.games_to_mean_return(manager, 0.8)
    value_cost = catch.cost_series(manager, "RL/value_cost")
    aux_cost = catch.cost_series(manager, "reward_prediction/cost")
    accuracy = catch.cost_series(manager, "reward_prediction/accuracy")
    summary = (
        f"games to 0.8: {games}; value cost {value_cost[:K].mean():.4f} -> "
        f"{value_cost[-K:].mean():.4f}; reward prediction {aux_cost[:K].mean():.4f} -> "
        f"{aux_cost[-K:].mean():.4f}, accuracy {accuracy[:K].mean():.2f} -> "
        f"{accuracy[-K:].mean():.2f}"
    )
    assert games is not None and games <= 8 * GAMES_PER_AGENT, summary
    assert value_cost[-K:].mean() < 0.5 * value_cost[:K].mean(), summary
    assert aux_cost[-K:].mean() < 0.5 * aux_cost[:K].mean(), summary
    assert accuracy[-K:].mean() > 0.9, summary


@pytest.mark.slow
def test_example_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "examples/reward_prediction_example.py", "--num-games", "3"]
        + ["--num-agents", "2", "--log-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 games" in result.stdout
    assert len((tmp_path / "games.csv").read_text().splitlines()) == 1 + 6
