"""Simulator servers as Ray actors (``flare.farm.ray``): placed, restarted by Ray when
they die, followed by the learner through the farm file; loopback only."""

import ipaddress
import os
import time

import psutil
import pytest

from flare.farm.ray import LOOPBACK_ENV, RayFarm, ServerResources, init_local_ray

os.environ.update(LOOPBACK_ENV)  # (before ray is imported: it reads them then)
import ray  # noqa: E402 - flare[ray] is installed wherever the suite runs: never skipped
from test_farm import _ppo_run  # noqa: E402

from flare.bridge import RemoteEnv  # noqa: E402
from flare.bridge.farm import read_farm_file  # noqa: E402

GAMES = 400  # each agent's, a bound: the test stops the run once the restart is seen
AFTER_RESTART = 16  # games played after the restarted server is back, before the stop
STOP = "the test, after the restart"


@pytest.fixture(scope="module")
def local_ray():
    init_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def _non_loopback_sockets():
    """Every socket of this process's children (the Ray cluster, the servers) not bound
    to loopback."""
    wrong = []
    for process in psutil.Process().children(recursive=True):
        try:
            connections = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for connection in connections:
            ip = ipaddress.ip_address(connection.laddr.ip)
            mapped = getattr(ip, "ipv4_mapped", None)
            if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
                wrong.append((process.name(), connection.laddr))
    return wrong


@pytest.mark.slow
def test_training_goes_on_while_ray_restarts_a_killed_server(local_ray, tmp_path):
    farm_file = tmp_path / "farm.txt"
    resources = ServerResources(num_cpus=0.5, max_restarts=2)
    serve = ["serve", "gym", "--game", "CartPole-v0", "--idle-timeout", "30"]
    with RayFarm(2, serve, farm_file=farm_file, resources=resources, poll_s=0.2) as farm:
        first = farm.addresses
        assert read_farm_file(farm_file) == first
        assert _non_loopback_sockets() == []
        seen = {}

        def kill_one(manager):
            # Ray's restart takes 1-20 s: the run goes on until it is seen and some games
            # were played after it, then this stops it (never by the game bound)
            deadline = time.monotonic() + 120
            try:
                while manager.games_played < 8 and time.monotonic() < deadline:
                    time.sleep(0.05)
                ray.kill(farm.actors[0], no_restart=False)  # Ray brings it back, elsewhere
                while farm.addresses[0] in (first[0], "") and time.monotonic() < deadline:
                    time.sleep(0.1)
                seen["after"] = farm.addresses
                seen["file"] = read_farm_file(farm_file)
                seen["games_then"] = manager.games_played
                # a new session (one the agents open after losing theirs) follows the file
                # to the restarted server, the least loaded
                probe = RemoteEnv(str(farm_file), game_name="CartPole-v0")
                seen["probe"] = probe.address
                probe.close()
                while (
                    manager.games_played < seen["games_then"] + AFTER_RESTART
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
            finally:
                manager.request_stop(STOP)

        _, manager = _ppo_run(tmp_path, farm_file, games=GAMES, during=kill_one)
    assert manager.stop_reason == STOP  # (the restart came while training went on)
    assert manager.games_played >= seen["games_then"] + AFTER_RESTART
    assert manager.interrupted_games >= 1  # the killed server's episodes, never game overs
    restarted = seen["after"][0]
    assert restarted != first[0] and seen["after"][1] == first[1]
    assert seen["file"] == seen["after"]  # the learner's envs follow the file
    assert seen["probe"] == restarted
    assert not farm_file.exists()
