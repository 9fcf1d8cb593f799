"""The MiniGrid / BabyAI adapter: an egocentric image and the mission as token ids, served
over gRPC by `flare serve minigrid`, passing the compliance suite."""

import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from flare.bridge import RemoteEnv, serve
from flare.bridge.factories import MiniGridEnvFactory
from flare.compliance import CHECKS, Target, run_check
from flare.env_zoo.minigrid_env import VOCABULARY, MiniGridEnv, detokenize, tokenize
from flare.framework.env_spec import Discrete, Language
from tests.conftest import flare_serve

ROOT = Path(__file__).resolve().parents[1]
LEVEL = "BabyAI-GoToLocalS5N2-v0"  # 5x5 room, 2 objects, 25 steps


def _plan(env: MiniGridEnv, wrong: bool = False) -> list[int]:
    """Shortest left / right / forward sequence that faces one of the named objects (or,
    with ``wrong``, an object the instruction does not name), found by breadth-first
    search over (x, y, direction) in the env's own grid."""
    level = env._env.unwrapped
    targets = {tuple(int(v) for v in pos) for pos in level.instrs.desc.obj_poss}
    if wrong:
        named = targets
        targets = {
            (x, y)
            for x in range(level.grid.width)
            for y in range(level.grid.height)
            if (cell := level.grid.get(x, y)) is not None
            and cell.type in ("ball", "box", "key")
            and (x, y) not in named
        }
    vectors = [(1, 0), (0, 1), (-1, 0), (0, -1)]  # minigrid's directions 0..3
    start = (int(level.agent_pos[0]), int(level.agent_pos[1]), int(level.agent_dir))
    paths = {start: []}
    queue = deque([start])
    while queue:
        x, y, d = state = queue.popleft()
        front = (x + vectors[d][0], y + vectors[d][1])
        if front in targets:
            return paths[state]
        cell = level.grid.get(*front)
        moves = [(0, (x, y, (d - 1) % 4)), (1, (x, y, (d + 1) % 4))]
        if cell is None or cell.can_overlap():
            moves.append((2, (*front, d)))
        for action, following in moves:
            if following not in paths:
                paths[following] = [*paths[state], action]
                queue.append(following)
    raise AssertionError("no path to the named object")


def test_observations_and_spec():
    env = MiniGridEnv(LEVEL, seed=3)
    observations = env.reset()
    assert set(observations) == {"image", "instruction"}
    image, instruction = observations["image"], observations["instruction"]
    assert image.dtype == np.uint8 and image.shape == (3, 7, 7)
    assert instruction.dtype == np.int64 and instruction.shape == (16,)
    # minigrid's own view, channels first and rows first; the agent's own cell (bottom
    # centre) is seen as empty
    raw = env._env.unwrapped.gen_obs()["image"]
    np.testing.assert_array_equal(image, raw.transpose(2, 1, 0))
    assert image[0, 6, 3] == 1
    assert detokenize(instruction) == env.mission
    spec = env.spec()
    assert spec.observation_dims() == {"image": (3, 7, 7), "instruction": (16,)}
    assert [s.dtype for s in spec.observations] == [np.uint8, np.int64]
    assert spec.observations[1].kind == Language(len(VOCABULARY))
    assert spec.actions[0].kind == Discrete(3)  # a GoTo level: the three moves
    assert spec.max_episode_steps == 25 and spec.reward_names == ("reward",)
    assert env.action_dims() == {"action": 3}
    assert MiniGridEnv(LEVEL, actions="all").action_dims() == {"action": 7}
    assert MiniGridEnv("BabyAI-PickupLoc-v0").action_dims() == {"action": 7}


def test_tokenisation():
    assert VOCABULARY[0] == "<pad>" and len(VOCABULARY) == 34
    assert tokenize("go to the red ball", 8).tolist() == [1, 2, 3, 5, 12, 0, 0, 0]
    assert tokenize("Go to a grey key", 5).tolist() == [1, 2, 4, 10, 13]
    ids = tokenize("go to the box on your left, then go to a door behind you", 16)
    assert detokenize(ids) == "go to the box on your left, then go to a door behind you"
    assert ids[:9].tolist() == [1, 2, 3, 11, 26, 27, 28, 33, 31]  # ..., left , then
    with pytest.raises(ValueError, match=r"\['get', 'goal', 'square'\]"):
        tokenize("get to the green goal square")
    with pytest.raises(ValueError, match="more than instruction_length=4"):
        tokenize("go to the red ball", 4)


def test_seeded_episodes_repeat():
    first, second = MiniGridEnv(LEVEL, seed=7), MiniGridEnv(LEVEL, seed=7)
    for _ in range(3):
        a, b = first.reset(), second.reset()
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_reaching_the_named_object_is_a_success():
    env = MiniGridEnv(LEVEL, seed=1)
    for _ in range(5):
        env.reset()
        plan = _plan(env)
        for i, action in enumerate(plan):
            _, rewards, game_over = env.step({"action": np.array([action])})
            if i < len(plan) - 1:
                assert game_over == 0 and rewards["reward"][0] == 0
        assert game_over == 1 and not env.time_out()
        expected = 1 - 0.9 * len(plan) / env.max_steps
        assert rewards["reward"][0] == pytest.approx(expected, abs=1e-6)
        assert rewards["reward"][0] > 0
        with pytest.raises(RuntimeError, match="after the episode ended"):
            env.step({"action": np.array([0])})


