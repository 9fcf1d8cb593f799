"""A farm of simulator servers: addresses, spreading by load, failover, back-off and drop,
and the agents of a process stepping together (batched) exactly as they would alone."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from flare.bridge import RemoteEnv, ServerSettings, serve
from flare.bridge.connection import ChannelSettings
from flare.bridge.farm import Farm, FarmSettings, farm_addresses, write_farm_file
from flare.env_zoo.gym_env import GymEnv
from flare.framework.env import EnvInterrupted
from flare.framework.reports import in_play_order
from flare.testing import ChainEnv


def chain(seed=None, goal="1000", max_steps="10", **config):
    return ChainEnv(goal=int(goal), max_steps=int(max_steps))


def cartpole(seed=None, **config):
    return GymEnv("CartPole-v1", seed=seed)


@pytest.fixture
def two_servers():
    servers = [serve(chain), serve(chain)]
    yield servers
    for server in servers:
        server.stop(0)


def test_a_farm_is_a_list_or_a_farm_file(tmp_path):
    assert farm_addresses("127.0.0.1:1") == ("127.0.0.1:1",)
    assert farm_addresses(["127.0.0.1:1", "127.0.0.1:2"]) == ("127.0.0.1:1", "127.0.0.1:2")
    assert farm_addresses("127.0.0.1:1,127.0.0.1:2") == ("127.0.0.1:1", "127.0.0.1:2")
    path = tmp_path / "farm.txt"
    path.write_text("# my farm\n127.0.0.1:1  # first\n\n127.0.0.1:2\n")
    assert farm_addresses(str(path)) == ("127.0.0.1:1", "127.0.0.1:2")
    write_farm_file(path, ["127.0.0.1:3", "127.0.0.1:4"])
    assert farm_addresses(str(path)) == ("127.0.0.1:3", "127.0.0.1:4")
    for bad, why in (([], "one or more"), (["a:1", "a:1"], "twice"), ([""], "one or more")):
        with pytest.raises(ValueError, match=why):
            farm_addresses(bad)
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="lists no address"):
        farm_addresses(str(tmp_path / "empty.txt"))


def test_sessions_spread_over_the_servers_by_their_load(two_servers):
    farm = [s.address for s in two_servers]
    envs = [RemoteEnv(farm, seed=i) for i in range(6)]
    try:
        assert [s.servicer.num_sessions for s in two_servers] == [3, 3]
    finally:
        for env in envs:
            env.close()
    assert [s.servicer.num_sessions for s in two_servers] == [0, 0]


def test_a_full_server_takes_no_more_sessions():
    full = serve(chain, settings=ServerSettings(max_sessions=1))
    roomy = serve(chain)
    try:
        envs = [RemoteEnv([full.address, roomy.address], seed=0) for _ in range(4)]
        assert (full.servicer.num_sessions, roomy.servicer.num_sessions) == (1, 3)
        for env in envs:
            env.close()
    finally:
        full.stop(0)
        roomy.stop(0)


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "session-stream"])
def test_a_dead_servers_episode_is_interrupted_and_play_moves_to_a_live_one(two_servers, batch):
    by_address = {s.address: s for s in two_servers}
    env = RemoteEnv(list(by_address), seed=0, batch=batch, goal="3", max_steps="50")
    env.reset()
    env.step({"action": np.array([1])})
    dead = env.address
    by_address[dead].stop(0)
    with pytest.raises(EnvInterrupted, match=dead):  # never a game over
        env.step({"action": np.array([1])})
    env.reset()
    assert env.address != dead
    outcomes = [env.step({"action": np.array([1])})[2] for _ in range(3)]
    assert outcomes == [0, 0, 1]  # a whole episode on the live server
    health = {h.address: h for h in env.farm_health()}
    assert (health[dead].state, health[dead].failures) == ("backing off", 1)
    assert (health[env.address].state, health[env.address].failures) == ("live", 0)
    env.close()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_failing_server_is_backed_off_then_dropped_but_never_the_last(caplog):
    clock = Clock()
    farm = Farm(
        ["a:1", "b:1"], ChannelSettings(), FarmSettings(max_failures=2, backoff_s=1), clock=clock
    )
    states = []
    with caplog.at_level(logging.WARNING, logger="flare.bridge.farm"):
        for _ in range(3):
            farm.failed("a:1", "lost")
            states.append((farm.health()[0].state, farm._servers[0].retry_at))
    # backed off 1 s, then 2 s (doubling in a row); dropped past 2 failures
    assert states == [("backing off", 1.0), ("backing off", 2.0), ("dropped", 2.0)]
    assert "dropped from the farm after 3 failures" in caplog.text
    assert farm.live() == ("b:1",)
    for _ in range(5):  # the last live server is only ever backed off
        farm.failed("b:1", "lost")
    assert farm.live() == ("b:1",) and farm.health()[1].state == "backing off"
    clock.now = 100.0
    assert farm.health()[1].state == "live"
    farm.succeeded("b:1")
    farm.failed("b:1", "lost")
    assert farm._servers[1].retry_at == 101.0  # a success starts the back-off over


def test_while_every_server_backs_off_the_first_to_come_back_is_tried():
    clock = Clock()
    farm = Farm(["a:1", "b:1"], ChannelSettings(), clock=clock)
    farm.failed("a:1", "lost")
    farm.failed("a:1", "lost")  # a: back until 3.0
    farm.failed("b:1", "lost")  # b: back until 1.0
    assert farm.choices(lambda address: None) == ["b:1"]


def test_batched_steps_equal_steps_alone(two_servers):
    # outside an agent group a batched env steps over its own StepManyStream
    farm = [s.address for s in two_servers]
    batched = RemoteEnv(farm, seed=3, goal="4", max_steps="6")
    alone = RemoteEnv(farm, seed=3, batch=False, goal="4", max_steps="6")
    try:
        for _ in range(3):
            assert batched.reset()["sensor"].tolist() == alone.reset()["sensor"].tolist()
            for t in range(6):
                action = {"action": np.array([t % 2])}
                (o1, r1, g1), (o2, r2, g2) = batched.step(action), alone.step(action)
                assert (o1["sensor"].tolist(), r1["reward"].tolist(), g1) == (
                    o2["sensor"].tolist(),
                    r2["reward"].tolist(),
                    g2,
                )
                assert batched.time_out() == alone.time_out()
                if g1 or batched.time_out():
                    break
    finally:
        batched.close()
        alone.close()


# ----- whole runs -----------------------------------------------------------------------------
PPO = """
name = "farm-ppo"
seed = 0

