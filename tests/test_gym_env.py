import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import flare.testing  # noqa: F401  (registers flare/PatternImage-v0)
from flare.framework.env import GymEnv, GymEnvImage


def test_observation_and_action_dims():
    env = GymEnv("CartPole-v0")
    assert env.observation_dims() == {"sensor": (4,)}
    assert env.action_dims() == {"action": 2}
    obs = env.reset()
    assert obs["sensor"].dtype == np.float32 and obs["sensor"].shape == (4,)


def test_time_out_is_not_a_game_over():
    env = GymEnv("CartPole-v0", seed=0, max_episode_steps=3)
    env.reset()
    results = [env.step({"action": np.array([t % 2])}) for t in range(3)]
    assert [r[2] for r in results] == [0, 0, 0]  # never a game over
    assert env.time_out()
    assert results[-1][1]["reward"].tolist() == [1.0]
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"action": np.array([0])})
    env.reset()
    assert not env.time_out()


def test_pole_falling_is_a_failure():
    env = GymEnv("CartPole-v0", seed=0)
    env.reset()
    game_over = 0
    for _ in range(200):
        _, _, game_over = env.step({"action": np.array([1])})  # always push right: it falls
        if game_over:
            break
    assert game_over == -1
    assert not env.time_out()


def test_actrep_repeats_and_sums_rewards():
    env = GymEnv("CartPole-v0", seed=0)
    env.reset()
    _, rewards, _ = env.step({"action": np.array([0])}, actrep=3)
    assert rewards["reward"].tolist() == [3.0]


def test_seeded_reset_is_reproducible():
    first = GymEnv("CartPole-v0", seed=7).reset()["sensor"]
    second = GymEnv("CartPole-v0", seed=7).reset()["sensor"]
    np.testing.assert_array_equal(first, second)


def test_bad_actions_are_clear_errors():
    env = GymEnv("CartPole-v0", seed=0)
    env.reset()
    with pytest.raises(ValueError, match="outside 0..1"):
        env.step({"action": np.array([2])})
    with pytest.raises(KeyError, match="action"):
        env.step({"move": np.array([0])})


def test_gym_env_image_gray_stack():
    env = GymEnvImage("flare/PatternImage-v0", contexts=4, height=84, width=84, gray=True)
    assert env.observation_dims() == {"sensor": (4, 84, 84)}
    obs = env.reset()["sensor"]
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8  # (pixels, as bytes)
    assert env.spec().observations[0].dtype == np.uint8
    for _ in range(2):
        obs, _, _ = env.step({"action": np.array([0])})
    frames = obs["sensor"]
    # oldest first: two zero-padded frames, then frames t=1 (value 10) and t=2 (value 20)
    np.testing.assert_allclose(frames[:, 0, 0], [0, 0, 10, 20], atol=1)


def test_gym_env_image_colour_is_channels_first():
    env = GymEnvImage("flare/PatternImage-v0", contexts=2, height=10, width=12, gray=False)
    assert env.observation_dims() == {"sensor": (6, 10, 12)}
    env.reset()
    obs, _, _ = env.step({"action": np.array([1])})
    frames = obs["sensor"]
    assert frames.shape == (6, 10, 12) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[3:, 5, 5], [10] * 3)  # newest frame, RGB


class _ShiftedActions(gym.ActionWrapper):
    """CartPole whose Gym actions are numbered 5 and 6 (``Discrete(2, start=5)``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = spaces.Discrete(2, start=5)

    def action(self, action: int) -> int:
        assert action in (5, 6), action
        return action - 5


class _ShiftedCartPole(GymEnv):
    def _make(self, game_name, **make_kwargs):
        return _ShiftedActions(super()._make(game_name, **make_kwargs))


def test_discrete_actions_count_from_zero_whatever_the_gym_start():
    shifted, plain = _ShiftedCartPole("CartPole-v0", seed=3), GymEnv("CartPole-v0", seed=3)
    shifted.reset(), plain.reset()
    for action in (1, 0, 1):
        got, _, _ = shifted.step({"action": np.array([action])})
        want, _, _ = plain.step({"action": np.array([action])})
        np.testing.assert_array_equal(got["sensor"], want["sensor"])
    with pytest.raises(ValueError, match="outside 0..1"):
        shifted.step({"action": np.array([5])})


class _RecordedActions(gym.ActionWrapper):
    """Keeps each action FLARE hands to Gymnasium, in an int32 ``Discrete(2, start=5)``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = spaces.Discrete(2, start=5, dtype=np.int32)
        self.seen: list = []

    def action(self, action):
        self.seen.append(action)
        return int(action) - 5


class _RecordedCartPole(GymEnv):
    def _make(self, game_name, **make_kwargs):
        return _RecordedActions(super()._make(game_name, **make_kwargs))


def test_a_discrete_action_reaches_gymnasium_as_a_scalar_of_the_spaces_dtype():
    """As Gymnasium's own vector envs pass it, so the space's contains() accepts it."""
    env = _RecordedCartPole("CartPole-v0", seed=0)
    env.reset()
    for action in (1, np.array([0]), np.array([1], dtype=np.int32), np.array([[0]])):
        env.step({"action": action})
    seen = env._env.seen
    assert seen == [6, 5, 6, 5]
    assert all(type(a) is np.int32 and env._env.action_space.contains(a) for a in seen)


def test_factory_flags_read_every_documented_spelling():
    """Session config values arrive as strings: on/off, yes/no, true/false, 1/0."""
    from flare.env_zoo.registry import config_flag

    for text in ("1", "true", "Yes", "ON"):
        assert config_flag("image", text) is True
    for text in ("0", "false", "No", "off"):
        assert config_flag("image", text) is False
    with pytest.raises(ValueError, match="image must be true or false, got 'maybe'"):
        config_flag("image", "maybe")
