"""DDPG and GaussianAC: they learn Pendulum within a budget, and their parts do exact math.

The learning tests batch every agent in each CDP call (``batch_wait_s=1.0``), so a seeded
run plays the same games whatever the machine's load.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.distributions import Independent, Normal

from flare.algorithm_zoo.ddpg import DDPG
from flare.algorithm_zoo.gaussian_ac import SAMPLED_ACTION, GaussianAC
from flare.algorithm_zoo.ppo import BEHAVIOR_LOG_PROB
from flare.common.noises import GaussianNoise, OrnsteinUhlenbeckNoise
from flare.experiments import best_mean
from flare.experiments import pendulum as experiments
from flare.model_zoo.continuous_models import (
    BoundedActionModel,
    SimpleModelDeterministic,
    SimpleModelGaussian,
)

ROOT = Path(__file__).resolve().parents[1]

WINDOW = 20  # games in the mean return the targets are about
RANDOM_RETURN = -1200.0  # acting at random; one game's return has a std of about 300


# ----- learning ---------------------------------------------------------------------------
@pytest.mark.parametrize("noise", ["gaussian", "ou"])
@pytest.mark.slow
def test_ddpg_learns_pendulum_within_budget(noise, no_stray_processes):
    # Seeds 0-2 reach the target after 48-56 games (about 10,000 steps) with either noise;
    # the budget is 4 agents x 40 games (32,000 steps).
    games_per_agent = 40
    manager = experiments.train_ddpg(
        num_games=games_per_agent, seed=0, noise=noise, print_interval_s=0
    )
    best = best_mean(manager, WINDOW)
    assert manager.reached_target, f"best mean of {WINDOW} games: {best:.1f}"
    assert len(manager.stats) <= experiments.DDPG_AGENTS * games_per_agent
    assert best >= experiments.DDPG_TARGET > RANDOM_RETURN + 700


@pytest.mark.slow
def test_gaussian_ac_learns_pendulum_within_budget(no_stray_processes):
    # Seeds 0-4 reach the target after 56-96 games (11,000-19,000 steps); the budget is
    # 8 agents x 30 games (48,000 steps).
    games_per_agent = 30
    manager = experiments.train_gaussian_ac(num_games=games_per_agent, seed=0, print_interval_s=0)
    best = best_mean(manager, WINDOW)
    assert manager.reached_target, f"best mean of {WINDOW} games: {best:.1f}"
    assert len(manager.stats) <= experiments.GAUSSIAN_AC_AGENTS * games_per_agent
    assert best >= experiments.GAUSSIAN_AC_TARGET > RANDOM_RETURN + 700


@pytest.mark.parametrize(
    "script, options",
    [("ddpg_example.py", ["--noise", "ou"]), ("gaussian_ac_example.py", [])],
)
@pytest.mark.slow
def test_pendulum_examples_run(script, options, tmp_path):
    result = subprocess.run(
        [sys.executable, f"examples/{script}", "--num-games", "1", "--log-dir", str(tmp_path)]
        + options,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = (tmp_path / "games.csv").read_text().splitlines()
    assert len(rows) == 1 + (4 if script.startswith("ddpg") else 8)
    assert "games," in result.stdout and "steps" in result.stdout  # the report line


# ----- DDPG -------------------------------------------------------------------------------
class TinyDeterministic(BoundedActionModel):
    """``mu(s) = w_a s``, ``Q(s, a) = w_q (s + a)``: targets can be worked out by hand."""

    def __init__(self) -> None:
        super().__init__((1,), (-2.0,), (2.0,))
        self.w_a = nn.Parameter(torch.tensor(0.5))
        self.w_q = nn.Parameter(torch.tensor(2.0))

    def actor(self, inputs, states):
        return {"action": (self.w_a * inputs["sensor"]).clamp(-2.0, 2.0)}, states

    def critic(self, inputs, actions, states):
        return {"q_value": self.w_q * (inputs["sensor"] + actions["action"])}, states

    def actor_parameters(self):
        return iter([self.w_a])

    def critic_parameters(self):
        return iter([self.w_q])


def _ddpg_batch(alive: list[float]) -> dict:
    n = len(alive)
    ones = torch.ones(n, 1)
    return dict(
        inputs={"sensor": ones.clone()},
        next_inputs={"sensor": ones.clone()},
        states={},
        next_states={},
        next_alive={"alive": torch.tensor(alive).reshape(n, 1)},
        actions={"action": torch.zeros(n, 1)},
        next_actions={"action": torch.zeros(n, 1)},
        rewards={"reward": ones.clone()},
    )


def test_ddpg_critic_target_bootstraps_through_a_time_out_not_a_game_over():
    alg = DDPG(TinyDeterministic(), discount_factor=0.9)
    # s = s' = 1, a = 0, r = 1: Q(s, a) = 2; mu'(s') = 0.5, Q'(s', mu'(s')) = 2 * 1.5 = 3
    costs = alg.learn(**_ddpg_batch([1.0, 0.0, -1.0]))  # alive, game over, time-out
    target = torch.tensor([[1 + 0.9 * 3], [1.0], [1 + 0.9 * 3]])
    td = target - 2.0
    torch.testing.assert_close(costs["cost"], td.pow(2))
    torch.testing.assert_close(costs["priority"], td.abs())
    torch.testing.assert_close(costs["actor_cost"], torch.full((3, 1), -3.0))  # -Q(s, mu(s))


def test_ddpg_actor_cost_trains_the_actor_only_and_td_cost_the_critic_only():
    model = TinyDeterministic()
    alg = DDPG(model, discount_factor=0.9)
    alg.learn(**_ddpg_batch([1.0]))["actor_cost"].sum().backward()
    assert model.w_q.grad is None
    torch.testing.assert_close(model.w_a.grad, torch.tensor(-2.0))  # d(-w_q (1 + w_a)) / dw_a
    model.w_a.grad = None
    alg.learn(**_ddpg_batch([1.0]))["cost"].sum().backward()
    assert model.w_a.grad is None and model.w_q.grad is not None
    assert model.w_q.requires_grad  # unfrozen after the actor's cost


def test_ddpg_has_one_learning_rate_for_the_actor_and_one_for_the_critic():
    model = SimpleModelDeterministic((3,), (-2.0,), (2.0,))
    alg = DDPG(model, actor_lr=1e-4, critic_lr=1e-3, optim=(torch.optim.Adam, {"eps": 1e-6}))
    actor_group, critic_group = alg.optim.param_groups
    assert (actor_group["lr"], critic_group["lr"]) == (1e-4, 1e-3)
    assert {id(p) for p in actor_group["params"]} == {id(p) for p in model.actor_net.parameters()}
    assert {id(p) for p in critic_group["params"]} == {id(p) for p in model.critic_net.parameters()}
    assert critic_group["eps"] == 1e-6
    with pytest.raises(ValueError, match="actor_lr and critic_lr"):
        DDPG(model, optim=(torch.optim.Adam, {"lr": 1e-3}))


def test_ddpg_targets_move_by_tau_each_learn():
    torch.manual_seed(0)
    model = SimpleModelDeterministic((3,), (-2.0,), (2.0,), hidden=(8,))
    alg = DDPG(model, tau=0.1)
    before = [p.clone() for p in alg.target_model.parameters()]
    batch = _pendulum_batch(16)
    alg.update(**batch)
    for old, new, online in zip(
        before, alg.target_model.parameters(), model.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * online)
    assert not any(
        old.equal(online) for old, online in zip(before, model.parameters(), strict=True)
    )
    assert alg.num_learns == 1


def test_ddpg_checkpoint_keeps_targets_and_counters():
    torch.manual_seed(0)
    alg = DDPG(SimpleModelDeterministic((3,), (-2.0,), (2.0,), hidden=(8,)), tau=0.5)
    alg.predict({"sensor": torch.zeros(2, 3)}, {})
    alg.update(**_pendulum_batch(4))
    state = alg.state_dict()
    fresh = DDPG(SimpleModelDeterministic((3,), (-2.0,), (2.0,), hidden=(8,)), tau=0.5)
    fresh.load_state_dict(state)
    assert (fresh.steps, fresh.num_learns) == (2, 1)
    for a, b in zip(fresh.target_model.parameters(), alg.target_model.parameters(), strict=True):
        assert a.equal(b)
    assert fresh.optim.state_dict()["state"].keys() == alg.optim.state_dict()["state"].keys()


def _pendulum_batch(n: int) -> dict:
    g = torch.Generator().manual_seed(1)
    return dict(
        inputs={"sensor": torch.randn(n, 3, generator=g)},
        next_inputs={"sensor": torch.randn(n, 3, generator=g)},
        states={},
        next_states={},
        next_alive={"alive": torch.ones(n, 1)},
        actions={"action": torch.rand(n, 1, generator=g) * 4 - 2},
        next_actions={"action": torch.zeros(n, 1)},
        rewards={"reward": -torch.rand(n, 1, generator=g)},
    )


def test_ddpg_noise_is_scaled_to_the_bounds_and_the_action_clipped():
    torch.manual_seed(0)
    model = SimpleModelDeterministic((3,), (-2.0,), (2.0,), hidden=(8,))
    inputs = {"sensor": torch.randn(3, 3)}
    greedy = model.actor(inputs, {})[0]["action"]
    small = DDPG(model, noise=GaussianNoise((3, 1), sigma=0.01, seed=5))
    noisy = small.predict(inputs, {})[0]["action"]
    expected = GaussianNoise((3, 1), sigma=0.01, seed=5).sample()
    torch.testing.assert_close(noisy, greedy + 2.0 * torch.from_numpy(expected))  # half-range 2
    huge = DDPG(model, noise=GaussianNoise((3, 1), sigma=100.0, seed=5))
    clipped = huge.predict(inputs, {})[0]["action"]
    assert clipped.abs().max() == 2.0 and set(clipped.abs().flatten().tolist()) == {2.0}
    huge.explore = False
    torch.testing.assert_close(huge.predict(inputs, {})[0]["action"], greedy)


def test_ddpg_ou_noise_gives_each_batch_row_its_own_process():
    torch.manual_seed(0)
    model = SimpleModelDeterministic((3,), (-1.0, -1.0), (1.0, 1.0), hidden=(8,))
    inputs = {"sensor": torch.zeros(3, 3)}
    greedy = model.actor(inputs, {})[0]["action"]
    alg = DDPG(model, noise=OrnsteinUhlenbeckNoise((4, 2), sigma=0.5, seed=3))
    twin = OrnsteinUhlenbeckNoise((4, 2), sigma=0.5, seed=3)
    for _ in range(3):  # rows 0-2 of the 4-row process, which steps on every predict
        noisy = alg.predict(inputs, {})[0]["action"]
        torch.testing.assert_close(noisy, greedy + torch.from_numpy(twin.sample()[:3]))
    with pytest.raises(ValueError, match="size=\\(num_agents, 2\\)"):
        alg.predict({"sensor": torch.zeros(5, 3)}, {})


# ----- GaussianAC -------------------------------------------------------------------------
def _gaussian_model(log_std: float = 0.0) -> SimpleModelGaussian:
    """Bounds [-1, 3] (center 1, half-range 2), a policy mean of 1 + 2 * 0.25 = 1.5, a
    standard deviation of 2 e^log_std, and a value of 1 everywhere."""
    model = SimpleModelGaussian((2,), (-1.0,), (3.0,), hidden=(4,), init_log_std=log_std)
    with torch.no_grad():
        for net, bias in ((model.policy_net, 0.25), (model.value_net, 1.0)):
            for p in net.parameters():
                p.zero_()
            net[-1].bias.fill_(bias)
    return model


def test_gaussian_policy_has_the_stated_mean_and_std():
    # bounds [-1, 3]: center 1, half-range 2; mean output 0.25 -> 1.5; std 2 * e^-1
    model = _gaussian_model(log_std=-1.0)
    dist = model.policy({"sensor": torch.zeros(4, 2)}, {})[0]["action"]
    assert isinstance(dist, Independent)
    torch.testing.assert_close(dist.mean, torch.full((4, 1), 1.5))
    torch.testing.assert_close(dist.stddev, torch.full((4, 1), 2 * np.exp(-1.0)).float())


def test_gaussian_ac_acts_in_bounds_and_keeps_the_sample_and_its_log_prob():
    torch.manual_seed(0)
    model = _gaussian_model(log_std=1.0)  # std 5.4 on [-1, 3]: most samples leave the bounds
    alg = GaussianAC(model)
    out, _ = alg.predict({"sensor": torch.zeros(200, 2)}, {})
    sample, action = out[SAMPLED_ACTION], out["action"]
    assert action.min() >= -1.0 and action.max() <= 3.0
    assert (sample != action).float().mean() > 0.5
    torch.testing.assert_close(action, sample.clamp(-1.0, 3.0))
    expected = Normal(1.5, 2 * np.exp(1.0)).log_prob(sample)
    torch.testing.assert_close(out[BEHAVIOR_LOG_PROB], expected)


def test_gaussian_ac_advantages_bootstrap_through_a_time_out_not_a_game_over():
    alg = GaussianAC(_gaussian_model(), discount_factor=0.5, gae_lambda=0.5)
    zeros = {"sensor": torch.zeros(4, 2)}
    # two runs of two steps, V = 1 everywhere, rewards 1 then 2; the first run ends in a
    # time-out, the second in a game over
    advantages, targets = alg.advantages(
        zeros,
        zeros,
        {},
        {},
        {"alive": torch.tensor([[1.0], [-1.0], [1.0], [0.0]])},
        {"reward": torch.tensor([[1.0], [2.0], [1.0], [2.0]])},
        [2, 2],
    )
    # time-out: d1 = 2 + 0.5 * 1 - 1 = 1.5, A0 = (1 + 0.5 - 1) + 0.25 * 1.5 = 0.875
    # game over: d1 = 2 - 1 = 1, A0 = 0.5 + 0.25 * 1 = 0.75
    expected = torch.tensor([[0.875], [1.5], [0.75], [1.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(targets, expected + 1.0)


def test_gaussian_ac_scores_the_samples_not_the_clipped_actions():
    # One epoch over the whole batch: the ratio pi(u|s) / mu(u|s) is exactly 1 when the
    # update scores the samples u. Scoring the clipped actions would move it off 1.
    torch.manual_seed(0)
    model = _gaussian_model(log_std=1.0)
    alg = GaussianAC(model, num_epochs=1, minibatch_size=64, normalize_advantages=False)
    inputs = {"sensor": torch.zeros(64, 2)}
    out, _ = alg.predict(inputs, {})
    assert not out["action"].equal(out[SAMPLED_ACTION])
    rewards = torch.linspace(-1, 1, 64).reshape(64, 1)
    costs = alg.update(
        inputs=inputs,
        next_inputs=inputs,
        states={},
        next_states={},
        next_alive={"alive": torch.zeros(64, 1)},  # one-step episodes: A = r - V = r - 1
        actions=out,
        next_actions=out,
        rewards={"reward": rewards},
        sequence_lengths=[1] * 64,
    )
    assert costs["clipped"].sum() == 0
    torch.testing.assert_close(costs["policy_cost"], -(rewards - 1.0))


def test_continuous_models_check_their_bounds():
    with pytest.raises(ValueError, match="low < high"):
        SimpleModelGaussian((3,), (1.0,), (1.0,))
    with pytest.raises(ValueError, match="differ in shape"):
        SimpleModelDeterministic((3,), (-1.0, -1.0), (1.0,))
    model = SimpleModelDeterministic((3,), (-2.0,), (2.0,))
    actions = model.actor({"sensor": 100 * torch.randn(50, 3)}, {})[0]["action"]
    assert actions.shape == (50, 1) and actions.abs().max() <= 2.0
    assert model.get_action_specs() == [("action", dict(shape=[1], dtype="float32"))]


def test_state_dependent_std_starts_at_the_initial_log_std():
    model = SimpleModelGaussian((3,), (-2.0,), (2.0,), init_log_std=-0.5, state_dependent_std=True)
    dist = model.policy({"sensor": torch.randn(5, 3)}, {})[0]["action"]
    torch.testing.assert_close(dist.stddev, torch.full((5, 1), 2 * np.exp(-0.5)).float())
    assert model.log_std is None
