"""The bridge: every bad input gets its exact status, and the server keeps serving."""

import time
from dataclasses import replace

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from flare.bridge import RemoteEnv, ServerSettings, serve
from flare.bridge.codec import encode
from flare.framework.env import EnvInterrupted, GymEnv
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv, CrashingEnv

CODE = grpc.StatusCode


def make_env(kind: str = "chain", seed: int | None = None, **config):
    if kind == "chain":
        return ChainEnv(goal=int(config.get("goal", 3)), max_steps=int(config.get("max_steps", 50)))
    if kind == "slow":
        return SlowEnv(delay=float(config["delay"]))
    if kind == "crash":
        return CrashingEnv(crash_after=int(config.get("crash_after", 1)))
    if kind == "gym":
        return GymEnv(config["game_name"], seed=seed)
    if kind == "lists":
        return ListShapedChainEnv(goal=int(config.get("goal", 3)))
    raise ValueError(f"unknown kind {kind!r}")


class ListShapedChainEnv(ChainEnv):
    """A spec written with lists for shapes, as a user may: valid, but not hashable."""

    def spec(self):
        spec = super().spec()
        observations = tuple(replace(o, shape=list(o.shape)) for o in spec.observations)
        return replace(spec, observations=observations)


class SlowEnv(ChainEnv):
    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def step(self, actions, actrep=1):
        time.sleep(self.delay)
        return super().step(actions, actrep)


@pytest.fixture
def server():
    running = serve(make_env, settings=ServerSettings(max_sessions=4, max_message_bytes=64 * 1024))
    yield running
    running.stop(0)


@pytest.fixture
def stub(server):
    channel = grpc.insecure_channel(server.address)
    yield pb_grpc.SimulatorStub(channel)
    channel.close()


def open_session(stub, **config) -> str:
    request = pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1, config=config)
    return stub.OpenSession(request, timeout=10).session_id


RIGHT = np.array([1])


def step(stub, session_id, action=RIGHT, **kwargs):
    actions = {"action": encode(action)} if action is not None else {}
    actions.update(kwargs.pop("actions", {}))
    return stub.Step(pb.StepRequest(session_id=session_id, actions=actions, **kwargs), timeout=10)


def assert_status(call, code, fragment):
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == code, info.value.details()
    assert fragment in info.value.details()


@pytest.fixture
def witness(stub):
    """Another session, stepped before and after each bad request: it must not notice."""
    session_id = open_session(stub, goal="100")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)

    def check():
        before = step(stub, session_id).observations["sensor"]
        after = step(stub, session_id).observations["sensor"]
        assert np.frombuffer(after.data, "<f4")[0] == np.frombuffer(before.data, "<f4")[0] + 1

    check()
    yield check
    check()


def test_reset_step_and_time_out_over_grpc(stub):
    session_id = open_session(stub, goal="100", max_steps="3")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    results = [step(stub, session_id) for _ in range(3)]
    assert [r.game_over for r in results] == [0, 0, 0]
    assert [r.time_out for r in results] == [False, False, True]
    assert np.frombuffer(results[-1].rewards["reward"].data, "<f4").tolist() == [1.0]


def test_actrep_repeats_on_the_server(stub):
    session_id = open_session(stub, goal="100")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    result = step(stub, session_id, actrep=3)
    assert np.frombuffer(result.observations["sensor"].data, "<f4").tolist() == [3.0]
    assert np.frombuffer(result.rewards["reward"].data, "<f4").tolist() == [3.0]


@pytest.mark.parametrize(
    "make_request, fragment",
    [
        (lambda sid: dict(actions={"jump": encode(np.array([1]))}), "unknown action 'jump'"),
        (
            lambda sid: dict(action=np.array([1], np.float32)),
            "dtype DTYPE_FLOAT32, the spec says DTYPE_INT64",
        ),
        (lambda sid: dict(action=np.array([[1]])), "shape [1, 1], the spec says [1]"),
        (lambda sid: dict(action=np.array([2])), "value 2 is outside 0..1"),
        (lambda sid: dict(action=np.array([-1])), "value -1 is outside 0..1"),
        (
            lambda sid: dict(
                action=None,
                actions={"action": pb.Tensor(dtype=pb.DTYPE_INT64, shape=[1], data=b"\x01\x00")},
            ),
            "needs 8 bytes, got 2",
        ),
        (lambda sid: dict(action=None), "missing action 'action'"),
    ],
    ids=[
        "unknown-name",
        "wrong-dtype",
        "wrong-shape",
        "out-of-range",
        "negative",
        "malformed",
        "missing",
    ],
)
def test_bad_actions_are_invalid_argument(stub, witness, make_request, fragment):
    session_id = open_session(stub)
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    kwargs = make_request(session_id)
    action = kwargs.pop("action", np.array([1]))
    assert_status(lambda: step(stub, session_id, action, **kwargs), CODE.INVALID_ARGUMENT, fragment)
    step(stub, session_id)  # the session itself is still usable


