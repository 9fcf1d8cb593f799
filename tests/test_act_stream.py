"""The Learner service's Act stream: simulators that drive their own loop play as agents
of a real run (ChainEnv-sized models, one agent of the run's own beside them).

Every refusal asserts the exact status code, the field its message names, and that the
learner still serves afterwards (a status call, and a good stream that plays).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch
import torch.nn as nn

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.bridge.codec import encode
from flare.bridge.specs import spec_to_proto
from flare.compliance.act_probe import LearnerProbe, LearnerTarget, StreamEndedOK, step_message
from flare.compliance.learner_checks import LEARNER_CHECKS
from flare.compliance.runner import run_checks
from flare.framework.agent import OnlineHelper
from flare.framework.env_spec import ArraySpec, Discrete, EnvSpec
from flare.framework.manager import Manager
from flare.framework.reports import GameInterrupted
from flare.framework.run_events import RunObserver
from flare.learner.act_client import ActClient, RunComplete, drive
from flare.learner.client import LearnerClient, LearnerError
from flare.learner.learner import Learner, LearnerSettings
from flare.learner.run_dir import RunDirectory
from flare.learner.v1 import learner_pb2 as pb
from flare.model_zoo.simple_models import SimpleModelAC
from flare.simulator.v1 import simulator_pb2 as sim_pb
from flare.testing import ChainEnv

CODE = grpc.StatusCode
WAIT_S = 60.0
SPEC = ChainEnv(max_steps=5).spec()


def _wait_for(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Interruptions(RunObserver):
    """Every interrupted episode the Manager hears of, as (agent, reason)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    def game_interrupted(self, report: GameInterrupted) -> None:
        self.seen.append((report.agent, report.reason))

    def wait_for(self, since: int, agent: int, reason: str) -> None:
        _wait_for(
            lambda: any(a == agent and reason in r for a, r in self.seen[since:]),
            f"agent {agent}'s episode interrupted ({reason}); seen {self.seen[since:]}",
        )


class ActRun:
    """A learner in a thread: ``own`` ChainEnv agents of its own and ``streams`` Act slots."""

    def __init__(
        self,
        run_dir: Path,
        streams: int = 2,
        own: int = 1,
        act_games: int = 0,
        resume: bool = False,
        **settings,
    ) -> None:
        torch.manual_seed(0)
        model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
        alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
        self.manager = Manager(
            {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=2)},
            dict(print_interval_s=0, window=10),
        )
        for _ in range(own):
            agent = SimpleRLAgent(1_000_000)
            agent.set_env(ChainEnv, max_steps=5)
            self.manager.add_agent(agent)
        external = [SimpleRLAgent(1_000_000) for _ in range(streams)]
        self.manager.add_external_agents(external, games=act_games)
        self.interruptions = Interruptions()
        self.manager.observers.append(self.interruptions)
        settings = dict(progress="off", tensorboard=False, checkpoint_every_s=0, **settings)
        directory = (
            RunDirectory.open(run_dir) if resume else RunDirectory.create(run_dir, None, sys.argv)
        )
        self.learner = Learner(
            self.manager,
            directory,
            LearnerSettings(**settings),
            resume=resume,
            env_spec=SPEC,
            out=io.StringIO(),
        )
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="act-run", daemon=True)
        self.thread.start()
        _wait_for(lambda: self.learner.address is not None, "the learner's address")
        self.address = self.learner.address
        assert self.address is not None
        self.probe = LearnerProbe(LearnerTarget(self.address, timeout_s=WAIT_S))

    def _run(self) -> None:
        try:
            self.learner.run()
        except BaseException as err:  # noqa: BLE001 - reported by finish()
            self.failure = err

    def status(self) -> pb.RunStatus:
        return self.probe.status()

    def finish(self) -> None:
        self.manager.request_stop("the test is over")
        self.thread.join(WAIT_S)
        self.probe.close_all()
        assert not self.thread.is_alive(), "the run did not stop"
        assert self.failure is None, self.failure


@pytest.fixture(scope="module")
def act_run(tmp_path_factory):
    run = ActRun(tmp_path_factory.mktemp("act") / "run")
    yield run
    run.finish()


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def playing(run: ActRun, steps: int = 2):
    """A stream opened with the run's spec that has played ``steps`` steps (its agent in
    ``stream.agent``)."""
    stream = run.probe.stream()
    stream.open(SPEC, config={"name": "test"})
    stream.step(step_message(SPEC, rng(), rewards=False))
    for _ in range(steps - 1):
        stream.step(step_message(SPEC, rng()))
    return stream


