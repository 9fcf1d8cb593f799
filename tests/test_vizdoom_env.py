"""The ViZDoom adapter: first-person frames of a C++ engine behind FLARE's Env, served by
`flare serve vizdoom`, passing the compliance suite, its engine in a directory of its own,
and an engine or env worker that dies costing only its own episode or sessions."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest
import vizdoom as vzd

from flare.bridge import RemoteEnv, ServerSettings, serve
from flare.bridge.codec import decode, encode
from flare.compliance import CHECKS, Target, run_check
from flare.env_zoo.vizdoom_env import (
    BUNDLED_SCENARIOS,
    ViZDoomEnv,
    ViZDoomEnvFactory,
    ViZDoomSettings,
    button_combinations,
    engine_resolution,
)
from flare.framework.env import FAILURE, SUCCESS, EnvInterrupted
from flare.framework.env_spec import Discrete
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from tests.conftest import flare_serve

ROOT = Path(__file__).resolve().parents[1]
CODE = grpc.StatusCode
LEFT, RIGHT, ATTACK = 0, 1, 2  # basic's buttons


def _act(env, action: int):
    return env.step({"action": np.array([action])})


def _engines() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.name() == "vizdoom"]


def _monster_label(env: ViZDoomEnv) -> int:
    (monster,) = [
        label for label in env.game.get_state().labels if label.object_name == "Cacodemon"
    ]
    return int(monster.value)


def _aim_and_shoot(env: ViZDoomEnv) -> tuple[int, float, int]:
    """Plays basic by its labels buffer: turn toward the monster's pixels, then shoot.
    Returns (steps, return, game_over)."""
    observations = env.reset()
    monster = _monster_label(env)
    total, steps = 0.0, 0
    while True:
        labels = observations["labels"][-1]
        columns = np.flatnonzero((labels == monster).any(axis=0))
        centre = labels.shape[1] / 2
        if len(columns) == 0 or abs(columns.mean() - centre) <= 2:
            action = ATTACK
        else:
            action = LEFT if columns.mean() < centre else RIGHT
        observations, rewards, game_over = _act(env, action)
        total += float(rewards["reward"][0])
        steps += 1
        if game_over or env.time_out():
            return steps, total, game_over


def test_basic_observations_actions_and_spec():
    env = ViZDoomEnv(seed=0)
    try:
        spec = env.spec()
        assert env.buttons == ("MOVE_LEFT", "MOVE_RIGHT", "ATTACK")
        assert spec.observation_dims() == {"screen": (3, 60, 80)}
        assert spec.observations[0].dtype == np.uint8
        assert spec.actions[0].kind == Discrete(3) and spec.reward_names == ("reward",)
        # basic's 300-tic time-out, 4 tics a step
        assert spec.max_episode_steps == 75 == env.max_steps
        screen = env.reset()["screen"]
        assert screen.dtype == np.uint8 and screen.shape == (3, 60, 80) and screen.std() > 10
    finally:
        env.close()


def test_gray_stacked_frames_depth_labels_and_game_variables():
    settings = ViZDoomSettings(
        gray=True, contexts=4, depth=True, labels=True, game_variables=True, height=84, width=84
    )
    env = ViZDoomEnv(settings, seed=3)
    try:
        assert env.observation_dims() == {
            "screen": (4, 84, 84),
            "depth": (4, 84, 84),
            "labels": (4, 84, 84),
            "game_variables": (1,),
        }
        first = env.reset()
        assert {k: v.dtype for k, v in first.items()} == {
            "screen": np.uint8,
            "depth": np.uint8,
            "labels": np.uint8,
            "game_variables": np.float32,
        }
        # a new episode's stack is its first frame four times; each step pushes one
        assert all((first["screen"][i] == first["screen"][0]).all() for i in range(4))
        assert first["game_variables"].tolist() == [50.0]  # AMMO2: basic's pistol ammo
        after, _, _ = _act(env, ATTACK)
        np.testing.assert_array_equal(after["screen"][:3], first["screen"][1:])
        ammo = [after["game_variables"][0]]
        for _ in range(2):  # (the pistol fires on the second step: it is raised first)
            ammo.append(_act(env, ATTACK)[0]["game_variables"][0])
        assert ammo == [50.0, 49.0, 49.0]
        # the monster is labelled: some pixels carry its label value
        labels = env.reset()["labels"][-1]
        assert 0 < np.count_nonzero(labels == _monster_label(env)) < labels.size / 10
    finally:
        env.close()


def test_seeded_episodes_repeat():
    def play(seed: int) -> list:
        env = ViZDoomEnv(ViZDoomSettings(frame_skip=2), seed=seed)
        rng = np.random.default_rng(0)
        seen = [int(env.reset()["screen"].sum())]
        for _ in range(30):
            observations, rewards, game_over = _act(env, int(rng.integers(3)))
            seen.append((int(observations["screen"].sum()), float(rewards["reward"][0])))
            if game_over or env.time_out():
                break
        env.close()
        return seen

    assert play(5) == play(5)
    assert play(5) != play(6)  # the monster stands elsewhere


def test_episode_start_replays_an_episode():
    env = ViZDoomEnv(seed=9)
    try:
        env.reset()
        start = env.episode_start()
        first = env.reset()["screen"]
        env.reset()
        np.testing.assert_array_equal(env.reset_from(start)["screen"], first)
        assert env.reseed(9) and env.reset()["screen"].tolist() != first.tolist()
    finally:
        env.close()


def test_killing_the_monster_is_a_success():
    env = ViZDoomEnv(ViZDoomSettings(labels=True), seed=1)
    try:
        steps, total, game_over = _aim_and_shoot(env)
        assert game_over == SUCCESS and not env.time_out()
        assert total > 0 and steps < 75  # about +100 for the kill, -1 a tic, -5 a missed shot
        with pytest.raises(RuntimeError, match="after the episode ended"):
            _act(env, ATTACK)
    finally:
        env.close()


def test_the_scenario_time_out_is_a_time_out_not_a_game_over():
    env = ViZDoomEnv(seed=2)
    try:
        env.reset()
        steps = 0
        while not env.time_out() and steps < 100:
            _, rewards, game_over = _act(env, LEFT)  # never shoots: the monster lives
            assert game_over == 0
            steps += 1
        assert steps == 75 and env.time_out()
        env.reset()
        assert not env.time_out()
    finally:
        env.close()


def test_dying_is_a_failure():
    # health_gathering's floor is acid: standing still (turning), the player dies
    env = ViZDoomEnv(ViZDoomSettings(scenario="health_gathering", frame_skip=8), seed=0)
    try:
        env.reset()
        for _ in range(env.max_steps):
            _, rewards, game_over = _act(env, 0)
            if game_over or env.time_out():
                break
        assert game_over == FAILURE and not env.time_out()
        assert float(rewards["reward"][0]) < -50  # its death penalty of 100
    finally:
        env.close()


def test_button_combinations():
    assert button_combinations(3, 1) == [(0,), (1,), (2,)]
    assert button_combinations(3, 2) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]
    env = ViZDoomEnv(ViZDoomSettings(buttons_pressed=2), seed=0)
    try:
        assert env.action_dims() == {"action": 6}
        env.reset()
        for _ in range(2):
            _act(env, 5)  # MOVE_RIGHT + ATTACK together: the pistol fires on the second
        assert env.game.get_game_variable(vzd.GameVariable.AMMO2) == 49
        assert env.game.get_button(vzd.Button.MOVE_RIGHT) == 1
    finally:
        env.close()


def test_engine_resolution_covers_the_frame():
    assert engine_resolution(80, 60)[:2] == (160, 120)
    assert engine_resolution(84, 84)[:2] == (160, 120)
    assert engine_resolution(161, 100)[:2] == (200, 125)


def test_bad_settings_and_actions():
    with pytest.raises(ValueError, match="neither a bundled scenario"):
        ViZDoomEnv(ViZDoomSettings(scenario="nowhere"))
    with pytest.raises(ValueError, match="no such file"):
        ViZDoomEnv(ViZDoomSettings(scenario="/nonexistent/x.cfg"))
    with pytest.raises(ValueError, match="contexts must be an integer from 1 to 16"):
        ViZDoomSettings(contexts=17)
    with pytest.raises(ValueError, match="at most 4194304"):
        ViZDoomSettings(height=640, width=640, contexts=16)
    env = ViZDoomEnv(seed=0)
    try:
        with pytest.raises(RuntimeError, match="before reset"):
            _act(env, 0)
        env.reset()
        with pytest.raises(ValueError, match="outside 0..2"):
            _act(env, 3)
        with pytest.raises(KeyError, match="no 'action'"):
            env.step({"move": np.array([0])})
        with pytest.raises(ValueError, match="actrep must be >= 1"):
            env.step({"action": np.array([0])}, actrep=0)
    finally:
        env.close()


def test_each_engine_runs_in_a_directory_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    envs = [ViZDoomEnv(seed=i) for i in range(2)]
    engines = _engines()
    directories = {Path(p.cwd()) for p in engines}
    assert len(engines) == 2 and len(directories) == 2
    for directory in directories:
        assert directory.parent == Path(os.environ.get("TMPDIR", "/tmp")).resolve()
        assert (directory / "_vizdoom").is_dir()
    assert list(tmp_path.iterdir()) == []  # nothing written where the process runs
    for env in envs:
        env.close()
    assert not any(d.exists() for d in directories)  # removed with the env
    assert _engines() == []


def test_the_engine_opens_no_network_socket():
    """A single-player engine needs no network: neither the engine nor its launcher
    holds an inet socket, loopback or not."""
    env = ViZDoomEnv(seed=3)
    try:
        env.reset()
        _act(env, ATTACK)
        processes = psutil.Process().children(recursive=True)
        assert [p.name() for p in processes].count("vizdoom") == 1
        assert [c for p in processes for c in p.net_connections(kind="inet")] == []
    finally:
        env.close()


def test_a_killed_engine_costs_its_episode_and_the_next_reset_starts_another():
    env = ViZDoomEnv(seed=4)
    try:
        env.reset()
        _act(env, LEFT)
        (engine,) = _engines()
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        with pytest.raises(EnvInterrupted, match="engine exited"):
            _act(env, LEFT)
        assert env.reset()["screen"].shape == (3, 60, 80)
        (fresh,) = _engines()
        assert fresh.pid != engine.pid
        _, rewards, game_over = _act(env, LEFT)
        assert game_over == 0 and float(rewards["reward"][0]) == -4.0  # 4 tics alive
    finally:
        env.close()


# ----- the factory: a client's config is bounded ---------------------------------------------
def test_factory_takes_bounded_client_config():
    factory = ViZDoomEnvFactory(ViZDoomSettings(scenario="basic"))
    env = factory(scenario="health_gathering", gray="true", contexts="2", seed=1)
    try:
        assert env.observation_dims() == {"screen": (2, 60, 80)}
        assert env.settings.scenario == "health_gathering"
    finally:
        env.close()
    with pytest.raises(ValueError, match="is not one of basic"):
        factory(scenario=str(Path(vzd.scenarios_path) / "basic.cfg"))
    with pytest.raises(ValueError, match="height must be an integer from 1 to 640"):
        factory(height="100000")
    with pytest.raises(ValueError, match="unknown config keys"):
        factory(vizdoom_path="/bin/sh")
    with pytest.raises(ValueError, match="gray must be true or false"):
        factory(gray="maybe")
    assert "deadly_corridor" in BUNDLED_SCENARIOS and "my_way_home" in BUNDLED_SCENARIOS


def test_a_server_started_with_a_cfg_lets_clients_name_it(tmp_path):
    source = Path(vzd.scenarios_path)
    cfg = tmp_path / "my_basic.cfg"
    text = (source / "basic.cfg").read_text()
    cfg.write_text(text.replace("episode_timeout = 300", "episode_timeout = 40"))
    (tmp_path / "basic.wad").write_bytes((source / "basic.wad").read_bytes())  # beside it
    factory = ViZDoomEnvFactory(ViZDoomSettings(scenario=str(cfg)))
    env = factory(scenario=str(cfg), seed=0)
    try:
        assert env.max_steps == 10  # its own 40-tic time-out
    finally:
        env.close()


# ----- served over gRPC ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def vizdoom_server():
    # (8 sessions at most: too-many-sessions opens them all, an engine each)
    server = serve(
        ViZDoomEnvFactory(ViZDoomSettings(gray=True, height=30, width=40)),
        settings=ServerSettings(max_sessions=8),
    )
    yield server
    server.stop(0)


@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_the_vizdoom_adapter_passes(check, vizdoom_server):
    assert run_check(check, Target(vizdoom_server.address))


def _stub(server):
    return pb_grpc.SimulatorStub(grpc.insecure_channel(server.address))


def _open(stub, seed=0, **config) -> str:
    request = pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1, config=config)
    request.seed = seed
    session_id = stub.OpenSession(request, timeout=30).session_id
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=30)
    return session_id


def _step(stub, session_id, action=LEFT):
    request = pb.StepRequest(session_id=session_id, actions={"action": encode(np.array([action]))})
    return stub.Step(request, timeout=30)


@pytest.mark.slow
def test_with_env_processes_a_dead_engine_or_worker_costs_only_its_own(no_stray_processes):
    server = serve(
        ViZDoomEnvFactory(ViZDoomSettings(gray=True, height=30, width=40)),
        settings=ServerSettings(env_processes=2, max_sessions=4),
    )
    try:
        stub = _stub(server)
        witness, doomed = _open(stub, seed=1), _open(stub, seed=2)
        workers = server.servicer.workers.workers
        assert {w.num_sessions for w in workers} == {1}
        # the engine of the doomed session's worker dies: that episode fails (INTERNAL),
        # the session resets with a new engine, the witness never notices
        doomed_worker = next(w for w in workers if w.num_sessions and w is not workers[0])
        (engine,) = [
            p
            for p in psutil.Process(doomed_worker.process.pid).children(recursive=True)
            if p.name() == "vizdoom"
        ]
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.INTERNAL and "engine exited" in info.value.details()
        assert decode(_step(stub, witness).rewards["reward"]).tolist() == [-4.0]
        stub.Reset(pb.ResetRequest(session_id=doomed), timeout=30)
        assert decode(_step(stub, doomed).rewards["reward"]).tolist() == [-4.0]
        # the whole worker dies (as in a segfault): its session is lost, the server serves
        doomed_worker.process.kill()
        doomed_worker.process.join(10)
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.INTERNAL
        with pytest.raises(grpc.RpcError) as info:
            _step(stub, doomed)
        assert info.value.code() == CODE.NOT_FOUND
        assert decode(_step(stub, witness).rewards["reward"]).tolist() == [-4.0]
        fresh = _open(stub, seed=3)
        assert decode(_step(stub, fresh).rewards["reward"]).tolist() == [-4.0]
    finally:
        server.stop(0)


@pytest.mark.slow
def test_flare_serve_vizdoom_plays_as_a_local_env(tmp_path):
    with flare_serve("vizdoom", "--scenario", "basic", "--gray", "--contexts", "2") as (_, addr):
        remote = RemoteEnv(addr, seed=7)
        local = ViZDoomEnv(ViZDoomSettings(gray=True, contexts=2), seed=7)
        try:
            assert remote.spec() == local.spec()
            np.testing.assert_array_equal(remote.reset()["screen"], local.reset()["screen"])
            for action in [LEFT, LEFT, ATTACK, RIGHT, ATTACK, RIGHT, RIGHT, ATTACK]:
                got, want = _act(remote, action), _act(local, action)
                np.testing.assert_array_equal(got[0]["screen"], want[0]["screen"])
                assert got[1]["reward"][0] == want[1]["reward"][0] and got[2] == want[2]
                if got[2]:
                    break
        finally:
            remote.close()
            local.close()
    assert not (ROOT / "_vizdoom").exists() and not (ROOT / "_vizdoom.ini").exists()


def test_flare_serve_vizdoom_refuses_a_bad_scenario():
    result = subprocess.run(
        [sys.executable, "-m", "flare", "serve", "vizdoom", "--scenario", "nowhere"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "neither a bundled scenario" in result.stderr


def test_without_vizdoom_installed_the_adapter_names_its_extra(monkeypatch):
    from flare.cli import main
    from flare.env_zoo.registry import find_adapter

    monkeypatch.setitem(sys.modules, "vizdoom", None)  # (an import of it now fails)
    monkeypatch.delitem(sys.modules, "flare.env_zoo.vizdoom_env")
    with pytest.raises(
        ImportError, match=r"needs the 'vizdoom' package: pip install 'flare\[vizdoom\]'"
    ):
        find_adapter("vizdoom")
    assert main(["serve", "vizdoom"]) == 2
