"""Value-based algorithms against hand-worked answers: targets, bootstrapping, target sync."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.algorithm_zoo.distributional_q import C51, IQN, QRDQN
from flare.algorithm_zoo.q_learning import SimpleQ, SimpleSARSA
from flare.algorithm_zoo.value_based import EpsilonGreedy
from flare.framework.algorithm import Model
from flare.model_zoo.q_models import SimpleModelQ

GAMMA = 0.5


class TableQ(Model):
    """Q-values from a table indexed by the state number in ``sensor``; ``value_at`` gives
    the same table entry at every point (a distribution concentrated on Q)."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def get_input_specs(self):
        return [("sensor", dict(shape=[1]))]

    def get_action_specs(self):
        return [("action", dict(shape=[1], dtype="int64"))]

    def value(self, inputs, states):
        return {"q_value": self.table[inputs["sensor"][:, 0].long()]}, states

    def value_at(self, inputs, states, points):
        q = self.table[inputs["sensor"][:, 0].long()]  # [B, A]
        n = points.shape[-1]
        return q.unsqueeze(1).expand(-1, n, -1)


def _batch(state, action, reward, next_state, alive, next_action=0):
    def col(x, dtype=torch.float32):
        return torch.tensor([[x]], dtype=dtype)

    return dict(
        inputs={"sensor": col(state)},
        next_inputs={"sensor": col(next_state)},
        states={},
        next_states={},
        next_alive={"alive": col(alive)},
        actions={"action": col(action, torch.int64)},
        next_actions={"action": col(next_action, torch.int64)},
        rewards={"reward": col(reward)},
    )


TABLE = [[1.0, 2.0], [3.0, 5.0], [4.0, 0.0]]


@pytest.mark.parametrize(
    "alive, expected_target",
    [(1, 1.0 + GAMMA * 5.0), (-1, 1.0 + GAMMA * 5.0), (0, 1.0)],  # live, time-out, game over
)
def test_dqn_target_bootstraps_through_time_outs_not_game_overs(alive, expected_target):
    alg = SimpleQ(TableQ(TABLE), discount_factor=GAMMA, cost="mse", double_q=False)
    costs = alg.learn(**_batch(state=0, action=1, reward=1.0, next_state=1, alive=alive))
    td = expected_target - 2.0  # Q(0, 1) = 2
    assert costs["cost"].item() == pytest.approx(td**2)
    assert costs["priority"].item() == pytest.approx(abs(td))


def test_double_dqn_lets_the_online_model_pick_and_the_target_evaluate():
    alg = SimpleQ(TableQ(TABLE), discount_factor=GAMMA, cost="mse", double_q=True)
    with torch.no_grad():
        alg.target_model.table.copy_(torch.tensor([[0.0, 0.0], [10.0, 7.0], [0.0, 0.0]]))
    costs = alg.learn(**_batch(state=0, action=0, reward=0.0, next_state=1, alive=1))
    # online argmax at state 1 is action 1 (5 > 3); the target values it at 7 (not max 10)
    assert costs["priority"].item() == pytest.approx(abs(GAMMA * 7.0 - 1.0))


def test_sarsa_bootstraps_from_the_action_taken_next():
    alg = SimpleSARSA(TableQ(TABLE), discount_factor=GAMMA, cost="mse")
    costs = alg.learn(**_batch(state=0, action=1, reward=1.0, next_state=2, alive=1, next_action=1))
    assert costs["priority"].item() == pytest.approx(abs(1.0 + GAMMA * 0.0 - 2.0))  # Q(2,1)=0


def test_huber_cost_is_quadratic_then_linear():
    alg = SimpleQ(TableQ(TABLE), discount_factor=GAMMA, cost="huber", double_q=False)
    small = alg.learn(**_batch(state=0, action=1, reward=2.5, next_state=0, alive=0))  # td 0.5
    large = alg.learn(**_batch(state=0, action=1, reward=5.0, next_state=0, alive=0))  # td 3
    assert small["cost"].item() == pytest.approx(0.5 * 0.5**2)
    assert large["cost"].item() == pytest.approx(3.0 - 0.5)