def assert_still_serves(run: ActRun) -> None:
    run.status()
    stream = playing(run, steps=3)
    stream.close()


def assert_refused(send, code: grpc.StatusCode, names: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        send()
    assert caught.value.code() == code, caught.value.details()
    assert names in caught.value.details(), caught.value.details()


def _interrupted(run: ActRun) -> int:
    return len(run.interruptions.seen)


# ----- playing -------------------------------------------------------------------------------
def test_a_stream_plays_games_that_the_run_records(act_run):
    before = act_run.status()
    played = drive(ChainEnv(max_steps=5), act_run.address, name="chain", max_games=4)
    assert played == 4
    _wait_for(lambda: act_run.status().games >= before.games + 4, "the stream's games")
    external = act_run.manager.external.ids
    records = [r for r in act_run.manager.stats if r.agent in external]
    assert len(records) >= 4 and all(r.length == 5 and r.return_ == 5.0 for r in records)
    games_csv = (act_run.learner.run_dir.path / "games.csv").read_text().splitlines()
    agents = {int(line.split(",")[1]) for line in games_csv[1:]}
    assert agents & external, "the stream's games are not in games.csv"
    assert act_run.status().policy_version > before.policy_version


def test_actions_follow_the_spec_and_an_ending_step_is_acknowledged(act_run):
    stream = act_run.probe.stream()
    opened = stream.open(SPEC)
    assert opened.agent in act_run.manager.external.ids
    assert opened.protocol_version == pb.ACT_PROTOCOL_VERSION_1
    reply = stream.step(step_message(SPEC, rng(), rewards=False))
    action = np.frombuffer(reply.actions["action"].data, np.int64)
    assert list(reply.actions["action"].shape) == [1] and action[0] in (0, 1)
    assert reply.actions["action"].dtype == sim_pb.DTYPE_INT64 and not reply.episode_over
    ended = stream.step(step_message(SPEC, rng(), game_over=1))
    assert ended.episode_over and not ended.actions
    # the next step is a new episode's first: it carries no rewards
    assert stream.step(step_message(SPEC, rng(), rewards=False)).actions
    stream.close()


def test_status_counts_the_open_streams(act_run):
    stream = playing(act_run)
    status = act_run.status()
    assert (status.act_streams, status.act_streams_max) == (1, 2)
    spec_reply = act_run.probe.act_spec()
    assert spec_reply == (SPEC, 2)
    stream.close()
    _wait_for(lambda: act_run.status().act_streams == 0, "the stream to close")


def test_streams_are_batched_with_each_other_in_the_cdp(tmp_path):
    run = ActRun(tmp_path / "run", streams=2, own=0)
    try:
        _wait_for(lambda: "RL" in run.manager.cdps, "the run's CDP")
        cdp = run.manager.cdps["RL"]
        threads = [
            threading.Thread(
                target=drive, args=(ChainEnv(max_steps=5), run.address), kwargs={"max_games": 40}
            )
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
        assert cdp.stats.predict_calls > 0
        assert cdp.stats.predict_instances > 1.3 * cdp.stats.predict_calls, cdp.stats
    finally:
        run.finish()


# ----- the open ------------------------------------------------------------------------------
def _spec_with(**changes) -> EnvSpec:
    return EnvSpec(**{**SPEC.__dict__, **changes})


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (_spec_with(actions=()), "spec.actions: no action 'action'"),
        (
            _spec_with(actions=(ArraySpec("action", np.dtype("int64"), (1,), Discrete(3)),)),
            "spec.actions[0]",
        ),
        (
            _spec_with(
                actions=(
                    *SPEC.actions,
                    ArraySpec("jump", np.dtype("int64"), (1,), Discrete(2)),
                )
            ),
            "'jump' is not an action of the run",
        ),
        (
            _spec_with(observations=(ArraySpec("sensor", np.dtype("float32"), (2,)),)),
            "spec.observations[0]",
        ),
        (
            _spec_with(observations=(ArraySpec("camera", np.dtype("uint8"), (4,)),)),
            "'sensor'",
        ),
        (_spec_with(reward_names=("score",)), "spec.reward_names"),
    ],
    ids=["no-action", "action-values", "extra-action", "obs-shape", "obs-missing", "rewards"],
)
def test_a_spec_the_models_cannot_read_is_refused(act_run, spec, names):
    stream = act_run.probe.stream()
    assert_refused(lambda: stream.open(spec), CODE.INVALID_ARGUMENT, names)
    assert_still_serves(act_run)


