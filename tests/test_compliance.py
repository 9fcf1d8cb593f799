"""The compliance suite: the Gym adapter passes every check, and the checks catch
simulators that break the contract."""

import itertools
from concurrent import futures
from contextlib import contextmanager

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2

from flare.bridge import ServerSettings, serve
from flare.bridge.codec import decode, encode
from flare.bridge.errors import SimulatorError, invalid
from flare.bridge.factories import GymEnvFactory
from flare.bridge.server import SERVICE_NAME, SimulatorServicer
from flare.cli import main
from flare.compliance import CHECKS, CheckFailed, Target, run_check, run_checks
from flare.env_zoo.gym_env import GymEnv
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv


@pytest.fixture(scope="module")
def gym_server():
    server = serve(GymEnvFactory("CartPole-v0"))
    yield server
    server.stop(0)


@pytest.mark.parametrize("check", CHECKS, ids=str)
def test_the_gym_adapter_passes(check, gym_server):
    # the way a simulator's own CI uses the suite: one pytest case per check
    assert run_check(check, Target(gym_server.address))


class UnseededChain(ChainEnv):
    """Ignores its seed: each reset starts somewhere else."""

    starts = itertools.count()  # (shared: every session differs from every other)

    def __init__(self, seed=None):
        super().__init__(goal=100, max_steps=5)

    def reset(self):
        observations = super().reset()
        self.position = next(self.starts)
        observations["sensor"][0] = self.position
        return observations


class OverlongChain(ChainEnv):
    """Its spec promises episodes of at most 3 steps; they last 5."""

    def __init__(self, seed=None):
        super().__init__(goal=100, max_steps=5)

    def spec(self):
        spec = super().spec()
        return type(spec)(spec.observations, spec.actions, spec.reward_names, 3)


class EarlyTimeOutChain(ChainEnv):
    """Takes config max_episode_steps and reports it in its spec, but times out one step
    earlier."""

    def __init__(self, max_episode_steps="5", seed=None):
        self.limit = int(max_episode_steps)
        super().__init__(goal=100, max_steps=self.limit - 1)

    def spec(self):
        spec = super().spec()
        return type(spec)(spec.observations, spec.actions, spec.reward_names, self.limit)


class NoLimitChain(ChainEnv):
    """Refuses config max_episode_steps (an unknown key) and has no step limit of its own."""

    def __init__(self, seed=None):
        super().__init__(goal=2, max_steps=100)


class MovingChain(ChainEnv):
    """Every action moves (0 left, 1 right), so a step taken behind a twin's back shows."""

    def step(self, actions, actrep=1):
        move = 2 * np.asarray(actions["action"]).reshape(-1)[:1] - 1
        return super().step({"action": move}, actrep)


def _only(name):
    return [check for check in CHECKS if check.name == name]


@pytest.mark.parametrize(
    "env_class, check, fragment",
    [
        (UnseededChain, "seeded-reset", "differ at observation 0"),
        (OverlongChain, "episode-end", "ran past max_episode_steps=3"),
        (EarlyTimeOutChain, "time-out", "a time-out after 2 steps; the limit is 3"),
        # refuses the key: the fallback, the spec's own limit 3, is outlived
        (OverlongChain, "time-out", "an episode is still running after 3 steps"),
    ],
)
def test_checks_catch_a_broken_env(env_class, check, fragment):
    server = serve(env_class)
    try:
        (result,) = run_checks(Target(server.address), _only(check))
    finally:
        server.stop(0)
    assert result.outcome == "FAIL"
    assert fragment in result.detail


class ZeroRewardsServicer(SimulatorServicer):
    """StepMany answers with every reward zeroed."""

    def step_many(self, request):
        response = super().step_many(request)
        for tensor in response.rewards.values():
            tensor.data = bytes(len(tensor.data))
        return response


class IgnoresActrepServicer(SimulatorServicer):
    """Steps once whatever actrep says."""

    def Step(self, request, context):  # noqa: N802
        request.actrep = 1
        return super().Step(request, context)


class AcceptsNoVersionServicer(SimulatorServicer):
    """Serves a client that states no protocol version (0), as if it spoke version 1."""

    def open(self, request, client=""):
        if request.protocol_version == pb.PROTOCOL_VERSION_UNSPECIFIED:
            request.protocol_version = pb.PROTOCOL_VERSION_1
        return super().open(request, client)


class RefusesNegativeSeedsServicer(SimulatorServicer):
    """Takes only seeds >= 0."""

    def open(self, request, client=""):
        if request.HasField("seed") and request.seed < 0:
            raise invalid(f"seed must be >= 0, got {request.seed}")
        return super().open(request, client)