def test_unknown_session_is_not_found(stub, witness):
    assert_status(lambda: step(stub, "nope"), CODE.NOT_FOUND, "no session 'nope'")
    assert_status(
        lambda: stub.Reset(pb.ResetRequest(session_id="nope"), timeout=10), CODE.NOT_FOUND, "nope"
    )


def test_step_before_reset_and_after_game_over(stub, witness):
    session_id = open_session(stub, goal="2")
    assert_status(lambda: step(stub, session_id), CODE.FAILED_PRECONDITION, "step before reset")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    step(stub, session_id)
    assert step(stub, session_id).game_over == 1  # reached the goal
    assert_status(lambda: step(stub, session_id), CODE.FAILED_PRECONDITION, "call Reset first")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    assert step(stub, session_id).game_over == 0


def test_too_many_sessions_is_resource_exhausted(stub, server, witness):
    for _ in range(3):  # the witness holds the 4th slot
        open_session(stub)
    assert_status(lambda: open_session(stub), CODE.RESOURCE_EXHAUSTED, "maximum of 4 sessions")
    assert server.servicer.num_sessions == 4


def test_message_over_the_size_limit(stub, witness):
    session_id = open_session(stub)
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    huge = pb.Tensor(dtype=pb.DTYPE_UINT8, shape=[100_000], data=bytes(100_000))
    assert_status(
        lambda: step(stub, session_id, actions={"big": huge}),
        CODE.RESOURCE_EXHAUSTED,
        "larger than max",
    )


def test_protocol_version_mismatch(stub, witness):
    request = pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_UNSPECIFIED)
    assert_status(
        lambda: stub.OpenSession(request, timeout=10), CODE.FAILED_PRECONDITION, "protocol_version"
    )


def test_bad_config_is_invalid_argument(stub, witness):
    assert_status(
        lambda: open_session(stub, kind="warp"), CODE.INVALID_ARGUMENT, "unknown kind 'warp'"
    )


def test_env_exception_is_internal_and_the_server_survives(stub, witness):
    session_id = open_session(stub, kind="crash", crash_after="1")
    stub.Reset(pb.ResetRequest(session_id=session_id), timeout=10)
    step(stub, session_id)
    assert_status(
        lambda: step(stub, session_id), CODE.INTERNAL, "simulated simulator crash at step 2"
    )


def _rows(tensor, dtype):
    return np.frombuffer(tensor.data, dtype).reshape(tuple(tensor.shape))


def test_step_many_steps_each_session_with_batched_tensors(stub, witness):
    ids = [open_session(stub, goal="100") for _ in range(3)]
    for sid in ids:
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    request = pb.StepManyRequest(
        session_ids=ids, actions={"action": encode(np.array([[1], [0], [1]]))}
    )
    response = stub.StepMany(request, timeout=10)
    assert _rows(response.observations["sensor"], "<f4").tolist() == [[1.0], [0.0], [1.0]]
    assert _rows(response.rewards["reward"], "<f4").tolist() == [[1.0], [1.0], [1.0]]
    assert _rows(response.game_over, "<i4").tolist() == [0, 0, 0]
    assert _rows(response.time_out, "?").tolist() == [False, False, False]
    assert list(response.reset_rows) == []


def test_step_many_refuses_sessions_of_different_specs(stub, witness):
    chain = open_session(stub, goal="100")
    cartpole = open_session(stub, kind="gym", game_name="CartPole-v0")
    for sid in (chain, cartpole):
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    request = pb.StepManyRequest(
        session_ids=[chain, cartpole], actions={"action": encode(np.array([[1], [1]]))}
    )
    assert_status(
        lambda: stub.StepMany(request, timeout=10),
        CODE.INVALID_ARGUMENT,
        "session_ids[1] has another spec than session_ids[0]",
    )
    assert step(stub, chain).observations["sensor"].data == encode(np.float32([1])).data