def test_open_rules(act_run):
    probe = act_run.probe
    for version in (0, 2):
        stream = probe.stream()
        assert_refused(
            lambda s=stream, v=version: s.open(SPEC, version=v),
            CODE.FAILED_PRECONDITION,
            "protocol_version",
        )
    stream = probe.stream()
    first_step = pb.ActRequest(step=step_message(SPEC, rng(), rewards=False))
    assert_refused(lambda: stream.send(first_step), CODE.FAILED_PRECONDITION, "open")
    stream = probe.stream()
    assert_refused(lambda: stream.open(SPEC, config={"seed": "1"}), CODE.INVALID_ARGUMENT, "config")
    stream = probe.stream()
    assert_refused(
        lambda: stream.open(SPEC, config={"name": "x" * 65}),
        CODE.INVALID_ARGUMENT,
        "config['name']",
    )
    stream = probe.stream()
    no_spec = pb.ActRequest(open=pb.ActOpen(protocol_version=pb.ACT_PROTOCOL_VERSION_1))
    assert_refused(lambda: stream.send(no_spec), CODE.INVALID_ARGUMENT, "spec")
    stream = playing(act_run)
    again = pb.ActRequest(
        open=pb.ActOpen(protocol_version=pb.ACT_PROTOCOL_VERSION_1, spec=spec_to_proto(SPEC))
    )
    assert_refused(lambda: stream.send(again), CODE.FAILED_PRECONDITION, "open")
    assert_still_serves(act_run)


# ----- bad steps -----------------------------------------------------------------------------
def _bad(**edit):
    """A mid-episode step with one thing wrong."""

    def make() -> pb.ActStep:
        message = step_message(SPEC, rng())
        edit["how"](message)
        return message

    return make


def _obs(message, tensor):
    message.observations["sensor"].CopyFrom(tensor)


BAD_STEPS = {
    "obs-dtype": (
        lambda m: _obs(m, encode(np.zeros(1, np.float64))),
        "observations['sensor']: dtype",
    ),
    "obs-shape": (
        lambda m: _obs(m, encode(np.zeros(2, np.float32))),
        "observations['sensor']: shape",
    ),
    "obs-bytes": (
        lambda m: _obs(m, sim_pb.Tensor(dtype=sim_pb.DTYPE_FLOAT32, shape=[1], data=b"abc")),
        "observations['sensor']",
    ),
    "obs-unknown": (
        lambda m: m.observations["camera"].CopyFrom(encode(np.zeros(1, np.float32))),
        "unknown observation 'camera'",
    ),
    "obs-missing": (lambda m: m.observations.pop("sensor"), "missing observation 'sensor'"),
    "reward-missing": (lambda m: m.rewards.pop("reward"), "missing reward 'reward'"),
    "reward-unknown": (
        lambda m: m.rewards["bonus"].CopyFrom(encode(np.zeros(1, np.float32))),
        "unknown reward 'bonus'",
    ),
    "reward-dtype": (
        lambda m: m.rewards["reward"].CopyFrom(encode(np.zeros(1, np.float64))),
        "rewards['reward']: dtype",
    ),
    "reward-nan": (
        lambda m: m.rewards["reward"].CopyFrom(encode(np.array([np.nan], np.float32))),
        "rewards['reward']",
    ),
    "game-over-range": (lambda m: setattr(m, "game_over", 2), "game_over"),
    "both-endings": (
        lambda m: (setattr(m, "game_over", 1), setattr(m, "time_out", True)),
        "game_over and time_out",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_STEPS))
def test_a_bad_step_ends_the_stream_and_interrupts_its_episode(act_run, case):
    how, names = BAD_STEPS[case]
    before = _interrupted(act_run)
    stream = playing(act_run)
    message = step_message(SPEC, rng())
    how(message)
    assert_refused(lambda: stream.step(message), CODE.INVALID_ARGUMENT, names)
    act_run.interruptions.wait_for(before, stream.agent, f"a bad step: {names}")
    assert_still_serves(act_run)


def test_first_step_rules(act_run):
    stream = act_run.probe.stream()
    stream.open(SPEC)
    assert_refused(
        lambda: stream.step(step_message(SPEC, rng(), rewards=True)),
        CODE.INVALID_ARGUMENT,
        "episode's first step",
    )
    stream = playing(act_run)
    stream.step(step_message(SPEC, rng(), time_out=True))
    ending = step_message(SPEC, rng(), rewards=False, game_over=1)
    assert_refused(lambda: stream.step(ending), CODE.INVALID_ARGUMENT, "episode's first step")
    stream = playing(act_run)
    assert_refused(lambda: stream.send(pb.ActRequest()), CODE.INVALID_ARGUMENT, "request")
    assert_still_serves(act_run)