[env]
{env}
batch = {batch}
max_server_failures = {max_server_failures}

[agents]
count = 8
per_process = 4
games = {games}
reward_shaping = "tenth"

[cts.RL]
batch_wait_s = 1.0

[cts.RL.model]
type = "SimpleModelAC"
perception = {{ mlp = [64, 64], activation = "tanh" }}

[cts.RL.algorithm]
type = "PPO"
discount_factor = 0.98
gae_lambda = 0.8
num_epochs = 10
minibatch_size = 128
optim = {{ type = "Adam", lr = 2.5e-3 }}

[cts.RL.helper]
type = "OnlineHelper"
sample_interval = 32
"""


def _ppo_run(tmp_path, addresses, games, batch=True, max_server_failures=5, during=None):
    """examples/configs/cartpole_ppo.toml's PPO (8 agents, 4 per process) against the
    servers at ``addresses`` (a list, or a farm file's path); ``during(manager)`` runs in a
    thread while it trains."""
    import json
    import threading
    from dataclasses import replace

    from flare.learner.config import parse_config
    from flare.learner.quiet_run import QUIET, quiet_run

    env = (
        f"farm = {json.dumps(str(addresses))}"
        if isinstance(addresses, Path)
        else f"addresses = {json.dumps(list(addresses))}"
    )
    text = PPO.format(
        env=env,
        batch=str(batch).lower(),
        max_server_failures=max_server_failures,
        games=games,
    )
    simulators = () if isinstance(addresses, Path) else tuple(addresses)
    settings = replace(QUIET, simulators=simulators)
    config = parse_config(text)
    with quiet_run(config, tmp_path / f"run-{batch}", tmp_path, settings) as learner:
        manager = learner.manager
        watcher = threading.Thread(target=during, args=(manager,)) if during else None
        if watcher:
            watcher.start()
        learner.run()
        if watcher:
            watcher.join(60)
    return learner, manager


def _games(manager):
    return [(r.agent, r.agent_game, r.length, r.return_) for r in in_play_order(manager.stats)]


class RowCounter:
    """Counts the rows of every StepMany a server answers (wraps its servicer's)."""

    def __init__(self, server):
        self.rows = []
        step_many = server.servicer.step_many

        def counted(request):
            self.rows.append(len(request.session_ids))
            return step_many(request)

        server.servicer.step_many = counted


@pytest.mark.slow
def test_a_seeded_run_plays_the_same_games_batched_and_alone(tmp_path):
    server = serve(cartpole)
    counter = RowCounter(server)
    try:
        _, batched = _ppo_run(tmp_path, [server.address], games=8)
        batched_rows, counter.rows = counter.rows, []
        _, alone = _ppo_run(tmp_path, [server.address], games=8, batch=False)
    finally:
        server.stop(0)
    assert len(batched.stats) == len(alone.stats) == 64
    assert _games(batched) == _games(alone)
    # the 4 agents of a process step in one message (fewer once some have finished, or
    # for a step when one is a round behind: an agent predicts once more at a game's end)
    assert max(batched_rows) == 4 and sum(batched_rows) == batched.env_steps
    assert len(batched_rows) < 0.5 * batched.env_steps
    assert counter.rows == []  # (alone: Session streams, no StepMany)


@pytest.mark.slow
def test_training_goes_on_when_a_server_of_its_farm_dies(tmp_path):
    servers = [serve(cartpole), serve(cartpole)]
    dead = servers[0].address

    def kill_one(manager):
        deadline = time.monotonic() + 120
        while manager.games_played < 24 and time.monotonic() < deadline:
            time.sleep(0.05)
        servers[0].stop(0)

    try:
        learner, manager = _ppo_run(
            tmp_path, [s.address for s in servers], games=12, max_server_failures=0,
            during=kill_one,
        )  # fmt: skip
    finally:
        for server in servers:
            server.stop(0)
    assert manager.games_played == 96  # every game played, on the live server
    assert manager.interrupted_games >= 1  # the dead server's episodes: cut, not game overs
    assert all(r.length >= 8 for r in manager.stats)  # (no false early ends)
    status = learner.tracker.status()
    assert status.simulators_live == 1
    assert [(h.address, h.state) for h in status.simulator_health] == [(dead, "dropped")]
    assert "simulators 1/2 live" in status.line()


def test_a_farm_file_is_followed_when_it_is_rewritten(tmp_path, two_servers):
    path = tmp_path / "farm.txt"
    first, second = (s.address for s in two_servers)
    write_farm_file(path, [first])
    env = RemoteEnv(str(path), seed=0)
    assert env.address == first and env.addresses == (first,)
    write_farm_file(path, [second])  # (e.g. Ray restarted the server elsewhere)
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # (a newer mtime)
    env.reset()
    env.step({"action": np.array([1])})
    two_servers[0].stop(0)
    with pytest.raises(EnvInterrupted):  # the session is lost with its server
        env.step({"action": np.array([1])})
    env.reset()  # the next one opens on the server the file names now
    assert env.address == second and env.addresses == (second,)
    env.close()
