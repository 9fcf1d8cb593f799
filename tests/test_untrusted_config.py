"""A session's config comes from the network: it may choose only games the server allows,
never make it import code, and every number in it is bounded."""

import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest

from flare.bridge import RemoteEnv, SimulatorError
from flare.bridge.launch import flare_command, flare_serve_gym, simulator_process
from flare.bridge.quoting import quoted as shown
from flare.cli import build_parser
from flare.env_zoo.gym_env import (
    MAX_CONTEXTS,
    MAX_EPISODE_STEPS,
    MAX_FRAME_SIDE,
    MAX_IMAGE_VALUES,
    GymEnvFactory,
)
from flare.env_zoo.minigrid_env import MAX_INSTRUCTION_LENGTH, MiniGridEnvFactory
from flare.env_zoo.registry import config_flag, config_int, find_adapter

PATTERN = "flare.testing:flare/PatternImage-v0"  # a MODULE:ID: gymnasium imports flare.testing
LEVEL = "BabyAI-GoToRedBallGrey-v0"
HOW_GAME = (
    "the server's operator can allow it with --allow-game ID (repeatable) or serve it with "
    "--game ID"
)
HOW_LEVEL = (
    "the server's operator can allow it with --allow-level ID (repeatable) or serve it with "
    "--level ID"
)


def _refused(factory, message: str, **config) -> None:
    with pytest.raises(ValueError) as info:
        factory(**config)
    assert str(info.value) == message


# ----- reading numbers and flags ------------------------------------------------------------
@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "n must be an integer from 1 to 10, got 0"),
        ("11", "n must be an integer from 1 to 10, got 11"),
        ("-3", "n must be an integer from 1 to 10, got -3"),
        ("ten", "n must be an integer from 1 to 10, got 'ten'"),
        ("1" * 21, "n must be an integer from 1 to 10, got a string of 21 characters"),
        (True, "n must be an integer from 1 to 10, got True"),
        (2.5, "n must be an integer from 1 to 10, got 2.5"),
    ],
)
def test_config_int_refuses_with_the_key_and_the_bounds(value, message):
    with pytest.raises(ValueError) as info:
        config_int("n", value, 1, 10)
    assert str(info.value) == message


def test_config_int_takes_the_bounds_and_short_strings():
    assert config_int("n", "1", 1, 10) == 1
    assert config_int("n", " 10", 1, 10) == 10
    assert config_int("n", 7, 1, 10) == 7
    assert config_int("n", "0" * 19 + "5", 1, 10) == 5  # 20 characters: still read


def test_a_huge_value_is_never_echoed_whole():
    assert shown("x" * 100) == repr("x" * 64) + "...(100 chars)"
    with pytest.raises(ValueError) as info:
        config_flag("gray", "y" * 10_000)
    assert str(info.value) == f"gray must be true or false, got {shown('y' * 10_000)}"