# ----- interrupted episodes ------------------------------------------------------------------
def test_a_stream_that_ends_mid_episode_interrupts_it_and_records_no_game(act_run):
    before = _interrupted(act_run)
    status_before = act_run.status().interrupted_games
    stream = playing(act_run, steps=3)
    agent_games = len(act_run.manager.stats)
    stream.close()
    act_run.interruptions.wait_for(before, stream.agent, "the stream")
    assert act_run.status().interrupted_games > status_before
    late = [r for r in act_run.manager.stats[agent_games:] if r.agent == stream.agent]
    assert not late, f"a broken stream was recorded as a game: {late}"


def test_a_stream_that_ends_between_episodes_interrupts_nothing(act_run):
    stream = playing(act_run)
    stream.step(step_message(SPEC, rng(), game_over=-1))
    before = _interrupted(act_run)
    stream.close()
    _wait_for(lambda: act_run.status().act_streams == 0, "the stream to close")
    # (the report, had there been one, was queued before the slot was freed)
    time.sleep(0.5)
    mine = [r for a, r in act_run.interruptions.seen[before:] if a == stream.agent]
    assert not mine, mine


def test_new_episode_cuts_the_one_in_play_short(act_run):
    before = _interrupted(act_run)
    stream = playing(act_run, steps=3)
    restart = step_message(SPEC, rng(), rewards=False)
    restart.new_episode = True
    assert stream.step(restart).actions
    act_run.interruptions.wait_for(before, stream.agent, "started a new episode")
    stream.step(step_message(SPEC, rng()))  # the new episode goes on
    stream.close()


# ----- the quota -----------------------------------------------------------------------------
def test_one_stream_more_than_the_run_takes_is_resource_exhausted(act_run):
    first, second = playing(act_run), playing(act_run)
    third = act_run.probe.stream()
    assert_refused(lambda: third.open(SPEC), CODE.RESOURCE_EXHAUSTED, "accepts 2")
    first.close()
    _wait_for(lambda: act_run.status().act_streams == 1, "a free slot")
    again = act_run.probe.stream()
    assert again.open(SPEC).agent in act_run.manager.external.ids
    again.close()
    second.close()


def test_a_run_without_act_streams_refuses_them(tmp_path):
    run = ActRun(tmp_path / "run", streams=0, own=1)
    try:
        assert run.probe.act_spec() == (None, 0)
        stream = run.probe.stream()
        assert_refused(lambda: stream.open(SPEC), CODE.RESOURCE_EXHAUSTED, "no Act streams")
        run.status()
    finally:
        run.finish()


# ----- the run's end -------------------------------------------------------------------------
def test_the_run_ends_streams_with_ok_once_their_games_are_played(tmp_path):
    run = ActRun(tmp_path / "run", streams=1, own=0, act_games=3)
    client = ActClient(run.address, SPEC, name="budget")
    env = ChainEnv(max_steps=5)
    games = 0
    with pytest.raises(RunComplete):
        actions = client.start(env.reset())
        for _ in range(100):
            observations, rewards, game_over = env.step(actions)
            actions = client.step(observations, rewards, game_over, env.time_out())
            if actions is None:
                games += 1
                actions = client.start(env.reset())
    client.close()
    run.thread.join(WAIT_S)
    assert games == 3 and run.manager.games_played == 3
    assert not run.thread.is_alive() and run.failure is None
    run.probe.close_all()


def test_a_checkpoint_while_streams_play_saves_their_agents(tmp_path):
    run = ActRun(tmp_path / "run", streams=1, own=1)
    try:
        _wait_for(lambda: any(r.agent == 0 for r in run.manager.stats), "the run's own agent")
        stream = playing(run)
        done = threading.Event()

        def keep_playing():
            for _ in range(2000):
                if done.is_set():
                    return
                try:
                    stream.step(step_message(SPEC, rng()))
                except (grpc.RpcError, StreamEndedOK):
                    return

        player = threading.Thread(target=keep_playing)
        player.start()
        with LearnerClient(run.address) as client:
            info = client.save_checkpoint(WAIT_S)
        done.set()
        player.join(WAIT_S)
        files = sorted(p.name for p in info.path.iterdir())
        assert "agents-00000.npz" in files and "agents-00001.npz" in files, files
        stream.step(step_message(SPEC, rng()))  # still playing
        # a stream idle on its simulator does not hold a checkpoint up
        with LearnerClient(run.address) as client:
            idle = client.save_checkpoint(10.0)
        assert (idle.path / "agents-00001.npz").exists()
        stream.close()
    finally:
        run.finish()


