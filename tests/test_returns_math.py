"""Return targets and distributional losses against answers worked out by hand."""

import pytest
import torch

from flare.algorithm_zoo.distributional import categorical_projection, quantile_huber_loss
from flare.algorithm_zoo.returns import generalized_advantages, n_step_returns


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_n_step_returns_bootstrap_where_the_window_or_data_ends():
    rewards, next_values = t(1, 1, 1, 1), t(10, 10, 10, 10)
    got = n_step_returns(rewards, next_values, t(1, 1, 1, 1), discount=0.5, n=2)
    # 1 + .5 * 1 + .25 * 10 for full windows; the last step has only itself left
    assert got.tolist() == [4.0, 4.0, 4.0, 6.0]


def test_n_step_returns_stop_at_a_game_over_and_bootstrap_through_a_time_out():
    rewards, next_values = t(1, 1, 1), t(10, 10, 10)
    game_over = n_step_returns(rewards, next_values, t(1, 0, 1), discount=0.5, n=3)
    assert game_over[:2].tolist() == [1.5, 1.0]  # no value after the game over
    time_out = n_step_returns(rewards, next_values, t(1, -1, 1), discount=0.5, n=3)
    assert time_out[:2].tolist() == [1 + 0.5 + 0.25 * 10, 1 + 0.5 * 10]


def test_n_step_returns_limits():
    rewards, next_values, alive = t(1, 2, 3), t(4, 5, 6), t(1, 1, 0)
    one = n_step_returns(rewards, next_values, alive, discount=0.9, n=1)
    assert torch.allclose(one, rewards + 0.9 * alive.abs() * next_values)  # the TD target
    monte_carlo = n_step_returns(rewards, next_values, alive, discount=0.9, n=10)
    assert monte_carlo[0].item() == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    with pytest.raises(ValueError, match="n must be"):
        n_step_returns(rewards, next_values, alive, discount=0.9, n=0)


def test_gae_by_hand():
    advantages, targets = generalized_advantages(
        t(1, 1), t(0.5, 0.5), t(0.5, 2.0), t(1, 0), discount=0.9, lam=0.8
    )
    # delta0 = 1 + .9 * .5 - .5 = .95, delta1 = 1 - .5 = .5 (game over: no bootstrap)
    assert advantages.tolist() == pytest.approx([0.95 + 0.9 * 0.8 * 0.5, 0.5])
    assert targets.tolist() == pytest.approx([1.31 + 0.5, 1.0])


def test_gae_lambda_limits_are_td_and_monte_carlo():
    rewards, values, next_values = t(1, 2, 3, 4), t(0.1, 0.2, 0.3, 0.4), t(0.2, 0.3, 0.4, 9)
    alive = t(1, 1, 1, -1)  # ends in a time-out: bootstraps from 9
    td, _ = generalized_advantages(rewards, values, next_values, alive, discount=0.9, lam=0)
    assert torch.allclose(td, rewards + 0.9 * next_values - values)
    _, mc = generalized_advantages(rewards, values, next_values, alive, discount=0.9, lam=1)
    assert torch.allclose(mc, n_step_returns(rewards, next_values, alive, 0.9, n=4))


def test_gae_trace_stops_at_an_episode_end_inside_the_batch():
    # two episodes back to back: the first ends in a time-out after step 0
    advantages, _ = generalized_advantages(
        t(1, 1), t(0, 0), t(5, 0), t(-1, 0), discount=1.0, lam=1.0
    )
    assert advantages.tolist() == [1 + 5, 1]  # step 0 bootstraps; it does not see step 1


def test_c51_projection_by_hand():
    atoms = t(-1, 0, 1)
    uniform = torch.full((1, 3), 1 / 3)
    got = categorical_projection(uniform, atoms, t(0.25), t(0.5))
    # shifted atoms -0.25, 0.25, 0.75 split between their neighbours
    assert got[0].tolist() == pytest.approx([1 / 12, 7 / 12, 1 / 3])
    assert (got * atoms).sum().item() == pytest.approx(0.25)  # the mean is kept


@pytest.mark.parametrize(
    "reward, discount, expected",
    [
        (0.5, 0.0, [0.0, 0.5, 0.5]),  # a game over: all mass on the reward
        (0.0, 1.0, [0.2, 0.5, 0.3]),  # nothing moves
        (5.0, 1.0, [0.0, 0.0, 1.0]),  # clamped to v_max
        (-1.0, 0.0, [1.0, 0.0, 0.0]),  # exactly on an atom
    ],
)
def test_c51_projection_edges(reward, discount, expected):
    probs = torch.tensor([[0.2, 0.5, 0.3]])
    got = categorical_projection(probs, t(-1, 0, 1), t(reward), t(discount))
    assert got[0].tolist() == pytest.approx(expected)


def test_quantile_huber_loss_by_hand():
    def loss(q, tau, target, kappa=1.0):
        row = lambda values: torch.tensor([values], dtype=torch.float32)
        return quantile_huber_loss(row(q), torch.tensor(tau), row(target), kappa).item()

    assert loss([0.0], [0.5], [2.0]) == pytest.approx(0.5 * 1.5)  # linear part of Huber
    assert loss([2.0], [0.5], [0.0]) == pytest.approx(0.5 * 1.5)
    assert loss([0.0], [0.9], [-0.5]) == pytest.approx(0.1 * 0.125)  # quadratic part
    assert loss([0.0], [0.9], [2.0], kappa=0.0) == pytest.approx(0.9 * 2.0)  # pinball
    # two quantiles, two targets: sum over quantiles of the mean over targets
    both = loss([0.0, 1.0], [0.25, 0.75], [0.0, 2.0], kappa=0.0)
    assert both == pytest.approx((0.25 * 0 + 0.25 * 2) / 2 + (0.25 * 1 + 0.75 * 1) / 2)


def test_quantile_loss_is_minimised_at_the_quantile():
    targets = torch.arange(100, dtype=torch.float32)[None, :]
    candidates = torch.arange(80, 100, dtype=torch.float32)
    losses = [
        quantile_huber_loss(c.reshape(1, 1), t(0.9), targets, kappa=0.0).item() for c in candidates
    ]
    best = candidates[int(torch.tensor(losses).argmin())].item()
    assert 89 <= best <= 90
