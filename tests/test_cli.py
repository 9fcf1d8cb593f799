"""The `flare` command line: version, defaults in help, clear one-line errors, adapters."""

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from flare import __version__
from flare.cli import main
from flare.env_zoo.registry import Adapter, adapter_names, find_adapter

ROOT = Path(__file__).resolve().parents[1]


def _flare(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flare", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"flare {__version__}"


@pytest.mark.parametrize(
    "argv, shown",
    [
        (["serve", "--help"], ["(default: 127.0.0.1:50051)", "(default: 64)", "(gym, minigrid"]),
        (["serve", "gym", "--help"], ["(default: 84)", "--game GAME", "(default: 300.0)"]),
        (["serve", "minigrid", "--help"], ["(default: auto)", "(default: 16)"]),
        (["check-sim", "--help"], ["(default: 10.0)", "(default: 256)"]),
        (["plot", "--help"], ["(default: 100)"]),
    ],
)
def test_every_help_shows_the_defaults(argv, shown, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    for text in shown:
        assert text in " ".join(out.split()), f"{text!r} not in {argv} help"


def test_check_sim_list_needs_no_address(capsys):
    assert main(["check-sim", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "health" and len(lines) > 10


def test_check_sim_without_an_address_is_one_line(capsys):
    assert main(["check-sim"]) == 2
    assert capsys.readouterr().err.strip() == (
        "flare check-sim: check-sim needs the ADDRESS (HOST:PORT) of a simulator"
    )


def test_a_port_in_use_is_one_clear_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _flare("serve", "gym", "--game", "CartPole-v0", "--address", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"flare serve: port {port} is already in use (127.0.0.1:{port})"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["serve", "gym", "--game", "CartPole-v0", "--level", "X"],
         "--level X: not an option of `flare serve gym`"),
        (["serve", "minigrid", "--level", "BabyAI-GoToRedBall-v0", "--game", "CartPole-v0"],
         "--game CartPole-v0: not an option of `flare serve minigrid`"),
        (["serve", "tests.scripts.sim_factory:make_env", "--game", "CartPole-v0"],
         "--game CartPole-v0: not an option of `flare serve tests.scripts.sim_factory"),
    ],
)  # fmt: skip
def test_options_of_another_adapter_are_an_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_image_options_without_image_and_unknown_adapters_are_errors(capsys):
    assert main(["serve", "gym", "--game", "CartPole-v0", "--height", "42", "--gray"]) == 2
    assert "--height, --gray are only for --image" in capsys.readouterr().err
    assert main(["serve", "nope"]) == 2
    bundled = ", ".join(adapter_names())
    assert f"no adapter 'nope': the bundled ones are {bundled}" in capsys.readouterr().err


def test_serve_a_module_in_the_current_directory(tmp_path):
    """`flare serve my_sim:make_env` run beside my_sim.py, as the simulator guide says."""
    (tmp_path / "my_sim.py").write_text(
        textwrap.dedent(
            """
            from flare.testing.envs import ChainEnv

            def make_env(seed=None, max_steps="3"):
                return ChainEnv(max_steps=int(max_steps))
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "flare", "serve", "my_sim:make_env", "--address", "127.0.0.1:0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "(my_sim:make_env) listening on 127.0.0.1:" in line, line
        from flare.bridge import RemoteEnv

        env = RemoteEnv(line.rsplit(" ", 1)[1].strip(), max_steps=2)
        env.reset()
        env.step({"action": np.array([1])})
        env.step({"action": np.array([1])})
        assert env.time_out()
        env.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_every_adapter_module_declares_its_adapter():
    assert {"gym", "minigrid"} <= set(adapter_names())  # (and any adapter added later)
    for name in adapter_names():
        adapter = find_adapter(name)
        assert isinstance(adapter, Adapter) and adapter.name == name
    assert find_adapter("memory_cue") is None  # a zoo module, not an adapter


def test_serving_gym_does_not_import_minigrid():
    code = (
        "import sys; from flare.cli import build_parser; from flare.env_zoo.registry import "
        "find_adapter; build_parser(find_adapter('gym')); print('minigrid' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