def test_an_act_client_names_the_learners_refusal(act_run):
    spec = _spec_with(reward_names=("score",))
    with pytest.raises(LearnerError) as caught:
        ActClient(act_run.address, spec)
    assert caught.value.code == CODE.INVALID_ARGUMENT and "reward_names" in caught.value.message


# ----- check-learner -------------------------------------------------------------------------
def test_check_learner_passes_against_a_compliant_learner(act_run, capsys):
    from flare.cli import main

    code = main(["check-learner", act_run.address, "--timeout", "30"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(LEARNER_CHECKS)} checks: {len(LEARNER_CHECKS)} passed, 0 failed" in out, out
    assert_still_serves(act_run)


def test_check_learner_fails_a_learner_that_takes_no_streams(tmp_path):
    run = ActRun(tmp_path / "run", streams=0, own=1)
    try:
        target = LearnerTarget(run.address, timeout_s=10.0)
        results = run_checks(target, LEARNER_CHECKS, probe_class=LearnerProbe)
        outcomes = {r.name: r.outcome for r in results}
        assert outcomes["health"] == "PASS"
        failed = {name for name, outcome in outcomes.items() if outcome == "FAIL"}
        assert {"act_spec", "play", "quota", "bad_steps"} <= failed, outcomes
    finally:
        run.finish()


# ----- learning from Act streams -------------------------------------------------------------
@pytest.mark.slow
def test_flare_train_learns_cartpole_from_act_streams_of_the_example_simulator(tmp_path):
    # examples/configs/cartpole_act.toml (PPO, 8 Act streams, no agents of its own) with a
    # nearer target: a mean return of 100 over 20 games (a random policy averages ~22)
    root = Path(__file__).resolve().parents[1]
    text = (root / "examples" / "configs" / "cartpole_act.toml").read_text()
    text = text.replace("mean_return = 195.0", "mean_return = 100.0\nwindow = 20")
    config = tmp_path / "act.toml"
    config.write_text(text)
    run_dir = tmp_path / "run"
    learner = subprocess.Popen(
        [sys.executable, "-m", "flare", "train", str(config), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        _wait_for(lambda: (run_dir / "learner.json").exists(), "the learner's address")
        address = json.loads((run_dir / "learner.json").read_text())["address"]
        simulator = subprocess.run(
            [sys.executable, str(root / "examples" / "act_cartpole.py"), "--learner", address],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        out, _ = learner.communicate(timeout=120)
    finally:
        if learner.poll() is None:
            learner.kill()
            learner.wait()
    assert simulator.returncode == 0, simulator.stdout + simulator.stderr
    assert learner.returncode == 0, out
    assert "the stop target was reached" in out, out
    games = (run_dir / "games.csv").read_text().splitlines()[1:]
    last = [float(line.split(",")[2]) for line in games[-20:]]
    assert sum(last) / len(last) >= 100.0, last
    assert len({line.split(",")[1] for line in games}) == 8  # every stream played


def test_a_resumed_run_takes_its_act_agents_up_where_the_checkpoint_left_them(tmp_path):
    first = ActRun(tmp_path / "run", streams=1, own=0)
    try:
        assert drive(ChainEnv(max_steps=5), first.address, max_games=3) == 3
        _wait_for(lambda: first.manager.games_played == 3, "the 3 games")
        helper = first.manager.external.agents[0].helpers["RL"]
        counter = helper.counter
    finally:
        first.finish()  # (the final checkpoint)
    second = ActRun(tmp_path / "run", streams=1, own=0, resume=True)
    try:
        agent = second.manager.external.agents[0]
        _wait_for(lambda: "RL" in agent.helpers, "the resumed run's start")
        assert agent.games_played == 3 and agent.helpers["RL"].counter == counter
        assert drive(ChainEnv(max_steps=5), second.address, max_games=2) == 2
        _wait_for(lambda: second.manager.games_played == 5, "the games after the resume")
    finally:
        second.finish()
    games = (tmp_path / "run" / "games.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in games] == [0, 1, 2, 3, 4]


def test_act_streams_need_the_learners_token(tmp_path):
    run = ActRun(tmp_path / "run", streams=1, own=0, token="act-s3cret")
    try:
        stream = run.probe.stream()
        assert_refused(lambda: stream.open(SPEC), CODE.UNAUTHENTICATED, "")
        assert drive(ChainEnv(max_steps=5), run.address, max_games=1, token="act-s3cret") == 1
    finally:
        run.finish()
