"""Atari games through GymEnvImage: ale-py's games with Gymnasium's standard preprocessing,
frames as uint8."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import AtariPreprocessing

from flare.env_zoo.atari import AtariSettings, FireOnReset, game_id, is_atari
from flare.env_zoo.gym_env import GymEnvFactory, GymEnvImage


def _wrappers(env: GymEnvImage) -> list[type]:
    kinds, layer = [], env._env
    while isinstance(layer, gym.Wrapper):
        kinds.append(type(layer))
        layer = layer.env
    return kinds


def _ale(env: GymEnvImage):
    return env._env.unwrapped.ale


def _play(env: GymEnvImage, steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = [env.reset()["sensor"]]
    for _ in range(steps):
        obs, _, game_over = env.step({"action": np.array([rng.integers(4)])})
        frames.append(obs["sensor"])
        if game_over or env.time_out():
            frames.append(env.reset()["sensor"])
    return frames


def test_bare_names_are_the_current_version_and_legacy_ids_stay():
    assert game_id("Breakout") == "ALE/Breakout-v5"
    assert game_id("Assault") == "ALE/Assault-v5"
    assert game_id("Breakout-v0") == "Breakout-v0"  # (the seed's id, still registered)
    assert game_id("CartPole-v1") == "CartPole-v1"
    assert game_id("NoSuchGame") == "NoSuchGame"
    assert is_atari("Breakout") and is_atari("BreakoutNoFrameskip-v4")
    assert not is_atari("CartPole-v1") and not is_atari("flare/PatternImage-v0")


def test_breakout_frames_are_uint8_stacks_of_84x84_gray():
    env = GymEnvImage("Breakout-v0", contexts=4, height=84, width=84, gray=True, seed=0)
    assert env.game_name == "Breakout-v0"
    obs = env.reset()["sensor"]
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    spec = env.spec()
    assert spec.observations[0].dtype == np.uint8 and spec.observations[0].shape == (4, 84, 84)
    assert env.action_dims() == {"action": 4}
    assert obs[:3].max() == 0 and obs[3].max() > 0  # zero-padded history, then the screen


def test_colour_frames_are_channels_first():
    env = GymEnvImage("ALE/Pong-v5", contexts=2, height=64, width=48, gray=False, seed=0)
    obs = env.reset()["sensor"]
    assert obs.shape == (6, 64, 48) and obs.dtype == np.uint8
    assert env.observation_dims() == {"sensor": (6, 64, 48)}


def test_the_standard_preprocessing_is_gymnasiums():
    env = GymEnvImage("Breakout", seed=0)
    kinds = _wrappers(env)
    assert AtariPreprocessing in kinds and FireOnReset in kinds
    assert env._env.unwrapped._frameskip == 1  # (the preprocessing skips and max-pools)
    env.reset()
    before = _ale(env).getEpisodeFrameNumber()
    env.step({"action": np.array([0])})
    assert _ale(env).getEpisodeFrameNumber() - before == 4  # each action: 4 frames


def test_episodes_start_after_noops_and_fire():
    starts = set()
    for seed in range(6):
        env = GymEnvImage("Breakout", seed=seed)
        env.reset()
        # 1 to 30 no-op frames, then FIRE (an action: 4 frames)
        frames = _ale(env).getEpisodeFrameNumber()
        assert 1 + 4 <= frames <= 30 + 4
        starts.add(frames)
    assert len(starts) > 1  # the number of no-ops differs from episode to episode


def test_a_game_without_fire_is_not_fired():
    env = GymEnvImage("ALE/MsPacman-v5", seed=0)
    assert "FIRE" not in env._env.unwrapped.get_action_meanings()
    assert FireOnReset not in _wrappers(env)
    off = GymEnvImage("Breakout", seed=0, atari=AtariSettings(fire_on_reset=False, noop_max=0))
    assert FireOnReset not in _wrappers(off)
    off.reset()
    assert _ale(off).getEpisodeFrameNumber() == 0  # (no no-op, no FIRE)


def test_a_lost_life_ends_the_episode_when_asked():
    env = GymEnvImage("Breakout", seed=0, atari=AtariSettings(life_loss_ends_game=True))
    env.reset()
    lives = _ale(env).lives()
    for _ in range(2000):
        _, _, game_over = env.step({"action": np.array([0])})  # (no paddle moves: a ball lost)
        if game_over:
            break
    assert game_over and _ale(env).lives() == lives - 1


def test_a_seed_replays_the_same_frames():
    first = _play(GymEnvImage("Breakout", seed=3), 60)
    again = _play(GymEnvImage("Breakout", seed=3), 60)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="frame_skip"):
        AtariSettings(frame_skip=0)
    with pytest.raises(ValueError, match="not an Atari game"):
        GymEnvImage("flare/PatternImage-v0", atari=AtariSettings())


def test_a_client_may_ask_the_gym_adapter_for_an_atari_game():
    factory = GymEnvFactory("CartPole-v1")
    env = factory(game_name="Breakout", image="true", gray="true", contexts="2")
    assert isinstance(env, GymEnvImage) and env.game_name == "ALE/Breakout-v5"
    assert env.reset()["sensor"].shape == (2, 84, 84)