def test_with_wrong_object_ends_facing_another_object_is_a_failure():
    strict = MiniGridEnv(LEVEL, seed=1, wrong_object_ends=True)
    for _ in range(3):
        strict.reset()
        plan = _plan(strict, wrong=True)
        for i, action in enumerate(plan):
            _, rewards, game_over = strict.step({"action": np.array([action])})
            if i < len(plan) - 1:
                assert game_over == 0
        assert game_over == -1 and rewards["reward"][0] == 0 and not strict.time_out()
    strict.reset()  # the named object is still a success
    for action in _plan(strict):
        _, rewards, game_over = strict.step({"action": np.array([action])})
    assert game_over == 1 and rewards["reward"][0] > 0
    # BabyAI's own rule: facing the wrong object goes on
    lenient = MiniGridEnv(LEVEL, seed=1)
    lenient.reset()
    for action in _plan(lenient, wrong=True):
        _, _, game_over = lenient.step({"action": np.array([action])})
    assert game_over == 0
    with pytest.raises(ValueError, match="wrong_object_ends needs a GoTo level"):
        MiniGridEnv("BabyAI-PickupLoc-v0", wrong_object_ends=True)


def test_the_step_limit_is_a_time_out_not_a_game_over():
    env = MiniGridEnv(LEVEL, seed=0)
    env.reset()
    for step in range(1, env.max_steps + 1):  # turning in place never reaches anything
        _, rewards, game_over = env.step({"action": np.array([0])})
        assert game_over == 0 and rewards["reward"][0] == 0
        assert env.time_out() == (step == env.max_steps)
    env.reset()
    assert not env.time_out()
    _, rewards, game_over = env.step({"action": np.array([1])}, actrep=env.max_steps + 5)
    assert game_over == 0 and env.time_out()


def test_bad_actions_and_levels():
    env = MiniGridEnv(LEVEL, seed=0)
    env.reset()
    with pytest.raises(ValueError, match="outside 0..2"):
        env.step({"action": np.array([3])})
    with pytest.raises(KeyError, match="no 'action'"):
        env.step({"move": np.array([0])})
    with pytest.raises(ValueError, match="actions must be"):
        MiniGridEnv(LEVEL, actions="some")
    with pytest.raises(ValueError, match="not a MiniGrid level"):
        MiniGridEnv("CartPole-v1")
    unknown_words = MiniGridEnv("MiniGrid-Empty-5x5-v0")
    with pytest.raises(ValueError, match=r"outside the BabyAI vocabulary: \['get', 'goal'"):
        unknown_words.reset()


@pytest.fixture(scope="module")
def minigrid_server():
    server = serve(MiniGridEnvFactory(LEVEL))
    yield server
    server.stop(0)


@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_the_minigrid_adapter_passes(check, minigrid_server):
    assert run_check(check, Target(minigrid_server.address))


def test_session_config_sets_wrong_object_ends(minigrid_server):
    strict = RemoteEnv(minigrid_server.address, wrong_object_ends="true", seed=1)
    local = MiniGridEnv(LEVEL, seed=1, wrong_object_ends=True)
    strict.reset()
    local.reset()
    for action in _plan(local, wrong=True):
        got = strict.step({"action": np.array([action])})
    assert got[2] == -1
    strict.close()
    with pytest.raises(Exception, match="wrong_object_ends must be true or false"):
        RemoteEnv(minigrid_server.address, wrong_object_ends="maybe").reset()


def test_session_config_picks_the_level(minigrid_server):
    env = RemoteEnv(
        minigrid_server.address, level="BabyAI-GoToRedBallGrey-v0", actions="all", seed=2
    )
    assert env.action_dims() == {"action": 7}
    assert env.spec().max_episode_steps == 64
    observations = env.reset()
    assert detokenize(observations["instruction"]) == "go to the red ball"
    env.close()


def test_flare_serve_minigrid_steps_a_remote_session():
    with flare_serve("minigrid", "--level", LEVEL) as (_, address):
        remote = RemoteEnv(address, seed=4)
        local = MiniGridEnv(LEVEL, seed=4)
        assert remote.spec() == local.spec()
        first = remote.reset()
        np.testing.assert_array_equal(first["image"], local.reset()["image"])
        np.testing.assert_array_equal(first["instruction"], tokenize(local.mission))
        for action in [2, 0, 2, 1, 2]:
            got = remote.step({"action": np.array([action])})
            want = local.step({"action": np.array([action])})
            np.testing.assert_array_equal(got[0]["image"], want[0]["image"])
            assert got[1]["reward"][0] == want[1]["reward"][0] and got[2] == want[2]
            if got[2]:
                break
        remote.close()


def test_flare_serve_minigrid_refuses_a_bad_level():
    result = subprocess.run(
        [sys.executable, "-m", "flare", "serve", "minigrid", "--level", "MiniGrid-Empty-5x5-v0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot serve 'MiniGrid-Empty-5x5-v0'" in result.stderr and "'goal'" in result.stderr