def test_step_many_steps_sessions_whose_equal_specs_are_unhashable(stub):
    ids = [open_session(stub, kind="lists", goal="100") for _ in range(2)]
    for sid in ids:
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    request = pb.StepManyRequest(session_ids=ids, actions={"action": encode(np.array([[1], [0]]))})
    response = stub.StepMany(request, timeout=10)
    assert _rows(response.observations["sensor"], "<f4").tolist() == [[1.0], [0.0]]


def test_an_interned_spec_leaves_with_its_last_session(server, stub):
    """Specs may vary with the config (e.g. image sizes): interning them must not leak."""
    chains = [open_session(stub, goal="5") for _ in range(2)]
    cartpole = open_session(stub, kind="gym", game_name="CartPole-v0")
    open_session(stub, kind="lists")  # an unhashable spec is never interned

    def close(session_id):
        stub.CloseSession(pb.CloseSessionRequest(session_id=session_id), timeout=10)
        return server.servicer.num_specs

    assert server.servicer.num_specs == 2
    assert [close(chains[0]), close(chains[1]), close(cartpole)] == [2, 1, 0]


def test_step_many_auto_reset_returns_final_observations(stub):
    ids = [open_session(stub, goal="2"), open_session(stub, goal="100")]
    for sid in ids:
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    right = {"action": encode(np.array([[1], [1]]))}
    stub.StepMany(pb.StepManyRequest(session_ids=ids, actions=right, auto_reset=True), timeout=10)
    response = stub.StepMany(
        pb.StepManyRequest(session_ids=ids, actions=right, auto_reset=True), timeout=10
    )
    assert _rows(response.game_over, "<i4").tolist() == [1, 0]  # the first reached its goal
    assert list(response.reset_rows) == [0]
    assert _rows(response.final_observations["sensor"], "<f4").tolist() == [[2.0]]
    # row 0 is already the new episode's first observation; it can be stepped again
    assert _rows(response.observations["sensor"], "<f4").tolist() == [[0.0], [2.0]]
    again = stub.StepMany(pb.StepManyRequest(session_ids=ids, actions=right), timeout=10)
    assert _rows(again.observations["sensor"], "<f4").tolist() == [[1.0], [3.0]]


@pytest.mark.parametrize(
    "make_request, code, fragment",
    [
        (
            lambda ids: pb.StepManyRequest(
                session_ids=[ids[0], ids[0]], actions={"action": encode(np.array([[1], [1]]))}
            ),
            CODE.INVALID_ARGUMENT,
            "once per call",
        ),
        (
            lambda ids: pb.StepManyRequest(
                session_ids=ids, actions={"action": encode(np.array([[1]]))}
            ),
            CODE.INVALID_ARGUMENT,
            "shape [1, 1], the spec says [2, 1]",
        ),
        (
            lambda ids: pb.StepManyRequest(
                session_ids=[ids[0], "nope"], actions={"action": encode(np.array([[1], [1]]))}
            ),
            CODE.NOT_FOUND,
            "no session 'nope'",
        ),
        (
            lambda ids: pb.StepManyRequest(
                session_ids=ids, actions={"action": encode(np.array([[1], [5]]))}
            ),
            CODE.INVALID_ARGUMENT,
            "value 5 is outside 0..1",
        ),
    ],
    ids=["duplicate", "wrong-rows", "unknown-session", "out-of-range"],
)
def test_step_many_bad_requests(stub, witness, make_request, code, fragment):
    ids = [open_session(stub, goal="100") for _ in range(2)]
    for sid in ids:
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    assert_status(lambda: stub.StepMany(make_request(ids), timeout=10), code, fragment)


def test_stream_owns_its_session(stub, server):
    def requests():
        yield pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1))
        yield pb.SessionRequest(reset=pb.ResetRequest())
        for _ in range(3):
            yield pb.SessionRequest(step=pb.StepRequest(actions={"action": encode(np.array([1]))}))

    responses = list(stub.Session(requests(), timeout=10))
    assert [r.WhichOneof("response") for r in responses] == [
        "open",
        "reset",
        "step",
        "step",
        "step",
    ]
    assert responses[-1].step.game_over == 1  # goal 3 reached on the third step
    deadline = time.monotonic() + 5
    while server.servicer.num_sessions and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.servicer.num_sessions == 0  # closed with its stream