class RowByRowServicer(SimulatorServicer):
    """StepMany steps row after row, so a bad row leaves the rows before it stepped."""

    def step_many(self, request):
        for row, session_id in enumerate(request.session_ids):
            step = pb.StepRequest(session_id=session_id, actrep=request.actrep)
            for name, tensor in request.actions.items():
                step.actions[name].CopyFrom(encode(decode(tensor)[row]))
            self.get(session_id).step(step)
        return super().step_many(request)


class StreamOwnsSessionsServicer(SimulatorServicer):
    """Closes a StepManyStream's sessions when the stream ends."""

    def StepManyStream(self, request_iterator, context):  # noqa: N802
        seen = set()

        def remembered():
            for request in request_iterator:
                seen.update(request.session_ids)
                yield request

        try:
            yield from super().StepManyStream(remembered(), context)
        finally:
            for session_id in seen:
                self.close(session_id)


class StepsTheNamedSessionServicer(SimulatorServicer):
    """A Session stream's step that names another session steps that one (then fails)."""

    def Session(self, request_iterator, context):  # noqa: N802
        def forwarded():
            for request in request_iterator:
                if request.WhichOneof("request") == "step" and request.step.session_id:
                    try:
                        self.get(request.step.session_id).step(request.step)
                    except SimulatorError:
                        pass  # (its own session: the stream answers)
                yield request

        return super().Session(forwarded(), context)


class EchoesIdsServicer(SimulatorServicer):
    """Quotes an unknown session id whole (the message is cut to 1,024 characters)."""

    def get(self, session_id):
        try:
            return super().get(session_id)
        except SimulatorError:
            raise SimulatorError(grpc.StatusCode.NOT_FOUND, f"no session {session_id}") from None


class ClampsActrepServicer(SimulatorServicer):
    """StepMany takes a negative actrep as 1."""

    def step_many(self, request):
        request.actrep = max(request.actrep, 0)
        return super().step_many(request)


class SloppyServicer(SimulatorServicer):
    """Answers an unknown session with INTERNAL instead of NOT_FOUND."""

    def get(self, session_id):
        try:
            return super().get(session_id)
        except SimulatorError as err:
            raise SimulatorError(grpc.StatusCode.INTERNAL, err.message) from None


