"""Checks of session lifetime and isolation: unknown, concurrent, streamed and closed
sessions, and the rules of a Session stream."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np

from flare.bridge.codec import encode
from flare.bridge.specs import spec_from_proto
from flare.compliance.checks.base import (
    CODE,
    Send,
    bad_input,
    error_of,
    play,
    same_observations,
    step_with,
    twins,
    twins_apart,
    valid_tensors,
)
from flare.compliance.probe import CheckFailed, Probe, action_plan, valid_actions
from flare.framework.env_spec import EnvSpec
from flare.simulator.v1 import simulator_pb2 as pb


def unknown_session(probe: Probe) -> str:
    def make(_: str, spec: EnvSpec) -> Send:
        return step_with(probe, "no-such-session", valid_tensors(spec))

    return bad_input(probe, CODE.NOT_FOUND, "a step of an unknown session", make)


def sessions_isolated(probe: Probe, workers: int = 4, steps: int = 40) -> str:
    sessions = [probe.open(seed=100 + i) for i in range(workers)]
    spec = sessions[0][1]
    plans = [action_plan(spec, seed=200 + i, length=steps) for i in range(workers)]
    together: list = [None] * workers
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            together[index] = play(probe, sessions[index][0], plans[index])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise CheckFailed(f"concurrent sessions failed: {errors[0]}")
    for index in range(workers):  # replay each alone, with the same seed and actions
        alone, _ = probe.open(seed=100 + index)
        replay = play(probe, alone, plans[index])
        for t, (x, y) in enumerate(zip(together[index], replay, strict=True)):
            if not same_observations(x, y):
                raise CheckFailed(f"session {index} played concurrently differs at step {t}")
    return f"{workers} sessions stepped at once equal each played alone"


def stream_closes_session(probe: Probe) -> str:
    spec_actions = None

    def requests():
        yield pb.SessionRequest(open=probe.open_request(seed=3))
        yield pb.SessionRequest(reset=pb.ResetRequest())
        give_up = time.monotonic() + probe.target.timeout_s
        while spec_actions is None:  # the step needs the spec the open answer brings
            if time.monotonic() > give_up:
                return
            time.sleep(0.01)
        step = pb.StepRequest()
        for name, array in spec_actions.items():
            step.actions[name].CopyFrom(encode(array))
        yield pb.SessionRequest(step=step)

    answers = probe.stub.Session(
        requests(), timeout=probe.target.timeout_s, metadata=probe.metadata
    )
    opened = next(answers).open
    spec_actions = valid_actions(spec_from_proto(opened.spec), np.random.default_rng(3))
    kinds = [answer.WhichOneof("response") for answer in answers]  # the stream ends here
    if kinds != ["reset", "step"]:
        raise CheckFailed(f"the stream answered {kinds}, expected ['reset', 'step']")
    deadline = time.monotonic() + 5
    while True:  # the server may close it a moment after the stream ends
        try:
            probe.call(probe.stub.Reset, pb.ResetRequest(session_id=opened.session_id))
        except grpc.RpcError as err:
            if err.code() == CODE.NOT_FOUND:
                return "the stream's session is NOT_FOUND once the stream ends"
            raise CheckFailed(f"expected NOT_FOUND, got {err.code().name}") from None
        if time.monotonic() > deadline:
            raise CheckFailed("the stream's session was still open 5 s after the stream ended")
        time.sleep(0.1)


def close_session(probe: Probe) -> str:
    session_id, _ = probe.open()
    probe.close(session_id)
    with probe.expect_status(CODE.NOT_FOUND, "Reset of a closed session"):
        probe.reset(session_id)
    with probe.expect_status(CODE.NOT_FOUND, "CloseSession of a closed session"):
        probe.call(probe.stub.CloseSession, pb.CloseSessionRequest(session_id=session_id))
    return "a closed session is NOT_FOUND"


MAX_DETAILS = 1024
"""The longest status message a client must accept."""
MAX_QUOTED = 64
"""The most characters of a client's input a status message may quote."""


