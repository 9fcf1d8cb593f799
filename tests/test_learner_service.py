"""The Learner service (flare.learner.v1): status, progress stream, checkpoint, stop; its
trust, health and reflection; the `flare status`, `flare checkpoint`, `flare stop` commands.

The fast tests drive a real RunTracker by hand over a stand-in Manager, so every status
code comes out exactly; the slow ones serve a real run of agents training on ChainEnv.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
import torch
import torch.nn as nn
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flare.agent_zoo.simple_rl_agents import SimpleRLAgent
from flare.algorithm_zoo.simple_algorithms import SimpleAC
from flare.cli import main
from flare.framework.agent import OnlineHelper
from flare.framework.external_agents import ExternalAgents
from flare.framework.manager import Manager
from flare.framework.reports import GameRecord
from flare.framework.run_events import CheckpointInfo, RunPosition
from flare.learner.client import LearnerClient, LearnerError
from flare.learner.messages import (
    event_from_proto,
    event_to_proto,
    status_from_proto,
    status_to_proto,
)
from flare.learner.service import SERVICE_NAME, serve_learner
from flare.learner.status import ProgressEvent, ProgressKind, RunState, RunStatus
from flare.learner.tracker import RunTracker
from flare.learner.v1 import learner_pb2 as pb
from flare.learner.v1 import learner_pb2_grpc as pb_grpc
from flare.model_zoo.simple_models import SimpleModelAC
from flare.testing import ChainEnv
from tests.test_trust import tls_files  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "learner-s3cret"
WAIT_S = 60.0  # the longest any wait on a real run may take (two loaded cores)


# ----- a run driven by hand ------------------------------------------------------------------
class FakeManager:
    """What a RunTracker reads of a Manager, set by hand. A checkpoint request ends as
    ``checkpoint_outcome`` says: a CheckpointInfo, an exception, or None (never)."""

    def __init__(self, games_budget: int = 10) -> None:
        self.observers: list = []
        self.position = RunPosition()
        self.log_settings = SimpleNamespace(window=4)
        self.agents = [SimpleNamespace(num_games=games_budget, games_played=0)]
        self.own_agents = self.agents
        self.external = ExternalAgents()
        self.policy_version = 0
        self.running_agents = {0}
        self.interrupted_games = 0
        self.server_health = {}
        self.wall_s = 0.0
        self.stop_reason: str | None = None
        self.checkpoint_outcome: CheckpointInfo | Exception | None = CheckpointInfo(
            Path("/runs/x/checkpoints/1"), 3, 7, 1.5
        )

    def request_stop(self, reason: str = "a stop request") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def request_checkpoint(self) -> Future:
        future: Future = Future()
        outcome = self.checkpoint_outcome
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        elif outcome is not None:
            future.set_result(outcome)
        return future


def _game(return_: float, success: bool = False, length: int = 5) -> GameRecord:
    return GameRecord(
        agent=0, return_=return_, length=length, success=success, cost=0.5, costs={"RL/cost": 0.5}
    )


@pytest.fixture
def hand_run():
    """A tracker on a stand-in Manager, served on loopback; yields (manager, tracker, server)."""
    manager = FakeManager()
    tracker = RunTracker(manager, "hand-run", progress_interval_s=0.01, simulators=["sim:1"])
    server = serve_learner(tracker, checkpoint_timeout_s=0.5, poll_s=0.05)
    yield manager, tracker, server
    server.stop(0)


def _running(manager: FakeManager, tracker: RunTracker) -> None:
    tracker.run_started(manager)
    manager.policy_version = 12
    manager.wall_s = 3.0
    for return_, success in ((1.0, False), (3.0, True)):
        tracker.game_finished(_game(return_, success))


def _code(call) -> grpc.StatusCode:
    with pytest.raises(LearnerError) as failure:
        call()
    return failure.value.code


# ----- messages ------------------------------------------------------------------------------
def test_a_status_travels_both_ways_unchanged():
    status = RunStatus(
        run_name="r",
        state=RunState.STOPPING,
        games=10,
        games_budget=100,
        env_steps=50,
        window=4,
        mean_return=2.5,
        success_rate=0.25,
        env_steps_per_s=120.0,
        policy_version=9,
        agents_alive=1,
        agents_total=2,
        interrupted_games=1,
        uptime_s=4.0,
        wall_s=3.5,
        ct_costs={"aux": {"accuracy": 0.9}, "RL": {"cost": 0.5, "value_cost": 0.1}},
        simulators=("a:1", "b:2"),
        last_checkpoint=CheckpointInfo(Path("/c/1"), 8, 7, 3.0),
        stop_reason="SIGTERM",
    )
    assert status_from_proto(status_to_proto(status)) == status
    event = ProgressEvent(ProgressKind.CHECKPOINT, status, CheckpointInfo(Path("/c/2"), 10, 9, 3.5))
    assert event_from_proto(event_to_proto(event)) == event


def test_no_game_yet_travels_as_unset_means():
    status = RunStatus("r", RunState.STARTING, 0, 5, 0, 100, math.nan, math.nan, 0.0, 0, 0, 1, 0,
                       0.1, 0.0)  # fmt: skip
    message = status_to_proto(status)
    assert not message.HasField("mean_return") and not message.HasField("success_rate")
    assert not message.HasField("last_checkpoint")
    back = status_from_proto(message)
    assert math.isnan(back.mean_return) and math.isnan(back.success_rate)
    assert back.last_checkpoint is None


def test_an_unspecified_state_is_refused_by_the_client():
    with pytest.raises(ValueError, match="state 0"):
        status_from_proto(pb.RunStatus())


# ----- the calls, over a hand-driven run ----------------------------------------------------
def test_get_status_reports_the_run(hand_run):
    manager, tracker, server = hand_run
    with LearnerClient(server.address) as client:
        assert client.status().state is RunState.STARTING
        _running(manager, tracker)
        status = client.status()
    assert (status.run_name, status.state, status.games, status.games_budget) == (
        "hand-run",
        RunState.RUNNING,
        2,
        10,
    )
    assert (status.env_steps, status.window, status.mean_return, status.success_rate) == (
        10,
        4,
        2.0,
        0.5,
    )
    assert status.ct_costs == {"RL": {"cost": 0.5}}
    assert (status.policy_version, status.agents_alive, status.agents_total) == (12, 1, 1)
    assert status.simulators == ("sim:1",) and status.wall_s == 3.0 and status.uptime_s > 0
    assert status.last_checkpoint is None and status.stop_reason == ""


def test_watch_progress_streams_progress_checkpoint_then_finished(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    info = CheckpointInfo(Path("/runs/x/checkpoints/2"), 2, 12, 3.0)
    with LearnerClient(server.address) as client:
        events = client.watch(timeout_s=30)
        collected: list[ProgressEvent] = []
        reader = threading.Thread(target=lambda: collected.extend(events), daemon=True)
        reader.start()
        _wait_for(lambda: tracker._subscribers, "the stream subscribes")
        time.sleep(0.02)  # past the progress interval
        tracker.tick()
        tracker.checkpoint_saved(info)
        tracker.run_stopped()
        reader.join(10)
        assert not reader.is_alive(), "the stream did not end after FINISHED"
    assert [e.kind for e in collected] == [
        ProgressKind.PROGRESS,
        ProgressKind.CHECKPOINT,
        ProgressKind.FINISHED,
    ]
    assert collected[0].status.games == 2 and collected[0].checkpoint is None
    assert collected[1].checkpoint == info and collected[1].status.last_checkpoint == info
    assert collected[2].status.state is RunState.FINISHED


def test_watching_a_finished_run_gets_one_finished_event(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    tracker.run_stopped()
    with LearnerClient(server.address) as client:
        events = list(client.watch(timeout_s=10))
    assert [e.kind for e in events] == [ProgressKind.FINISHED]
    assert events[0].status.games == 2


def test_a_cancelled_watch_frees_its_stream(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    channel = grpc.insecure_channel(server.address)
    call = pb_grpc.LearnerStub(channel).WatchProgress(pb.WatchProgressRequest(), timeout=30)
    _wait_for(lambda: server.streams.num_streams == 1, "the stream is admitted")
    call.cancel()
    _wait_for(lambda: server.streams.num_streams == 0, "the cancelled stream ends", timeout=5)
    assert not tracker._subscribers
    channel.close()


def test_stopping_the_server_ends_watchers_with_unavailable(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    client = LearnerClient(server.address)
    failures: list[grpc.StatusCode] = []

    def watch() -> None:
        try:
            list(client.watch(timeout_s=30))
        except LearnerError as err:
            failures.append(err.code)

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    _wait_for(lambda: server.streams.num_streams == 1, "the stream is admitted")
    started = time.monotonic()
    server.stop(grace=10)
    reader.join(10)
    assert failures == [grpc.StatusCode.UNAVAILABLE]
    assert time.monotonic() - started < 5, "the watcher held the stop for its grace"
    client.close()


def test_save_checkpoint_answers_with_the_checkpoint(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    with LearnerClient(server.address) as client:
        assert client.save_checkpoint() == manager.checkpoint_outcome


@pytest.mark.parametrize(
    "started, outcome, code, words",
    [
        (False, None, grpc.StatusCode.FAILED_PRECONDITION, "the run is starting"),
        (True, None, grpc.StatusCode.DEADLINE_EXCEEDED, "no checkpoint was written within 0.5 s"),
        (True, OSError("disk full"), grpc.StatusCode.INTERNAL, "the checkpoint failed: disk full"),
    ],
    ids=["not-running", "too-slow", "failed"],
)
def test_save_checkpoint_errors(hand_run, started, outcome, code, words):
    manager, tracker, server = hand_run
    if started:
        _running(manager, tracker)
    manager.checkpoint_outcome = outcome
    with LearnerClient(server.address) as client:
        with pytest.raises(LearnerError) as failure:
            client.save_checkpoint()
        assert failure.value.code == code and words in failure.value.message
        assert client.status().games == (2 if started else 0)  # the server still serves


def test_a_checkpoint_the_end_of_the_run_cancels_is_failed_precondition(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    manager.checkpoint_outcome = RuntimeError("the run ended before the checkpoint was written")
    manager.stop_reason = "SIGTERM"  # (the run is stopping)
    with LearnerClient(server.address) as client:
        assert _code(client.save_checkpoint) == grpc.StatusCode.FAILED_PRECONDITION


def test_stop_asks_the_run_to_stop_with_a_bounded_reason(hand_run):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    with LearnerClient(server.address) as client:
        status = client.stop("x" * 10_000)
        assert status.state is RunState.STOPPING
        assert manager.stop_reason == status.stop_reason
        assert status.stop_reason.startswith("Stop call: 'xxx") and len(status.stop_reason) < 260
        assert client.stop("again").stop_reason == status.stop_reason  # the first reason stays
        tracker.run_stopped()
        assert _code(lambda: client.stop("late")) == grpc.StatusCode.FAILED_PRECONDITION


# ----- trust, health, reflection --------------------------------------------------------------
def test_a_wrong_token_is_unauthenticated_and_the_server_still_serves():
    tracker = RunTracker(FakeManager(), "secured")
    server = serve_learner(tracker, token=TOKEN, poll_s=0.05)
    try:
        for token in (None, "wrong"):
            with LearnerClient(server.address, token=token) as client:
                assert _code(client.status) == grpc.StatusCode.UNAUTHENTICATED
                assert _code(lambda c=client: list(c.watch(timeout_s=5))) == (
                    grpc.StatusCode.UNAUTHENTICATED
                )
                assert _code(lambda c=client: c.stop("x")) == grpc.StatusCode.UNAUTHENTICATED
        assert tracker._manager.stop_reason is None
        with LearnerClient(server.address, token=TOKEN) as client:
            assert client.status().run_name == "secured"
        assert _health(server.address, "") == health_pb2.HealthCheckResponse.SERVING  # open
    finally:
        server.stop(0)


def test_tls_and_token_work_together(tls_files):  # noqa: F811 - the imported fixture
    tracker = RunTracker(FakeManager(), "tls-run")
    server = serve_learner(tracker, tls=tls_files, token=TOKEN)
    try:
        address = f"localhost:{server.port}"
        with LearnerClient(address, tls_root_cert=tls_files.cert, token=TOKEN) as client:
            assert client.status().run_name == "tls-run"
        with LearnerClient(address) as plaintext:  # a TLS server never speaks plaintext
            assert _code(plaintext.status) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)


def test_binding_beyond_loopback_needs_tls_and_a_token_or_insecure():
    tracker = RunTracker(FakeManager(), "exposed")
    with pytest.raises(ValueError, match="refusing to serve on '0.0.0.0' without TLS"):
        serve_learner(tracker, "0.0.0.0:0")
    with pytest.raises(ValueError, match="without TLS"):
        serve_learner(tracker, "0.0.0.0:0", token=TOKEN)  # a token alone travels in the clear


def test_a_token_never_goes_in_the_clear_beyond_loopback():
    with pytest.raises(ValueError, match="refusing to send the bearer token"):
        LearnerClient("10.1.2.3:50052", token=TOKEN)
    LearnerClient("10.1.2.3:50052", token=TOKEN, insecure=True).close()  # (no call made)


def test_a_busy_port_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"port {port} is already in use"):
            serve_learner(RunTracker(FakeManager(), "busy"), f"127.0.0.1:{port}")


def test_health_serves_until_stop_and_reflection_lists_the_service(hand_run):
    _, _, server = hand_run
    assert SERVICE_NAME == "flare.learner.v1.Learner"
    for service in ("", SERVICE_NAME):
        assert _health(server.address, service) == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(server.address) as channel:
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(reflect.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in response.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    server.health.enter_graceful_shutdown()  # (what stop() does first)
    assert _health(server.address, SERVICE_NAME) == health_pb2.HealthCheckResponse.NOT_SERVING


def _health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


# ----- the command line ----------------------------------------------------------------------
def test_status_checkpoint_and_stop_commands_print_one_line(hand_run, capsys):
    manager, tracker, server = hand_run
    _running(manager, tracker)
    assert main(["status", server.address]) == 0
    assert capsys.readouterr().out == tracker.status().line() + "\n"
    assert main(["checkpoint", server.address]) == 0
    assert capsys.readouterr().out == "checkpoint /runs/x/checkpoints/1 | policy v7 | games 3\n"
    assert main(["checkpoint", server.address, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "path": "/runs/x/checkpoints/1",
        "games": 3,
        "policy_version": 7,
        "wall_s": 1.5,
    }
    assert main(["stop", server.address, "--reason", "done for today"]) == 0
    assert capsys.readouterr().out == (
        "hand-run: stopping (Stop call: 'done for today') after 2 games\n"
    )
    assert manager.stop_reason == "Stop call: 'done for today'"


def test_status_json_is_one_object_with_null_for_no_mean(hand_run, capsys):
    _, _, server = hand_run
    assert main(["status", server.address, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    status = json.loads(out)
    assert status["state"] == "starting" and status["mean_return"] is None
    assert status["simulators"] == ["sim:1"] and status["last_checkpoint"] is None


def test_an_unreachable_learner_is_one_line_and_exit_1(capsys):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert main(["status", f"127.0.0.1:{port}", "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"flare status: no learner reachable at 127.0.0.1:{port} (UNAVAILABLE"
    )


def test_a_refused_call_is_its_code_and_message_and_exit_1(hand_run, capsys):
    _, _, server = hand_run  # (still starting: no checkpoint can be taken)
    assert main(["checkpoint", server.address]) == 1
    assert capsys.readouterr().err == (
        "flare checkpoint: FAILED_PRECONDITION: the run is starting: no checkpoint can be "
        "taken now\n"
    )


def test_a_wrong_token_file_is_unauthenticated_and_exit_1(tmp_path, capsys):
    server = serve_learner(RunTracker(FakeManager(), "secured"), token=TOKEN)
    try:
        wrong = tmp_path / "token"
        wrong.write_text("nope\n")
        wrong.chmod(0o600)
        assert main(["stop", server.address, "--token-file", str(wrong)]) == 1
        assert capsys.readouterr().err == (
            "flare stop: UNAUTHENTICATED: missing or wrong bearer token\n"
        )
        wrong.write_text(TOKEN)
        assert main(["status", server.address, "--token-file", str(wrong)]) == 0
        assert capsys.readouterr().out.startswith("secured: starting")
    finally:
        server.stop(0)


# ----- a real run ----------------------------------------------------------------------------
class LiveRun:
    """A Manager training 2 agents on ChainEnv in a thread, tracked and served; ``finish``
    stops it and waits for ``start()`` to return."""

    def __init__(self, model_dir: Path, num_games: int = 1_000_000) -> None:
        torch.manual_seed(0)
        model = SimpleModelAC(dims=[1], num_actions=2, perception_net=nn.Linear(1, 8))
        alg = SimpleAC(model, optim=(torch.optim.RMSprop, dict(lr=1e-3)))
        self.manager = Manager(
            {"RL": dict(algorithm=alg, agent_helper=OnlineHelper, sample_interval=2)},
            dict(model_dir=str(model_dir), print_interval_s=0, window=10),
            agents_per_process=2,
        )
        for _ in range(2):
            agent = SimpleRLAgent(num_games)
            agent.set_env(ChainEnv, max_steps=5)
            self.manager.add_agent(agent)
        self.num_games = num_games
        self.model_dir = model_dir
        self.tracker = RunTracker(
            self.manager, "live-run", progress_interval_s=0.3, simulators=["local"]
        )
        self.server = serve_learner(self.tracker, poll_s=0.1)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._start, name="live-run", daemon=True)
        self.thread.start()
        _wait_for(
            lambda: self.tracker.status().games >= 4 and self.manager.policy_version > 0,
            "the run trains",
            timeout=WAIT_S,
        )

    def _start(self) -> None:
        try:
            self.manager.start()
        except BaseException as err:  # noqa: BLE001 - reported by finish()
            self.failure = err

    def finish(self) -> None:
        self.tracker.stop("the test is over")
        self.thread.join(WAIT_S)
        self.server.stop(0)
        assert not self.thread.is_alive(), "the run did not stop"
        assert self.failure is None, self.failure


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    run = LiveRun(tmp_path_factory.mktemp("live") / "models")
    yield run
    run.finish()


@pytest.mark.slow
def test_get_status_while_training(live_run):
    with LearnerClient(live_run.server.address) as client:
        first = client.status()
        _wait_for(lambda: client.status().games > first.games, "games grow", timeout=WAIT_S)
        second = client.status()
    assert first.state is second.state is RunState.RUNNING
    assert second.run_name == "live-run" and second.games_budget == 2 * live_run.num_games
    assert second.env_steps == 5 * second.games  # every ChainEnv game times out after 5 steps
    assert second.mean_return == 5.0 and second.success_rate == 0.0 and second.window == 10
    assert (second.agents_alive, second.agents_total) == (2, 2)
    assert second.policy_version >= first.policy_version > 0
    assert set(second.ct_costs) == {"RL"} and "cost" in second.ct_costs["RL"]
    assert second.simulators == ("local",) and second.stop_reason == ""
    assert second.wall_s > 0 and second.uptime_s >= second.wall_s


@pytest.mark.slow
def test_flare_status_json_from_another_process(live_run):
    result = subprocess.run(
        [sys.executable, "-m", "flare", "status", live_run.server.address, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["run_name"] == "live-run" and status["state"] == "running"
    assert status["games"] > 0 and status["mean_return"] == 5.0
    assert status["agents_total"] == 2 and status["policy_version"] > 0


@pytest.mark.slow
def test_save_checkpoint_while_training(live_run):
    with LearnerClient(live_run.server.address, timeout_s=WAIT_S) as client:
        info = client.save_checkpoint()
        assert info.path == live_run.model_dir and (info.path / "RL.pt").is_file()
        assert info.policy_version > 0 and info.games > 0
        assert client.status().last_checkpoint == info
    saved = torch.load(info.path / "RL.pt", weights_only=True)
    assert saved["games"] >= info.games
    result = subprocess.run(
        [sys.executable, "-m", "flare", "checkpoint", live_run.server.address],
        cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"checkpoint {live_run.model_dir} | policy v")


@pytest.mark.slow
def test_stop_ends_the_run_and_the_stream_sees_it_through(tmp_path, no_stray_processes):
    run = LiveRun(tmp_path / "models")
    collected: list[ProgressEvent] = []
    try:
        with LearnerClient(run.server.address, timeout_s=WAIT_S) as client:
            reader = threading.Thread(
                target=lambda: collected.extend(client.watch(timeout_s=2 * WAIT_S)), daemon=True
            )
            reader.start()
            _wait_for(lambda: collected, "a progress event", timeout=WAIT_S)
            asked = client.save_checkpoint()
            _wait_for(
                lambda: any(e.kind is ProgressKind.CHECKPOINT for e in collected),
                "the checkpoint's event",
            )
            status = client.stop("the test asks")
            assert status.state is RunState.STOPPING
            assert status.stop_reason == "Stop call: 'the test asks'"
            run.thread.join(WAIT_S)
            assert not run.thread.is_alive(), "start() did not return after Stop"
            reader.join(WAIT_S)
            assert not reader.is_alive(), "the progress stream did not end with the run"
    finally:
        run.finish()
    assert run.manager.stop_reason == "Stop call: 'the test asks'"
    kinds = [e.kind for e in collected]
    assert kinds[0] is ProgressKind.PROGRESS and kinds[-1] is ProgressKind.FINISHED
    assert kinds.count(ProgressKind.FINISHED) == 1
    checkpoints = [e.checkpoint for e in collected if e.kind is ProgressKind.CHECKPOINT]
    assert checkpoints[0] == asked
    final = checkpoints[-1]  # the end of the run writes one more
    assert final.games == collected[-1].status.games >= status.games
    assert (final.path / "RL.pt").is_file()
    assert collected[-1].status.state is RunState.FINISHED
    assert collected[-1].status.last_checkpoint == final


def _wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.02)


@pytest.mark.parametrize(
    "command, shown",
    [
        ("status", "(default: 10.0)"),
        ("checkpoint", "(default: 60.0)"),
        ("stop", "(default: flare stop)"),
    ],
)
def test_every_learner_command_help_shows_its_defaults(command, shown, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert shown in " ".join(capsys.readouterr().out.split())