@contextmanager
def bare_server(servicer_class, env_class=ChainEnv, seeded=False, **env_config):
    """A server with only ``servicer_class`` (no health service, no reflection, gRPC's own
    request parsing); yields its address. ``seeded``: the env gets the session's seed."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    def factory(seed=None, **config):
        return env_class(**env_config, **({"seed": seed} if seeded else {}))

    servicer = servicer_class(factory, ServerSettings())
    pb_grpc.add_SimulatorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


@pytest.fixture
def sloppy_address():
    with bare_server(SloppyServicer) as address:
        yield address


@pytest.mark.parametrize(
    "servicer_class, check, fragment",
    [
        (ZeroRewardsServicer, "step-many", "StepMany row 0 differs from Step"),
        (IgnoresActrepServicer, "actrep", "actrep=3 ends elsewhere than three single steps"),
    ],
)
def test_checks_catch_a_broken_server(servicer_class, check, fragment):
    with bare_server(servicer_class, goal=4) as address:
        (result,) = run_checks(Target(address), _only(check))
    assert result.outcome == "FAIL"
    assert fragment in result.detail


@pytest.mark.parametrize(
    "servicer_class, check, fragment",
    [
        (SimulatorServicer, "reflection", "ServerReflectionInfo (ListServices) failed with UNIMP"),
        (AcceptsNoVersionServicer, "protocol-version", "0 (UNSPECIFIED): expected FAILED_PREC"),
        (SimulatorServicer, "malformed-request", "no StepRequest: expected INVALID_ARGUMENT, got "),
        (RefusesNegativeSeedsServicer, "seeds", "seed -1: INVALID_ARGUMENT (seed must be >= 0"),
        (RowByRowServicer, "step-many-atomic", "never reset was refused, yet it stepped row 0"),
        (StreamOwnsSessionsServicer, "step-many-stream", "session_ids[0] is NOT_FOUND; the str"),
        (StepsTheNamedSessionServicer, "stream-rules", "a step naming another session was refus"),
        (EchoesIdsServicer, "long-session-id", "quotes more than 64 characters of the id"),
        (ClampsActrepServicer, "negative-actrep", "StepMany with actrep=-1: expected INVALID_ARG"),
    ],
)
def test_new_checks_catch_a_broken_server(servicer_class, check, fragment):
    # MovingChain: every action moves, so the twin checks see any step behind their back
    with bare_server(servicer_class, MovingChain, goal=100, max_steps=50) as address:
        (result,) = run_checks(Target(address), _only(check))
    assert result.outcome == "FAIL", result
    assert fragment in result.detail


def test_the_gym_adapter_honours_a_short_step_limit(gym_server):
    # the config key is the conventional one: the time-out check asks for it, not falls back
    detail = run_check(_only("time-out")[0], Target(gym_server.address))
    assert "with config max_episode_steps=3 (spec: 3)" in detail


def test_time_out_is_skipped_without_a_short_step_limit():
    server = serve(NoLimitChain)
    try:
        (result,) = run_checks(Target(server.address), _only("time-out"))
    finally:
        server.stop(0)
    assert result.outcome == "SKIP"
    assert "the server offers no short step limit" in result.detail


def test_health_says_what_it_asked_and_what_came_back(sloppy_address):
    asked = "asked for '' and 'flare.simulator.v1.Simulator'"
    (result,) = run_checks(Target(sloppy_address), _only("health"))  # (no health service)
    assert result.outcome == "FAIL"
    assert asked in result.detail and "'': UNIMPLEMENTED" in result.detail
    server = serve(ChainEnv)
    try:
        server.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        (result,) = run_checks(Target(server.address), _only("health"))
    finally:
        server.stop(0)
    assert result.outcome == "FAIL"
    assert asked in result.detail
    assert "'': SERVING, 'flare.simulator.v1.Simulator': NOT_SERVING" in result.detail


def test_checks_catch_a_wrong_status_code(sloppy_address):
    with pytest.raises(CheckFailed, match="expected NOT_FOUND, got INTERNAL"):
        run_check(_only("unknown-session")[0], Target(sloppy_address))


def test_check_sim_cli_passes_the_gym_adapter(gym_server, capsys):
    assert main(["check-sim", gym_server.address]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("PASS  ") for line in lines) == len(CHECKS)
    assert lines[-1] == f"{len(CHECKS)} checks: {len(CHECKS)} passed, 0 failed, 0 skipped"


def test_check_sim_cli_fails_on_a_broken_server(sloppy_address, capsys):
    code = main(["check-sim", sloppy_address, "--only", "health", "--only", "unknown-session"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[1].startswith("FAIL  health") and "UNIMPLEMENTED" in lines[1]
    assert lines[2].startswith("FAIL  unknown-session") and "got INTERNAL" in lines[2]
    assert lines[-1] == "2 checks: 0 passed, 2 failed, 0 skipped"


def test_check_sim_cli_lists_every_check(capsys):
    assert main(["check-sim", "--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [check.name for check in CHECKS]
    assert len(set(names)) == len(names)
    for name in ("reflection", "malformed-request", "step-many-atomic", "step-many-stream"):
        assert name in names
    for name in ("time-out", "stream-rules", "seeds", "long-session-id", "negative-actrep"):
        assert name in names


def test_check_sim_cli_unreachable_and_bad_arguments(capsys):
    assert main(["check-sim", "127.0.0.1:1", "--timeout", "1"]) == 2
    assert "no simulator answers at 127.0.0.1:1" in capsys.readouterr().err
    assert main(["check-sim", "127.0.0.1:1", "--only", "nope"]) == 2
    assert "unknown checks ['nope']" in capsys.readouterr().err


class CountsNoSessionsServicer(SimulatorServicer):
    """GetServerInfo says no session is ever open."""

    def server_info(self):
        info = super().server_info()
        info.open_sessions = 0
        return info


class IgnoresResetSeedServicer(SimulatorServicer):
    """A Reset's seed is dropped: the session's stream goes on."""

    def Reset(self, request, context):  # noqa: N802
        request.ClearField("seed")
        return super().Reset(request, context)


@pytest.mark.parametrize(
    "servicer_class, check, fragment",
    [
        (CountsNoSessionsServicer, "server-info", "open_sessions went from 0 to 0 when"),
        (SimulatorServicer, "server-info", "open_streams went from 0 to 0 while"),
        (IgnoresResetSeedServicer, "reset-seed", "reset with seed 77 differs at observation 0"),
    ],
)
def test_farm_checks_catch_a_broken_server(servicer_class, check, fragment):
    # CartPole: its first observation depends on the seed
    with bare_server(servicer_class, GymEnv, seeded=True, game_name="CartPole-v1") as address:
        (result,) = run_checks(Target(address), _only(check))
    assert result.outcome == "FAIL", result
    assert fragment in result.detail
