"""The compliance suite: the Gym adapter passes every check, and the checks catch
simulators that break the contract."""

import itertools
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest

from flare.bridge import ServerSettings, serve
from flare.bridge.errors import SimulatorError
from flare.bridge.factories import GymEnvFactory
from flare.bridge.server import SimulatorServicer
from flare.cli import main
from flare.compliance import CHECKS, CheckFailed, Target, run_check, run_checks
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


def _only(name):
    return [check for check in CHECKS if check.name == name]


@pytest.mark.parametrize(
    "env_class, check, fragment",
    [
        (UnseededChain, "seeded-reset", "differ at observation 0"),
        (OverlongChain, "episode-end", "ran past max_episode_steps=3"),
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


class SloppyServicer(SimulatorServicer):
    """Answers an unknown session with INTERNAL instead of NOT_FOUND."""

    def get(self, session_id):
        try:
            return super().get(session_id)
        except SimulatorError as err:
            raise SimulatorError(grpc.StatusCode.INTERNAL, err.message) from None


@contextmanager
def bare_server(servicer_class, **env_config):
    """A server with only ``servicer_class`` (no health service); yields its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = servicer_class(lambda **config: ChainEnv(**env_config), ServerSettings())
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


def test_check_sim_cli_unreachable_and_bad_arguments(capsys):
    assert main(["check-sim", "127.0.0.1:1", "--timeout", "1"]) == 2
    assert "no simulator answers at 127.0.0.1:1" in capsys.readouterr().err
    assert main(["check-sim", "127.0.0.1:1", "--only", "nope"]) == 2
    assert "unknown checks ['nope']" in capsys.readouterr().err
