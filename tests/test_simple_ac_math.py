"""SimpleAC's learn runs the model once over the batch and only where needed over the next
inputs, and costs what the textbook's three passes (V(s), V(s') and pi(.|s)) cost."""

import torch
from torch import nn

from flare.algorithm_zoo.policies import action_log_prob
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.model_zoo.simple_models import SimpleModelAC


class RowCountingNet(nn.Module):
    """A perception net that records the rows of every batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 16), nn.Tanh())
        self.rows: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.shape[0])
        return self.body(x)


def _rollouts():
    """Two agents' rollouts of 4 steps, one after the other in the batch; agent 0's game
    ends at its third step (its fourth row starts a new game), agent 1's times out at its
    last."""
    torch.manual_seed(0)
    observations = [torch.randn(5, 3) for _ in range(2)]
    observations[0][3] = torch.randn(3)  # a new game's first observation after the end
    inputs, next_inputs, alive = [], [], []
    for agent, obs in enumerate(observations):
        for t in range(4):
            inputs.append(obs[t])
            if agent == 0 and t == 2:
                next_inputs.append(torch.randn(3))  # the last frame of the game that ended
                alive.append(0.0)
            else:
                next_inputs.append(obs[t + 1])
                alive.append(-1.0 if (agent == 1 and t == 3) else 1.0)
    return (
        {"sensor": torch.stack(inputs)},
        {"sensor": torch.stack(next_inputs)},
        {"alive": torch.tensor(alive).unsqueeze(1)},
    )


def _textbook_cost(model, inputs, next_inputs, next_alive, action, reward, discount):
    value = model.value(inputs, {})[0]["v_value"]
    with torch.no_grad():
        next_value = model.value(next_inputs, {})[0]["v_value"] * next_alive.abs()
    td_error = reward + discount * next_value - value
    dists, _ = model.policy(inputs, {})
    return td_error.pow(2) - action_log_prob(dists["action"], action) * td_error.detach()


def test_learn_costs_what_three_passes_cost_and_runs_the_model_on_few_next_rows():
    net = RowCountingNet()
    model = SimpleModelAC([3], num_actions=2, perception_net=net)
    algorithm = SimpleAC(model, discount_factor=0.9)
    inputs, next_inputs, next_alive = _rollouts()
    action = {"action": torch.tensor([[0], [1], [1], [0], [1], [0], [0], [1]])}
    reward = {"reward": torch.linspace(-1, 1, 8).unsqueeze(1)}
    net.rows.clear()
    out = algorithm.learn(inputs, next_inputs, {}, {}, next_alive, action, {}, reward)
    # one pass over the 8 rows; then V(s') only for the rows whose next step is not the
    # batch's next row and not a game over: the last rows of agent 0 and agent 1
    assert net.rows == [8, 2]
    expected = _textbook_cost(
        model, inputs, next_inputs, next_alive["alive"], action["action"], reward["reward"], 0.9
    )
    torch.testing.assert_close(out["cost"], expected)
    # and the gradients match: the same cost of the same weights
    grads = torch.autograd.grad(out["cost"].sum(), list(model.parameters()))
    expected = _textbook_cost(
        model, inputs, next_inputs, next_alive["alive"], action["action"], reward["reward"], 0.9
    )
    wanted = torch.autograd.grad(expected.sum(), list(model.parameters()))
    for got, want in zip(grads, wanted, strict=True):
        torch.testing.assert_close(got, want)


def test_a_batch_of_unrelated_rows_runs_the_next_values_on_every_live_row():
    net = RowCountingNet()
    model = SimpleModelAC([3], num_actions=2, perception_net=net)
    algorithm = SimpleAC(model, discount_factor=0.9)
    torch.manual_seed(1)
    inputs, next_inputs = {"sensor": torch.randn(5, 3)}, {"sensor": torch.randn(5, 3)}
    next_alive = {"alive": torch.tensor([[1.0], [0.0], [1.0], [-1.0], [0.0]])}
    action = {"action": torch.zeros(5, 1, dtype=torch.int64)}
    reward = {"reward": torch.ones(5, 1)}
    net.rows.clear()
    out = algorithm.learn(inputs, next_inputs, {}, {}, next_alive, action, {}, reward)
    assert net.rows == [5, 3]  # the game overs need no V(s')
    expected = _textbook_cost(
        model, inputs, next_inputs, next_alive["alive"], action["action"], reward["reward"], 0.9
    )
    torch.testing.assert_close(out["cost"], expected)


def test_a_batch_of_one_row_learns():
    net = RowCountingNet()
    model = SimpleModelAC([3], num_actions=2, perception_net=net)
    algorithm = SimpleAC(model, discount_factor=0.9)
    torch.manual_seed(2)
    inputs, next_inputs = {"sensor": torch.randn(1, 3)}, {"sensor": torch.randn(1, 3)}
    next_alive = {"alive": torch.ones(1, 1)}
    action = {"action": torch.zeros(1, 1, dtype=torch.int64)}
    reward = {"reward": torch.ones(1, 1)}
    net.rows.clear()
    out = algorithm.learn(inputs, next_inputs, {}, {}, next_alive, action, {}, reward)
    assert net.rows == [1, 1]
    expected = _textbook_cost(
        model, inputs, next_inputs, next_alive["alive"], action["action"], reward["reward"], 0.9
    )
    torch.testing.assert_close(out["cost"], expected)
