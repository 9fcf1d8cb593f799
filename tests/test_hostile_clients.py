"""Clients that misbehave: each gets its exact status code, and a well-behaved session on
the same server steps on correctly afterwards."""

import secrets
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from flare.bridge import ServerSettings, serve
from flare.bridge.codec import decode, encode
from flare.bridge.errors import MAX_DETAILS
from flare.bridge.session_registry import new_session_id
from flare.framework.env import GymEnv
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv

CODE = grpc.StatusCode
RIGHT = np.array([1])
V1 = pb.PROTOCOL_VERSION_1


def make_env(kind: str = "chain", seed: int | None = None, **config):
    """Module-level, so env worker processes can unpickle it."""
    if kind == "gym":
        return GymEnv("CartPole-v1", seed=seed)
    return ChainEnv(goal=int(config.get("goal", 3)), max_steps=int(config.get("max_steps", 50)))


@pytest.fixture(scope="module", params=[0, 1], ids=["in-process", "env-worker"])
def server(request):
    """One server per kind for the module (a worker process takes seconds to start)."""
    settings = ServerSettings(max_sessions=512, env_processes=request.param)
    running = serve(make_env, settings=settings)
    yield running
    running.stop(0)


@pytest.fixture
def stub(server):
    channel = grpc.insecure_channel(server.address)
    yield pb_grpc.SimulatorStub(channel)
    channel.close()


def open_session(stub, seed=None, **config) -> str:
    request = pb.OpenSessionRequest(protocol_version=V1, config=config)
    if seed is not None:
        request.seed = seed
    return stub.OpenSession(request, timeout=10).session_id


def step(stub, session_id, action=RIGHT, **kwargs) -> pb.StepResponse:
    request = pb.StepRequest(session_id=session_id, actions={"action": encode(action)}, **kwargs)
    return stub.Step(request, timeout=10)


def status_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


class Witness:
    """A well-behaved session: resets and steps, and must keep working."""

    def __init__(self, stub):
        self.stub = stub
        self.id = open_session(stub, goal="1000", max_steps="100000")
        stub.Reset(pb.ResetRequest(session_id=self.id), timeout=10)
        self.position = 0

    def steps_correctly(self) -> None:
        response = step(self.stub, self.id)
        self.position += 1
        assert decode(response.observations["sensor"]).item() == self.position
        assert response.game_over == 0


# ----- StepMany is atomic -----------------------------------------------------------------
def _twins(stub, seed: int) -> tuple[str, str]:
    first, twin = open_session(stub, seed, kind="gym"), open_session(stub, seed, kind="gym")
    for session_id in (first, twin):
        stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    return first, twin


def _same_episode(stub, first: str, twin: str, steps: int = 5) -> bool:
    for _ in range(steps):
        a, b = step(stub, first), step(stub, twin)
        if decode(a.observations["sensor"]).tolist() != decode(b.observations["sensor"]).tolist():
            return False
    return True


@pytest.mark.parametrize("auto_reset", [False, True])
def test_step_many_steps_no_row_when_a_later_row_cannot_step(stub, auto_reset):
    first, twin = _twins(stub, seed=7)
    never_reset = open_session(stub, kind="gym")
    request = pb.StepManyRequest(
        session_ids=[first, never_reset],
        actions={"action": encode(np.array([[1], [1]]))},
        auto_reset=auto_reset,
    )
    err = status_of(lambda: stub.StepMany(request, timeout=10))
    assert err.code() == CODE.FAILED_PRECONDITION
    assert "session_ids[1]" in err.details()
    assert _same_episode(stub, first, twin)  # the first row did not step


def test_step_many_checks_ids_and_actrep_before_any_step(stub):
    first, twin = _twins(stub, seed=3)
    actions = {"action": encode(np.array([[1]]))}
    for request, code in [
        (pb.StepManyRequest(actions=actions), CODE.INVALID_ARGUMENT),  # no ids
        (pb.StepManyRequest(session_ids=[first, first], actions=actions), CODE.INVALID_ARGUMENT),
        (
            pb.StepManyRequest(session_ids=[first], actions=actions, actrep=-1),
            CODE.INVALID_ARGUMENT,
        ),
        (pb.StepManyRequest(session_ids=[first, "gone"], actions=actions), CODE.NOT_FOUND),
    ]:
        assert status_of(lambda r=request: stub.StepMany(r, timeout=10)).code() == code
    assert _same_episode(stub, first, twin)