def test_target_network_syncs_every_interval_learns():
    alg = SimpleQ(
        TableQ(TABLE), discount_factor=GAMMA, target_update_interval=3,
        optim=(torch.optim.SGD, dict(lr=0.1)),
    )  # fmt: skip
    batch = _batch(state=0, action=1, reward=10.0, next_state=0, alive=0)
    alg.update(**batch)
    alg.update(**batch)
    assert alg.target_model.table[0, 1].item() == pytest.approx(2.0)  # not yet
    assert alg.model.table[0, 1].item() != pytest.approx(2.0)
    alg.update(**batch)
    assert torch.equal(alg.target_model.table, alg.model.table)


def test_epsilon_decays_linearly_then_stays():
    schedule = EpsilonGreedy(start=1.0, end=0.1, decay_steps=100)
    assert [schedule.epsilon(s) for s in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


def test_epsilon_greedy_explores_at_the_scheduled_rate():
    torch.manual_seed(0)
    alg = SimpleQ(TableQ(TABLE), exploration=EpsilonGreedy(0.5, 0.5, 1))
    inputs = {"sensor": torch.zeros(4000, 1)}  # greedy action at state 0 is 1
    actions = alg.predict(inputs, {})[0]["action"]
    # half explore, and half of those pick the greedy action anyway: 25% take action 0
    assert (actions == 0).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert alg.steps == 4000


def test_c51_game_over_puts_all_target_mass_on_the_reward_atom():
    model = TableQ([[0.0, 0.0]])  # uniform logits over the atoms
    alg = C51(model, v_min=0.0, v_max=4.0, num_atoms=5, discount_factor=GAMMA)
    costs = alg.learn(**_batch(state=0, action=0, reward=3.0, next_state=0, alive=0))
    # target is a point mass on atom 3; predicted is uniform: cross-entropy = log 5
    assert costs["cost"].item() == pytest.approx(np.log(5.0), rel=1e-5)
    # C51's Q is the mean of the atoms under the softmax: uniform over 0..4 -> 2
    q = alg.q_values(model, {"sensor": torch.zeros(1, 1)}, {})
    assert q.tolist() == [[pytest.approx(2.0), pytest.approx(2.0)]]


def test_qr_dqn_cost_is_zero_when_quantiles_equal_a_certain_target():
    alg = QRDQN(TableQ([[2.0, 0.0], [1.0, 1.0]]), num_quantiles=4, discount_factor=0.5)
    # Q(0, 0) = 2 at every quantile; target = 1.5 + 0.5 * 1 (state 1, both actions 1)
    costs = alg.learn(**_batch(state=0, action=0, reward=1.5, next_state=1, alive=-1))
    assert costs["cost"].item() == pytest.approx(0.0, abs=1e-7)
    costs = alg.learn(**_batch(state=0, action=0, reward=1.5, next_state=1, alive=0))
    # target 1.5, prediction 2: u = -0.5 for all 4 quantiles at taus 1/8, 3/8, 5/8, 7/8;
    # weight |tau - 1| and huber 0.5 u^2 = 0.125 -> sum (7/8 + 5/8 + 3/8 + 1/8) * 0.125
    assert costs["cost"].item() == pytest.approx(2.0 * 0.125)


def test_iqn_and_qr_dqn_learn_on_the_shared_model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh())
    for alg_class in (QRDQN, IQN):
        alg = alg_class(SimpleModelQ((1,), 2, net), optim=(torch.optim.Adam, dict(lr=0.01)))
        batch = _batch(state=0, action=1, reward=1.0, next_state=0, alive=0)
        first = alg.update(**batch)["cost"].item()
        for _ in range(200):
            last = alg.update(**batch)["cost"].item()
        assert last < 0.2 * first
        q = alg.q_values(alg.model, {"sensor": torch.zeros(1, 1)}, {})
        assert q[0, 1].item() == pytest.approx(1.0, abs=0.1)  # the return is exactly 1


def test_distributional_algorithms_need_value_at():
    with pytest.raises(TypeError, match="value_at"):
        QRDQN(type("NoValueAt", (Model,), {
            "get_input_specs": TableQ.get_input_specs,
            "get_action_specs": TableQ.get_action_specs,
        })())  # fmt: skip
