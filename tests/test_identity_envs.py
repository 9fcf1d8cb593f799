"""The identity envs (flare.testing.identity): what each step pays, when an episode ends, and
the chance returns the learning tests compare against."""

import numpy as np
import pytest

from flare.framework.env import ALIVE
from flare.framework.env_spec import Continuous
from flare.testing.identity import ContinuousIdentityEnv, IdentityEnv


def _play(env, policy, games: int) -> list[float]:
    returns = []
    for _ in range(games):
        obs, total, steps = env.reset(), 0.0, 0
        while True:
            obs, reward, game_over = env.step({"action": policy(obs["sensor"])})
            total, steps = total + float(reward["reward"][0]), steps + 1
            assert game_over == ALIVE  # a time-out, never a game over
            if env.time_out():
                break
        assert steps == env.episode_length
        returns.append(total)
    return returns


def test_the_observation_names_the_action_that_pays():
    env = IdentityEnv(num_actions=3, episode_length=4, seed=0, miss_reward=-1.0)
    obs = env.reset()["sensor"]
    assert obs.dtype == np.float32 and obs.shape == (3,) and obs.sum() == 1.0
    right = int(obs.argmax())
    obs, reward, _ = env.step({"action": np.array([right])})
    assert reward["reward"].tolist() == [1.0]
    wrong = (int(obs["sensor"].argmax()) + 1) % 3
    _, reward, _ = env.step({"action": np.array([wrong])})
    assert reward["reward"].tolist() == [-1.0]
    with pytest.raises(ValueError, match="must be in"):
        env.step({"action": np.array([3])})


def test_best_and_chance_returns():
    env = IdentityEnv(num_actions=4, episode_length=10, seed=1)
    assert _play(env, lambda s: int(s.argmax()), 5) == [10.0] * 5
    rng = np.random.default_rng(0)
    random_returns = _play(env, lambda s: int(rng.integers(4)), 2000)
    assert env.chance_return() == 2.5
    assert np.mean(random_returns) == pytest.approx(2.5, abs=0.1)


def test_the_delayed_env_pays_for_the_previous_action_and_shows_it():
    env = IdentityEnv(num_actions=2, episode_length=3, seed=0, delayed_reward=True)
    obs = env.reset()["sensor"]
    assert obs.shape == (3,) and obs[-1] == 0.0

    def step(action: int) -> tuple[np.ndarray, float]:
        obs, reward, _ = env.step({"action": action})
        return obs["sensor"], float(reward["reward"][0])

    obs, reward = step(int(obs[:2].argmax()))  # right, paid next step
    assert reward == 0.0 and obs[-1] == 1.0
    obs, reward = step(1 - int(obs[:2].argmax()))  # wrong
    assert reward == 1.0 and obs[-1] == 0.0
    obs, reward = step(int(obs[:2].argmax()))  # right, never paid
    assert reward == 0.0 and env.time_out()
    assert env.chance_return() == 1.0  # 2 paid steps, half of them right
    best = _play(env, lambda s: int(s[:2].argmax()), 3)
    assert best == [2.0] * 3
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step({"action": 0})


def test_continuous_reward_is_minus_the_distance_to_the_target():
    env = ContinuousIdentityEnv(action_size=2, episode_length=5, seed=0)
    target = env.reset()["sensor"]
    assert target.shape == (2,) and np.all(np.abs(target) <= 1)
    _, reward, _ = env.step({"action": target + np.array([0.3, -0.4], dtype=np.float32)})
    assert reward["reward"][0] == pytest.approx(-0.5, abs=1e-6)
    spec = env.spec()
    (action,) = spec.actions
    assert action.kind == Continuous((-1.0, -1.0), (1.0, 1.0)) and action.shape == (2,)
    assert spec.max_episode_steps == 5
    with pytest.raises(ValueError, match="2 values"):
        env.step({"action": np.zeros(3)})


def test_continuous_chance_returns():
    env = ContinuousIdentityEnv(episode_length=10, seed=2)
    assert env.chance_return() == pytest.approx(-20 / 3, abs=0.05)
    rng = np.random.default_rng(0)
    random_returns = _play(env, lambda s: rng.uniform(-1, 1, 1), 1000)
    assert np.mean(random_returns) == pytest.approx(-20 / 3, abs=0.15)
    assert np.mean(_play(env, lambda s: np.zeros(1), 1000)) == pytest.approx(-5.0, abs=0.15)
    assert _play(env, lambda s: s, 3) == [0.0] * 3


def test_a_seed_fixes_the_targets():
    first = [IdentityEnv(seed=7).reset()["sensor"].tolist() for _ in range(2)]
    assert first[0] == first[1]
    assert ContinuousIdentityEnv(seed=7).reset()["sensor"].tolist() != (
        ContinuousIdentityEnv(seed=8).reset()["sensor"].tolist()
    )