def long_session_id(probe: Probe, length: int = 100_000) -> str:
    """A huge id is only an unknown session: NOT_FOUND with a short message. A server that
    echoes the id whole outgrows gRPC's status metadata, and the client sees
    RESOURCE_EXHAUSTED (or INTERNAL) instead; the contract quotes at most 64 characters
    (and FLARE caps a whole message at 1,024)."""
    session_id = "x" * length
    err = error_of(lambda: probe.reset(session_id))
    what = f"Reset of a {length:,}-character session id"
    if err is None:
        raise CheckFailed(f"{what}: expected NOT_FOUND, but the call succeeded")
    details = err.details() or ""
    if err.code() != CODE.NOT_FOUND:
        raise CheckFailed(f"{what}: expected NOT_FOUND, got {err.code().name} ({details[:200]})")
    if len(details) > MAX_DETAILS:
        raise CheckFailed(
            f"{what}: the status message is {len(details):,} characters, not <= {MAX_DETAILS:,}"
        )
    if "x" * (MAX_QUOTED + 1) in details:
        raise CheckFailed(
            f"{what}: the status message quotes more than {MAX_QUOTED} characters of the id"
        )
    return f"{what}: NOT_FOUND with a {len(details)}-character message"


def stream_rules(probe: Probe) -> str:
    """A Session stream's rules: `open` comes first and once (else FAILED_PRECONDITION), a
    message sets a request (else INVALID_ARGUMENT), and a reset or step names no session
    but the stream's own (INVALID_ARGUMENT), leaving the one it names untouched, which a
    twin of that session's seed witnesses."""
    other, twin, spec = twins(probe, seed=700)
    plan = action_plan(spec, seed=7, length=3)
    opening = pb.SessionRequest(open=probe.open_request(seed=701))
    reset = pb.SessionRequest(reset=pb.ResetRequest())
    cases = [
        ("a first message that is a reset", [reset], 0, CODE.FAILED_PRECONDITION, False),
        ("a first message that is a step", [_step(plan[0])], 0, CODE.FAILED_PRECONDITION, False),
        ("a second open", [opening, opening], 1, CODE.FAILED_PRECONDITION, False),
        (
            "a message with no request",
            [opening, pb.SessionRequest()],
            1,
            CODE.INVALID_ARGUMENT,
            False,
        ),
        (
            "a step naming another session",
            [opening, reset, _step(plan[0], other)],
            2,
            CODE.INVALID_ARGUMENT,
            True,
        ),
        (
            "a reset naming another session",
            [opening, pb.SessionRequest(reset=pb.ResetRequest(session_id=other))],
            1,
            CODE.INVALID_ARGUMENT,
            True,
        ),
    ]
    for what, messages, answered, code, names_other in cases:
        answers, err = _session_stream(probe, messages)
        if err is None or err.code() != code:
            got = "the stream ended OK" if err is None else f"{err.code().name} ({err.details()})"
            raise CheckFailed(f"a Session stream with {what}: expected {code.name}; {got}")
        if answers != answered:
            raise CheckFailed(
                f"a Session stream with {what}: {answers} answers before it, not {answered}"
            )
        apart = twins_apart(probe, other, twin, plan) if names_other else None
        if apart is not None:
            raise CheckFailed(
                f"a Session stream with {what} was refused, yet that session moved: it and "
                f"its twin of one seed part after it ({apart})"
            )
    return (
        "open first and once (FAILED_PRECONDITION), no empty message, and no reset or step of "
        "another session (INVALID_ARGUMENT; that session untouched)"
    )


def _step(actions: dict[str, np.ndarray], session_id: str = "") -> pb.SessionRequest:
    request = pb.StepRequest(session_id=session_id)
    for name, array in actions.items():
        request.actions[name].CopyFrom(encode(array))
    return pb.SessionRequest(step=request)


def _session_stream(
    probe: Probe, messages: list[pb.SessionRequest]
) -> tuple[int, grpc.RpcError | None]:
    """Send the messages on one Session stream, then end it: how many were answered, and
    the status the stream ended with (None when OK)."""
    answers = probe.stub.Session(
        iter(messages), timeout=probe.target.timeout_s, metadata=probe.metadata
    )
    count = 0
    try:
        for _ in answers:
            count += 1
    except grpc.RpcError as err:
        return count, err
    return count, None
