"""``flare.gymnasium``: a FLARE simulator as a gymnasium Env and VectorEnv, for other RL
libraries (Stable-Baselines3 here)."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import flare.gymnasium  # noqa: F401 - registers flare/Remote-v0
from flare.bridge import serve
from flare.bridge.launch import flare_serve_gym, simulator_process
from flare.env_zoo.gym_env import GymEnv
from flare.framework.env_spec import ArraySpec, Continuous, Discrete, EnvSpec, Language
from flare.gymnasium import RemoteGymEnv, action_space, observation_space


def cartpole(seed=None, **config):
    return GymEnv("CartPole-v1", seed=seed)


@pytest.fixture
def cartpole_servers():
    servers = [serve(cartpole), serve(cartpole)]
    yield servers
    for server in servers:
        server.stop(0)


def test_spaces_come_from_the_spec_bounds_dicts_and_token_ids():
    spec = EnvSpec(
        observations=(
            ArraySpec("image", np.dtype(np.uint8), (3, 4, 4)),
            ArraySpec("position", np.dtype(np.float32), (2,), Continuous((-1.0, 0.0), (1, 5))),
            ArraySpec("instruction", np.dtype(np.int64), (6,), Language(20)),
        ),
        actions=(
            ArraySpec("move", np.dtype(np.int64), (1,), Discrete(4)),
            ArraySpec("torque", np.dtype(np.float32), (2,), Continuous((-2.0, -2.0), (2, 2))),
        ),
    )
    obs = observation_space(spec)
    assert isinstance(obs, spaces.Dict) and set(obs) == {"image", "position", "instruction"}
    assert obs["image"] == spaces.Box(0, 255, (3, 4, 4), np.uint8)
    assert obs["position"] == spaces.Box(np.array([-1, 0]), np.array([1, 5]), (2,), np.float32)
    assert obs["instruction"] == spaces.MultiDiscrete(np.full(6, 20))
    act = action_space(spec)
    assert act["move"] == spaces.Discrete(4)
    assert act["torque"] == spaces.Box(-2, 2, (2,), np.float32)


def test_the_env_passes_gymnasiums_checker_and_replays_seeds(cartpole_servers):
    env = gymnasium.make("flare/Remote-v0", address=cartpole_servers[0].address)
    local = gymnasium.make("CartPole-v1")
    assert env.observation_space == local.observation_space  # (its bounds too)
    assert env.action_space == local.action_space
    check_env(env.unwrapped, skip_render_check=True)
    for seed in (0, 7):
        first, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(first, local.reset(seed=seed)[0])
        for t in range(30):
            mine, theirs = env.step(t % 2), local.step(t % 2)
            np.testing.assert_array_equal(mine[0], theirs[0])
            assert mine[1:4] == theirs[1:4]
            if mine[2] or mine[3]:
                break
    env.close()


def test_the_vector_env_equals_sync_vector_env_in_same_step_mode(cartpole_servers):
    farm = [s.address for s in cartpole_servers]
    envs = gymnasium.make_vec(
        "flare/Remote-v0", num_envs=4, vectorization_mode="vector_entry_point", address=farm
    )
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert [s.servicer.num_sessions for s in cartpole_servers] == [2, 2]  # spread by load
    reference = gymnasium.make_vec(
        "CartPole-v1", num_envs=4, vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )  # fmt: skip
    np.testing.assert_array_equal(envs.reset(seed=3)[0], reference.reset(seed=3)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(300):
        actions = rng.integers(0, 2, 4)
        mine, theirs = envs.step(actions), reference.step(actions)
        for a, b in zip(mine[:4], theirs[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        if "final_obs" in theirs[4]:
            np.testing.assert_array_equal(mine[4]["_final_obs"], theirs[4]["_final_obs"])
            for i in np.flatnonzero(theirs[4]["_final_obs"]):
                ended += 1
                np.testing.assert_array_equal(mine[4]["final_obs"][i], theirs[4]["final_obs"][i])
    assert ended >= 10
    envs.close()


def test_a_vector_env_row_whose_server_dies_is_truncated_and_moves(cartpole_servers):
    farm = [s.address for s in cartpole_servers]
    envs = flare.gymnasium.RemoteVectorEnv(4, farm, seed=0)
    envs.reset(seed=0)
    cartpole_servers[0].stop(0)
    _, _, terminations, truncations, infos = envs.step(np.zeros(4, np.int64))
    moved = infos["_interrupted"]
    assert moved.sum() == 2 and truncations[moved].all() and not terminations[moved].any()
    assert all(env.address == farm[1] for env in envs.envs)
    envs.step(np.ones(4, np.int64))  # every row steps on the live server
    envs.close()


def test_an_unknown_kind_of_observation_is_refused():
    spec = EnvSpec(observations=(ArraySpec("text", np.dtype(object), (1,)),), actions=())
    with pytest.raises(ValueError, match="string arrays"):
        observation_space(spec)


@pytest.mark.slow
def test_stable_baselines3_ppo_learns_the_same_through_the_env_as_in_process():
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)

    def returns(env):
        model = PPO("MlpPolicy", env, seed=0, n_steps=256, batch_size=64, device="cpu")
        model.learn(4096)
        return [episode["r"] for episode in model.ep_info_buffer]

    with simulator_process(flare_serve_gym("CartPole-v1")) as address:
        remote = returns(RemoteGymEnv(address))
    local = returns(gymnasium.make("CartPole-v1"))
    assert remote == local  # the same games, step for step
    assert np.mean(local[-10:]) >= 35  # and it learned (random play: about 22)