# ----- requests that are not even messages ------------------------------------------------
METHODS = [m for m in pb.DESCRIPTOR.services_by_name["Simulator"].methods]
GARBAGE = b"\xff\xff\xff\xff"  # a field number of 0 with a truncated varint: never parses


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_unparseable_bytes_are_invalid_argument(server, method):
    channel = grpc.insecure_channel(server.address)
    path = f"/{SERVICE_NAME}/{method.name}"
    try:
        if method.client_streaming:
            call = channel.stream_stream(path)  # bytes in, bytes out
            err = status_of(lambda: list(call(iter([GARBAGE]), timeout=10)))
        else:
            call = channel.unary_unary(path)
            err = status_of(lambda: call(GARBAGE, timeout=10))
        assert err.code() == CODE.INVALID_ARGUMENT, err.details()
        assert "could not be parsed" in err.details()
        Witness(pb_grpc.SimulatorStub(channel)).steps_correctly()
    finally:
        channel.close()


def test_garbage_after_a_good_stream_message_ends_the_stream_with_invalid_argument(server):
    before = server.servicer.num_sessions
    channel = grpc.insecure_channel(server.address)
    call = channel.stream_stream(f"/{SERVICE_NAME}/Session")
    opening = pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=V1))
    responses = call(iter([opening.SerializeToString(), GARBAGE]), timeout=10)
    opened = pb.SessionResponse.FromString(next(responses))
    assert opened.open.session_id
    err = status_of(lambda: next(responses))
    assert err.code() == CODE.INVALID_ARGUMENT
    deadline = time.monotonic() + 5
    while server.servicer.num_sessions > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.servicer.num_sessions == before  # the stream's session closed with it
    channel.close()


# ----- messages that echo what the client sent --------------------------------------------
def test_a_huge_session_id_is_not_found_with_a_short_message(stub):
    witness = Witness(stub)
    huge = "x" * 100_000
    for call in (
        lambda: stub.Reset(pb.ResetRequest(session_id=huge), timeout=10),
        lambda: stub.CloseSession(pb.CloseSessionRequest(session_id=huge), timeout=10),
        lambda: step(stub, huge),
    ):
        err = status_of(call)
        assert err.code() == CODE.NOT_FOUND
        assert len(err.details()) < 200 and "(100000 chars)" in err.details()
    witness.steps_correctly()


def test_a_huge_action_name_is_invalid_argument_with_a_short_message(stub):
    witness = Witness(stub)
    actions = {"action": encode(RIGHT), "a" * 200_000: encode(RIGHT)}
    request = pb.StepRequest(session_id=witness.id, actions=actions)
    err = status_of(lambda: stub.Step(request, timeout=10))
    assert err.code() == CODE.INVALID_ARGUMENT
    assert len(err.details()) <= MAX_DETAILS
    witness.steps_correctly()


# ----- seeds --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, -(2**63), 2**63 - 1, -123456789])
def test_every_int64_seed_works_and_is_deterministic(stub, seed):
    first, twin = _twins(stub, seed)
    assert _same_episode(stub, first, twin)
    other, _ = _twins(stub, seed + 1 if seed < 2**63 - 1 else seed - 1)
    observations = [
        decode(stub.Reset(pb.ResetRequest(session_id=s), timeout=10).observations["sensor"])
        for s in (first, other)
    ]
    assert observations[0].tolist() != observations[1].tolist()  # seeds still matter


# ----- the Session stream -------------------------------------------------------------------
def _stream(stub, *messages):
    return list(stub.Session(iter(messages), timeout=10))


@pytest.mark.parametrize("which", ["step", "reset"])
def test_a_stream_message_naming_another_session_is_invalid_argument(stub, which):
    witness = Witness(stub)
    opening = pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=V1))
    reset = pb.SessionRequest(reset=pb.ResetRequest())
    if which == "step":
        bad = pb.SessionRequest(step=pb.StepRequest(session_id=witness.id, actions={}))
    else:
        bad = pb.SessionRequest(reset=pb.ResetRequest(session_id=witness.id))
    err = status_of(lambda: _stream(stub, opening, reset, bad))
    assert err.code() == CODE.INVALID_ARGUMENT and "another session" in err.details()
    witness.steps_correctly()  # and the named session was not touched
    assert witness.position == 1


def test_stream_order_errors(stub):
    witness = Witness(stub)
    opening = pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=V1))
    step_first = pb.SessionRequest(step=pb.StepRequest(actions={"action": encode(RIGHT)}))
    for messages, code in [
        ((step_first,), CODE.FAILED_PRECONDITION),  # the first message is not `open`
        ((opening, opening), CODE.FAILED_PRECONDITION),  # opens twice
        ((opening, pb.SessionRequest()), CODE.INVALID_ARGUMENT),  # empty request
        ((opening, step_first), CODE.FAILED_PRECONDITION),  # a step before reset
    ]:
        assert status_of(lambda m=messages: _stream(stub, *m)).code() == code
    witness.steps_correctly()


