"""Malformed requests thrown at a live server (hypothesis, bounded): every one gets one of
the client-error codes, never INTERNAL or UNKNOWN, and a witness session steps correctly
after each."""

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flare.bridge import ServerSettings, serve
from flare.bridge.codec import decode, encode
from flare.simulator.v1 import SERVICE_NAME
from flare.simulator.v1 import simulator_pb2 as pb
from flare.simulator.v1 import simulator_pb2_grpc as pb_grpc
from flare.testing import ChainEnv

CODE = grpc.StatusCode
# what a client's mistake may get; INTERNAL and UNKNOWN would mean the server broke
CLIENT_ERRORS = {
    CODE.INVALID_ARGUMENT,
    CODE.NOT_FOUND,
    CODE.FAILED_PRECONDITION,
    CODE.RESOURCE_EXHAUSTED,
}
BUDGET = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def make_env(seed=None, **config):
    return ChainEnv(goal=int(config.get("goal", 3)), max_steps=int(config.get("max_steps", 50)))


@pytest.fixture(scope="module")
def live():
    running = serve(make_env, settings=ServerSettings(max_sessions=32))
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.SimulatorStub(channel)
    witness = stub.OpenSession(
        pb.OpenSessionRequest(
            protocol_version=pb.PROTOCOL_VERSION_1, config={"goal": "100000", "max_steps": "100000"}
        ),
        timeout=10,
    ).session_id
    stub.Reset(pb.ResetRequest(session_id=witness), timeout=10)
    state = {"position": 0}
    yield running, channel, stub, witness, state
    channel.close()
    running.stop(0)


def witness_steps(stub, witness: str, state: dict) -> None:
    answer = stub.Step(
        pb.StepRequest(session_id=witness, actions={"action": encode(np.array([1]))}), timeout=10
    )
    state["position"] += 1
    assert decode(answer.observations["sensor"]).item() == state["position"]


def answered(call) -> grpc.StatusCode:
    try:
        response = call()
        if isinstance(response, grpc.Future):
            response.result()
        return CODE.OK
    except grpc.RpcError as err:
        return err.code()


DTYPES = st.sampled_from(list(pb.DType.values()) + [99, -1])
TENSORS = st.builds(
    pb.Tensor,
    dtype=DTYPES,
    shape=st.lists(st.integers(-(2**40), 2**40) | st.integers(0, 4), max_size=4),
    data=st.binary(max_size=64),
    strings=st.lists(st.text(max_size=8), max_size=3),
)
ACTIONS = st.dictionaries(
    st.sampled_from(["action", "", "x" * 300]) | st.text(), TENSORS, max_size=3
)


@BUDGET
@given(payload=st.binary(max_size=256), method=st.sampled_from(["Step", "Reset", "StepMany"]))
def test_random_bytes_to_unary_calls(live, payload, method):
    running, channel, stub, witness, state = live
    call = channel.unary_unary(f"/{SERVICE_NAME}/{method}")
    code = answered(lambda: call(payload, timeout=10))
    assert code in CLIENT_ERRORS | {CODE.OK}, code  # (garbage can parse as a valid message)
    witness_steps(stub, witness, state)


@BUDGET
@given(actions=ACTIONS, actrep=st.integers(-(2**31), 2**31 - 1), own=st.booleans())
def test_malformed_steps(live, actions, actrep, own):
    running, channel, stub, witness, state = live
    target = stub.OpenSession(
        pb.OpenSessionRequest(protocol_version=pb.PROTOCOL_VERSION_1), timeout=10
    ).session_id
    try:
        stub.Reset(pb.ResetRequest(session_id=target), timeout=10)
        request = pb.StepRequest(session_id=target if own else "x" + target, actrep=actrep)
        for name, tensor in actions.items():
            request.actions[name].CopyFrom(tensor)
        code = answered(lambda: stub.Step(request, timeout=10))
        assert code in CLIENT_ERRORS | {CODE.OK}, code
        many = pb.StepManyRequest(session_ids=[target], actrep=actrep)
        for name, tensor in actions.items():
            many.actions[name].CopyFrom(tensor)
        assert answered(lambda: stub.StepMany(many, timeout=10)) in CLIENT_ERRORS | {CODE.OK}
    finally:
        stub.CloseSession(pb.CloseSessionRequest(session_id=target), timeout=10)
    witness_steps(stub, witness, state)


@BUDGET
@given(
    messages=st.lists(
        st.one_of(
            st.builds(
                lambda v, c: pb.SessionRequest(
                    open=pb.OpenSessionRequest(protocol_version=v, config=c)
                ),
                st.integers(-2, 3),
                st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
            ),
            st.just(pb.SessionRequest(reset=pb.ResetRequest())),
            st.builds(lambda a: pb.SessionRequest(step=pb.StepRequest(actions=a)), ACTIONS),
            st.just(pb.SessionRequest()),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_malformed_session_streams(live, messages):
    running, channel, stub, witness, state = live
    code = answered(lambda: list(stub.Session(iter(messages), timeout=10)))
    assert code in CLIENT_ERRORS | {CODE.OK}, code
    witness_steps(stub, witness, state)