# ----- which games a client may choose --------------------------------------------------------
@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """An importable module that leaves a marker file when imported."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    assert "evil_module" not in sys.modules
    assert not marker.exists()


@pytest.mark.parametrize("game", ["evil_module:Env", "evil_module:CartPole-v1", "os:Foo"])
def test_a_client_cannot_make_the_server_import_a_module(evil_module, game):
    _refused(
        GymEnvFactory("CartPole-v1"),
        f"game_name {game!r} names a module to import, not allowed: {HOW_GAME}",
        game_name=game,
    )


def test_only_registered_ids_exactly_as_registered():
    factory = GymEnvFactory("CartPole-v1")
    for game in ("Nope-v9", "CartPole"):  # (gymnasium would resolve "CartPole" itself)
        _refused(
            factory,
            f"game_name {game!r} is not a registered Gymnasium id (with its version, e.g. "
            f"CartPole-v1), not allowed: {HOW_GAME}",
            game_name=game,
        )
    long = "A" * 129
    _refused(
        factory,
        f"game_name {shown(long)} is longer than 128 characters",
        game_name=long,
    )
    env = factory(game_name="Acrobot-v1")  # registered: any client may ask for it
    assert env.observation_dims() == {"sensor": (6,)}
    env.close()


def test_the_servers_own_game_and_its_allow_list_may_name_a_module():
    env = GymEnvFactory(PATTERN)()  # the server's --game
    assert list(env.observation_dims()) == ["sensor"]
    env.close()
    allowing = GymEnvFactory("CartPole-v1", allowed_games=frozenset({PATTERN}))
    env = allowing(game_name=PATTERN, image="yes", height="8", width="8")
    assert env.observation_dims() == {"sensor": (12, 8, 8)}
    env.close()


def test_allow_game_option_reaches_the_factory():
    adapter = find_adapter("gym")
    args = build_parser(adapter).parse_args(
        ["serve", "gym", "--game", "CartPole-v1", "--allow-game", PATTERN, "--allow-game", "X:Y"]
    )
    factory = adapter.build(args).factory
    assert factory.allowed_games == frozenset({PATTERN, "X:Y"})
    factory(game_name=PATTERN).close()


def test_a_minigrid_server_serves_only_minigrid_levels(evil_module):
    factory = MiniGridEnvFactory(LEVEL)
    _refused(
        factory,
        f"level 'CartPole-v1' is not registered by minigrid, not allowed: {HOW_LEVEL}",
        level="CartPole-v1",
    )
    _refused(
        factory,
        f"level 'evil_module:{LEVEL}' names a module to import, not allowed: {HOW_LEVEL}",
        level=f"evil_module:{LEVEL}",
    )
    factory(level="BabyAI-GoToLocalS6N2-v0").close()  # another minigrid level: fine
    allowing = MiniGridEnvFactory(LEVEL, allowed_levels=frozenset({f"minigrid:{LEVEL}"}))
    allowing(level=f"minigrid:{LEVEL}").close()


def test_allow_level_option_reaches_the_factory():
    adapter = find_adapter("minigrid")
    args = build_parser(adapter).parse_args(
        ["serve", "minigrid", "--level", LEVEL, "--allow-level", "pkg:Level-v0"]
    )
    assert adapter.build(args).factory.allowed_levels == frozenset({"pkg:Level-v0"})


# ----- bounded numbers ------------------------------------------------------------------------
def _gym_limit(name: str, high: int, got: object) -> str:
    return f"{name} must be an integer from 1 to {high}, got {got}"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"height": "1025"}, _gym_limit("height", MAX_FRAME_SIDE, 1025)),
        ({"height": "0"}, _gym_limit("height", MAX_FRAME_SIDE, 0)),
        ({"width": "1025"}, _gym_limit("width", MAX_FRAME_SIDE, 1025)),
        ({"contexts": "65"}, _gym_limit("contexts", MAX_CONTEXTS, 65)),
        ({"contexts": "9" * 21}, _gym_limit("contexts", MAX_CONTEXTS, "a string of 21 characters")),
        (
            {"height": "1024", "width": "1024", "contexts": "2"},
            "contexts x 3 colours x height x width must be at most 4194304, got 6291456",
        ),
        (
            {"height": "1024", "width": "1024", "contexts": "5", "gray": "1"},
            "contexts x 1 gray x height x width must be at most 4194304, got 5242880",
        ),
        ({"max_episode_steps": "1000001"}, _gym_limit("max_episode_steps", 1_000_000, 1000001)),
        ({"max_episode_steps": "0"}, _gym_limit("max_episode_steps", 1_000_000, 0)),
    ],
)
def test_every_image_number_is_bounded(config, message):
    _refused(GymEnvFactory(PATTERN, image=True), message, **config)


def test_the_largest_allowed_images_are_served():
    factory = GymEnvFactory(PATTERN, image=True)
    assert MAX_IMAGE_VALUES == 4 * 1024 * 1024 and MAX_EPISODE_STEPS == 1_000_000
    for config, shape in [
        ({"height": "1024", "width": "1024", "contexts": "4", "gray": "1"}, (4, 1024, 1024)),
        ({"height": "256", "width": "256", "contexts": "64", "gray": "1"}, (64, 256, 256)),
        ({"height": "1024", "width": "1", "contexts": "1"}, (3, 1024, 1)),
    ]:
        env = factory(**config)
        assert env.reset()["sensor"].shape == shape
        env.close()


def test_max_episode_steps_shortens_episodes_up_to_the_registered_limit():
    factory = GymEnvFactory("CartPole-v1")
    _refused(
        factory, _gym_limit("max_episode_steps", 500, 501), max_episode_steps="501"
    )  # CartPole-v1 registers 500
    env = factory(max_episode_steps="500")
    assert env.spec().max_episode_steps == 500
    env.close()
    env = factory(max_episode_steps="3", seed=0)
    assert env.spec().max_episode_steps == 3
    env.reset()
    for _ in range(3):
        _, _, game_over = env.step({"action": np.array([0 if _ % 2 else 1])})
    assert game_over == 0 and env.time_out()
    env.close()
    env = GymEnvFactory(PATTERN)(max_episode_steps="1000000")  # no registered limit: the cap
    assert env.spec().max_episode_steps == MAX_EPISODE_STEPS
    env.close()


def test_minigrid_instruction_length_is_bounded():
    factory = MiniGridEnvFactory(LEVEL)
    _refused(
        factory,
        f"instruction_length must be an integer from 1 to {MAX_INSTRUCTION_LENGTH}, got 129",
        instruction_length="129",
    )
    _refused(
        factory,
        "instruction_length must be an integer from 1 to 128, got a string of 25 characters",
        instruction_length="1" * 25,
    )
    env = factory(instruction_length=str(MAX_INSTRUCTION_LENGTH))
    assert env.observation_dims()["instruction"] == (MAX_INSTRUCTION_LENGTH,)
    env.close()


def test_the_command_line_sizes_have_the_same_bounds():
    adapter = find_adapter("gym")
    args = build_parser(adapter).parse_args(
        ["serve", "gym", "--game", PATTERN, "--image", "--height", "2000"]
    )
    with pytest.raises(ValueError) as info:
        adapter.build(args)
    assert str(info.value) == "--height must be an integer from 1 to 1024, got 2000"


# ----- the working directory of `python -m flare` ---------------------------------------------
def test_python_m_flare_never_imports_from_the_working_directory(tmp_path):
    """A stdlib name in the working directory would shadow it for `python -m flare`."""
    marker = tmp_path / "imported"
    (tmp_path / "argparse.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = subprocess.run(
        [sys.executable, "-m", "flare", "--version"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("flare ")
    assert not marker.exists()


def test_launch_commands_use_the_safe_path_flag():
    assert flare_command() == [sys.executable, "-P", "-m", "flare"]
    assert flare_serve_gym("CartPole-v1")[:4] == flare_command()


def test_a_served_game_name_cannot_import_a_file_beside_the_server(tmp_path):
    """`python -m flare serve` from a directory holding evil.py: a client naming
    "evil:Env" gets INVALID_ARGUMENT, evil.py never runs, and the server keeps serving."""
    marker = tmp_path / "imported"
    for name in ("evil.py", "gymnasium.py"):  # (gymnasium: what the server imports itself)
        (tmp_path / name).write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "flare", "serve", "gym", "--game", "CartPole-v1",
         "--address", f"127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line + str(marker.exists())
        address = line.rsplit(" ", 1)[1].strip()
        with pytest.raises(SimulatorError) as info:
            RemoteEnv(address, game_name="evil:Env", timeout_s=30)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "'evil:Env' names a module to import" in str(info.value)
        assert not marker.exists()
        env = RemoteEnv(address, game_name="CartPole-v1", seed=1, timeout_s=30)
        assert env.reset()["sensor"].shape == (4,)
        env.close()
    finally:
        proc.terminate()
        proc.wait(30)
    assert not marker.exists()


def test_factory_modules_beside_the_server_still_load(tmp_path):
    """`flare serve my_sim:make_env` beside my_sim.py, started as launch starts servers
    (``-P``): the working directory is searched for that import alone, in the server and
    in its env worker processes (whose sys.path has no working directory either)."""
    (tmp_path / "my_sim.py").write_text(
        "from flare.testing.envs import ChainEnv\n\n\n"
        "def make_env(seed=None):\n    return ChainEnv(max_steps=3)\n"
    )
    command = [*flare_command(), "serve", "my_sim:make_env", "--address", "127.0.0.1:0",
               "--env-processes", "1"]  # fmt: skip
    with simulator_process(command, cwd=tmp_path) as address:
        env = RemoteEnv(address, timeout_s=30)
        assert env.reset()["sensor"].tolist() == [0.0]
        env.close()