@pytest.mark.parametrize("version", [0, 2, -1])
def test_an_unsupported_protocol_version_is_failed_precondition(stub, version):
    request = pb.OpenSessionRequest(protocol_version=version)
    assert status_of(lambda: stub.OpenSession(request, timeout=10)).code() == (
        CODE.FAILED_PRECONDITION
    )


def test_a_negative_actrep_is_invalid_argument_everywhere(stub):
    witness = Witness(stub)
    assert status_of(lambda: step(stub, witness.id, actrep=-1)).code() == CODE.INVALID_ARGUMENT
    opening = pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=V1))
    reset = pb.SessionRequest(reset=pb.ResetRequest())
    bad = pb.SessionRequest(step=pb.StepRequest(actions={"action": encode(RIGHT)}, actrep=-3))
    assert status_of(lambda: _stream(stub, opening, reset, bad)).code() == CODE.INVALID_ARGUMENT
    witness.steps_correctly()


# ----- quotas, ids, streams -----------------------------------------------------------------
def test_a_client_past_its_quota_gets_resource_exhausted():
    running = serve(make_env, settings=ServerSettings(max_sessions=8, max_sessions_per_client=2))
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.SimulatorStub(channel)
    try:
        witness = Witness(stub)
        second = open_session(stub)
        err = status_of(lambda: open_session(stub))
        assert err.code() == CODE.RESOURCE_EXHAUSTED and "quota of 2" in err.details()
        opening = pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=V1))
        assert status_of(lambda: _stream(stub, opening)).code() == CODE.RESOURCE_EXHAUSTED
        witness.steps_correctly()
        stub.CloseSession(pb.CloseSessionRequest(session_id=second), timeout=10)
        assert open_session(stub)  # a freed slot is the client's again
    finally:
        channel.close()
        running.stop(0)


def test_session_ids_are_128_random_bits():
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # the bits are the OS's CSPRNG's: not a counter, not the time
    assert len({i[:8] for i in ids}) > 990
    assert secrets.compare_digest(new_session_id()[:0], "")


def test_streams_past_the_limit_are_refused_while_health_answers():
    running = serve(make_env, settings=ServerSettings(max_sessions=4, max_streams=3, max_workers=2))
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.SimulatorStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    quiet = Silence()
    idle = [stub.StepManyStream(quiet, timeout=30) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while running.streams.num_streams < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.streams.num_streams == 3
        refused = stub.StepManyStream(quiet, timeout=10)
        assert status_of(lambda: next(refused)).code() == CODE.RESOURCE_EXHAUSTED
        for _ in range(20):  # more unary calls than there are unary threads, one by one
            started = time.monotonic()
            answer = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            assert time.monotonic() - started < 1.0
        Witness(stub).steps_correctly()
        idle.pop().cancel()
        deadline = time.monotonic() + 5
        while running.streams.num_streams > 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert running.streams.num_streams == 2  # a cancelled stream frees its slot
    finally:
        quiet.end()
        for call in idle:
            call.cancel()
        channel.close()
        running.stop(0)


class Silence:
    """Request streams that send nothing until ``end``."""

    def __init__(self):
        self._ended = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        self._ended.wait(30)
        raise StopIteration

    def end(self):
        self._ended.set()


def test_a_silent_stream_is_cancelled_after_the_idle_timeout():
    running = serve(make_env, settings=ServerSettings(idle_timeout_s=0.3, max_streams=2))
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.SimulatorStub(channel)
    quiet = Silence()
    try:
        silent = stub.StepManyStream(quiet, timeout=30)
        err = status_of(lambda: next(silent))
        assert err.code() == CODE.CANCELLED
        assert running.streams.num_streams == 0
        Witness(stub).steps_correctly()
    finally:
        quiet.end()
        channel.close()
        running.stop(0)


@pytest.mark.parametrize(
    "peer, client",
    [
        ("ipv4:127.0.0.1:5000", "ipv4:127.0.0.1"),
        ("ipv6:[::1]:4000", "ipv6:::1"),
        ("ipv6:[::ffff:127.0.0.1]:4000", "ipv4:127.0.0.1"),  # one host, one quota
        ("unix:/tmp/sim.sock", "unix:/tmp/sim.sock"),
    ],
)
def test_a_client_is_its_host_without_the_port(peer, client):
    from flare.bridge.stream_admission import client_of

    class Context:
        def peer(self):
            return peer

    assert client_of(Context()) == client