def test_stream_bad_step_ends_with_a_status(stub, server):
    def requests():
        yield pb.SessionRequest(open=pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1))
        yield pb.SessionRequest(step=pb.StepRequest(actions={"action": encode(np.array([1]))}))

    with pytest.raises(grpc.RpcError) as info:
        list(stub.Session(requests(), timeout=10))
    assert info.value.code() == CODE.FAILED_PRECONDITION


MODES = {  # RemoteEnv's three ways of driving a session
    "batched": {},
    "session-stream": {"batch": False},
    "unary": {"stream": False},
}


@pytest.mark.parametrize("mode", MODES)
def test_idle_sessions_are_reaped_and_the_client_recovers(mode):
    running = serve(make_env, settings=ServerSettings(idle_timeout_s=0.2))
    try:
        env = RemoteEnv(running.address, goal=5, **MODES[mode])
        env.reset()
        first_session = env.session_id
        assert running.servicer.num_sessions == 1
        deadline = time.monotonic() + 5
        while running.servicer.num_sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.servicer.num_sessions == 0
        # a unary session is gone (NOT_FOUND); a Session stream is cancelled with its session
        expected = "CANCELLED" if mode == "session-stream" else "NOT_FOUND"
        with pytest.raises(EnvInterrupted, match=expected):
            env.step({"action": np.array([1])})
        env.reset()  # a new session
        assert env.session_id != first_session
        assert running.servicer.num_sessions == 1
        env.close()
    finally:
        running.stop(0)


def test_health_and_reflection(server):
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "flare.simulator.v1.Simulator"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(reflect.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in response.list_services_response.service}
    assert {"flare.simulator.v1.Simulator", "grpc.health.v1.Health"} <= names
    channel.close()


def test_binding_beyond_loopback_needs_insecure():
    with pytest.raises(ValueError, match="without TLS"):
        serve(make_env, "0.0.0.0:0")


def test_remote_env_matches_gym_env(server):
    remote = RemoteEnv(server.address, kind="gym", game_name="CartPole-v0", seed=5)
    local = GymEnv("CartPole-v0", seed=5)
    assert remote.observation_dims() == local.observation_dims()
    assert remote.action_dims() == local.action_dims()
    np.testing.assert_array_equal(remote.reset()["sensor"], local.reset()["sensor"])
    for t in range(300):
        action = {"action": np.array([t % 2])}
        r_obs, r_rew, r_over = remote.step(action)
        l_obs, l_rew, l_over = local.step(action)
        np.testing.assert_array_equal(r_obs["sensor"], l_obs["sensor"])
        assert (r_rew["reward"].tolist(), r_over, remote.time_out()) == (
            l_rew["reward"].tolist(),
            l_over,
            local.time_out(),
        )
        if r_over or remote.time_out():
            break
    remote.close()


@pytest.mark.parametrize("mode", MODES)
def test_client_calls_carry_deadlines(server, mode):
    env = RemoteEnv(server.address, timeout_s=0.3, kind="slow", delay="2", **MODES[mode])
    env.reset()
    start = time.monotonic()
    # a hung simulator interrupts the episode; the next reset() opens a new session
    with pytest.raises(EnvInterrupted, match="DEADLINE_EXCEEDED"):
        env.step({"action": np.array([1])})
    assert time.monotonic() - start < 1.5
    env.close()


def test_step_many_stream_answers_each_request_and_ends_on_a_bad_one(stub, witness):
    ids = [open_session(stub, goal="100") for _ in range(2)]
    for sid in ids:
        stub.Reset(pb.ResetRequest(session_id=sid), timeout=10)
    right = {"action": encode(np.array([[1], [1]]))}

    def requests():
        for _ in range(3):
            yield pb.StepManyRequest(session_ids=ids, actions=right)
        yield pb.StepManyRequest(session_ids=ids, actions={"action": encode(np.array([[1]]))})

    answers = []
    with pytest.raises(grpc.RpcError) as info:
        for response in stub.StepManyStream(requests(), timeout=10):
            answers.append(_rows(response.observations["sensor"], "<f4").tolist())
    assert answers == [[[1.0], [1.0]], [[2.0], [2.0]], [[3.0], [3.0]]]
    assert info.value.code() == CODE.INVALID_ARGUMENT
    assert "shape [1, 1], the spec says [2, 1]" in info.value.details()
    # the stream's end closes no session: they step on where they were
    again = stub.StepMany(pb.StepManyRequest(session_ids=ids, actions=right), timeout=10)
    assert _rows(again.observations["sensor"], "<f4").tolist() == [[4.0], [4.0]]
